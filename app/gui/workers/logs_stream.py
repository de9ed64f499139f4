"""One container's log stream on its own thread, handed to the GUI as raw bytes.

Why a pending buffer instead of a signal per chunk: a container can write 100,000 lines in a
second; a queued signal per chunk would flood the GUI thread's event queue. The thread only
reads (the socket wait releases the GIL) and appends the bytes to a locked buffer; the view's
frame timer takes what it can parse within its frame budget (`take`) and inserts the lines
as one batch. Only the rare events (opened, failed) travel as signals.

Why the thread does not even undo the chunked encoding, let alone parse: that is Python
code holding the GIL, and on a loaded machine the GUI thread then waits for this thread to
be scheduled again before it can run its own code (CPython hands the GIL over and waits for
the taker). With the parse on this thread, 16 ms timer ticks stalled for up to 480 ms at a
load of 10 on two cores. So this thread only moves bytes, and pauses GATHER_S after a short
read so the socket gathers more and the thread wakes (and asks for the GIL) less often; the
GUI thread decodes and parses them in bounded slices.

Cancelling: `stop()` shuts the socket down from the GUI thread, which wakes the blocked read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import quote

from PySide6.QtCore import QThread, Signal

from app.engine_client import EngineClient
from app.gui.workers.body import READ_SIZE
from app.gui.workers.stream_conn import StreamConnection

GATHER_S = 0.008


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
        self.tty = False  # both known before the first byte is pending
        self.chunked = False
        self._pending = bytearray()
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._stream = StreamConnection()

    def take(self, limit: int) -> bytes:
        """Up to `limit` bytes of the reply body as sent (still chunk-encoded when
        `chunked`) not yet taken; any thread."""
        with self._pending_lock:
            data = bytes(self._pending[:limit])
            del self._pending[:limit]
        return data

    def pending(self) -> int:
        with self._pending_lock:
            return len(self._pending)

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
        self.tty = bool(info.get("Config", {}).get("Tty"))
        params = {
            "stdout": True,
            "stderr": True,
            "follow": self.follow,
            "tail": self.tail,
            "timestamps": True,
        }
        conn, resp = client.open_stream("GET", f"/containers/{ref}/logs", params)
        self.chunked = bool(resp.chunked)
        with self._stream.reading(conn):
            if self._stop.is_set():
                return
            self.opened.emit(str(info.get("Name", "")).lstrip("/") or self.container[:12])
            fp = resp.fp
            while fp is not None and (data := fp.read1(READ_SIZE)):
                with self._pending_lock:
                    self._pending += data
                if len(data) < READ_SIZE:
                    time.sleep(GATHER_S)  # let the socket gather more: fewer, larger reads

    def stop(self) -> None:
        """End the stream from any thread and wait for the thread to finish."""
        self._stop.set()
        self._stream.interrupt()
        self.wait()
