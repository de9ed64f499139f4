"""One container's log stream on its own thread, handed to the GUI in batches.

Why a pending buffer instead of a signal per chunk: a container can write 100,000 lines in a
second; a queued signal per chunk would flood the GUI thread's event queue and each delivery
would relay out the view. The thread parses (frames, timestamps, ANSI) and appends entries to
a locked list; the view's frame timer takes the whole list at once (`take`) and inserts it as
one batch. Only the rare events (opened, failed) travel as signals.

Cancelling: `stop()` shuts the socket down from the GUI thread, which wakes the blocked read.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Callable
from urllib.parse import quote

from PySide6.QtCore import QThread, Signal

from app.engine_client import EngineClient
from app.gui.logparse import LogEntry, LogParser
from app.gui.workers.body import pieces


class LogStream(QThread):
    """Reads `/containers/{id}/logs` (timestamps on) until the stream ends or `stop()`."""

    opened = Signal(str)  # the container's name, once the stream is established
    failed = Signal(str)  # what went wrong, in the engine's words

    def __init__(
        self,
        client: Callable[[], EngineClient],
        container: str,
        follow: bool = True,
        tail: str = "all",
    ) -> None:
        super().__init__()
        self._client = client
        self.container = container
        self.follow = follow
        self.tail = tail
        self._pending: list[LogEntry] = []
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._conn_lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    def take(self) -> list[LogEntry]:
        """Everything parsed since the last call (any thread; the view calls it per frame)."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
        return batch

    def run(self) -> None:
        try:
            self._read()
        except Exception as e:  # any failure is shown in the view, never raised in Qt
            if not self._stop.is_set():
                self.failed.emit(getattr(e, "message", "") or str(e) or type(e).__name__)

    def _read(self) -> None:
        client = self._client()
        ref = quote(self.container, safe="")
        info = client.get(f"/containers/{ref}/json")
        parser = LogParser(tty=bool(info.get("Config", {}).get("Tty")), timestamps=True)
        params = {
            "stdout": True,
            "stderr": True,
            "follow": self.follow,
            "tail": self.tail,
            "timestamps": True,
        }
        conn, resp = client.open_stream("GET", f"/containers/{ref}/logs", params)
        with self._conn_lock:
            self._conn = conn
        try:
            if self._stop.is_set():
                return
            self.opened.emit(str(info.get("Name", "")).lstrip("/") or self.container[:12])
            for chunk in pieces(resp):
                self._put(parser.feed(chunk))
            self._put(parser.finish())
        finally:
            with self._conn_lock:
                self._conn = None
            conn.close()

    def _put(self, entries: list[LogEntry]) -> None:
        if entries:
            with self._pending_lock:
                self._pending.extend(entries)

    def stop(self) -> None:
        """End the stream from any thread and wait for the thread to finish."""
        self._stop.set()
        with self._conn_lock:
            sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.wait()
