"""The HTTP connection a worker thread reads a stream from (events, logs, a pull), and the
way another thread interrupts it.

stop() runs on the GUI thread while the worker is blocked in a read. Closing the connection
from there would not wake that read; shutting its socket down does, at once, so the worker
sees the end of the stream and finishes. The lock covers the moment the worker swaps the
connection in or out.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator


class StreamConnection:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    @contextlib.contextmanager
    def reading(self, conn: http.client.HTTPConnection) -> Iterator[None]:
        """Hold `conn` as the one interrupt() wakes while the caller reads; closed after."""
        with self._lock:
            self._conn = conn
        try:
            yield
        finally:
            with self._lock:
                self._conn = None
            conn.close()

    def interrupt(self) -> None:
        """Wake the read in progress, if any, from any thread."""
        with self._lock:
            sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
