"""The engine's `/events` stream on its own thread, turned into Qt signals by `EventHub`.

Why one thread and one hub: every page follows engine changes (containers, images, volumes,
networks) and none of them may poll. One stream per app keeps the engine's subscriber count
at one; the hub re-emits each event by type, so a page connects only to what it shows.

The stream reconnects by itself with a growing pause (an engine restart, a machine reboot);
`connected` fires each time a stream is established, and pages do their full refresh then,
since events that happened while disconnected are not replayed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.engine_client import EngineClient
from app.gui.workers.stream_conn import StreamConnection

BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


class EventStream(QThread):
    """Reads `/events` until stopped; emits raw events and connection changes."""

    opened = Signal()
    lost = Signal(str)
    received = Signal(dict)

    def __init__(self, client: Callable[[], EngineClient]) -> None:
        super().__init__()
        self._client = client
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._stream = StreamConnection()

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._follow()
                why = "the engine closed the events stream"
            except Exception as e:  # any failure means: tell the GUI, wait, reconnect
                why = getattr(e, "message", "") or str(e) or type(e).__name__
            if self._stop.is_set():
                return
            self.lost.emit(why)
            self._wake.wait(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
            self._wake.clear()
            failures += 1

    def _follow(self) -> None:
        conn, resp = self._client().open_stream("GET", "/events")
        with self._stream.reading(conn):
            if self._stop.is_set():
                return
            self.opened.emit()
            buf = b""
            while chunk := resp.read1(65536):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        self.received.emit(json.loads(line))

    def retry_now(self) -> None:
        """Skip the rest of the pause before the next connection attempt."""
        self._wake.set()

    def stop(self) -> None:
        """End the stream from any thread: shutting the socket down wakes the reader."""
        self._stop.set()
        self._wake.set()
        self._stream.interrupt()
        self.wait()


class EventHub(QObject):
    """App-wide engine signals: connection state and events by type."""

    connected = Signal()
    disconnected = Signal(str)
    any_event = Signal(dict)  # not `event`: that would hide QObject.event()
    container = Signal(dict)
    image = Signal(dict)
    volume = Signal(dict)
    network = Signal(dict)

    def __init__(self) -> None:
        super().__init__()
        self.is_connected = False
        self.last_error = ""

    @Slot()
    def on_opened(self) -> None:
        self.is_connected = True
        self.last_error = ""
        self.connected.emit()

    @Slot(str)
    def on_lost(self, why: str) -> None:
        """Emitted for every failed attempt, so a Retry that fails again is answered too."""
        self.is_connected = False
        self.last_error = why
        self.disconnected.emit(why)

    @Slot(dict)
    def on_event(self, ev: dict[str, Any]) -> None:
        self.any_event.emit(ev)
        by_type = {
            "container": self.container,
            "image": self.image,
            "volume": self.volume,
            "network": self.network,
        }
        signal = by_type.get(str(ev.get("Type", "")))
        if signal is not None:
            signal.emit(ev)
