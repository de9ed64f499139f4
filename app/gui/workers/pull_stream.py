"""An image pull (`POST /images/create`) on its own thread, its progress as Qt signals.

Progress messages come at most a few per layer per second (the engine rate-limits them), so
each travels as its own queued signal. An `error` message in the stream, or a refused
request, or a stream that ends before the final `Status: ...` line, ends the pull with
`failed(message)`; `succeeded(that status line)` otherwise. `stop()`
shuts the socket down from the GUI thread: the engine then abandons the pull.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QThread, Signal

from app.engine_client import EngineClient, split_tag
from app.gui.workers.body import pieces
from app.gui.workers.stream_conn import StreamConnection


class PullStream(QThread):
    message = Signal(dict)  # one progress message
    succeeded = Signal(str)  # the last status line ("Status: Downloaded newer image ...")
    failed = Signal(str)  # the engine's words

    def __init__(self, client: Callable[[], EngineClient], image: str) -> None:
        super().__init__()
        self._client = client
        self.image = image
        self._stop = threading.Event()
        self._stream = StreamConnection()

    def run(self) -> None:
        try:
            last = self._pull()
        except Exception as e:  # every failure is shown in the dialog
            if not self._stop.is_set():
                self.failed.emit(getattr(e, "message", "") or str(e) or type(e).__name__)
            return
        if self._stop.is_set():
            return
        status = str(last.get("status", ""))
        if last.get("error"):
            self.failed.emit(str(last.get("error")))
        elif not status.startswith("Status:"):
            self.failed.emit("the engine ended the pull before it finished")
        else:
            self.succeeded.emit(status)

    def _pull(self) -> dict[str, Any]:
        name, tag = split_tag(self.image)
        params = {"fromImage": name, "tag": tag}
        conn, resp = self._client().open_stream("POST", "/images/create", params)
        last: dict[str, Any] = {}
        with self._stream.reading(conn):
            buf = b""
            for chunk in pieces(resp):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        last = json.loads(line)
                        if last.get("error"):
                            return last
                        self.message.emit(last)
        return last

    def stop(self) -> None:
        """Abandon the pull from any thread and wait for the thread to end."""
        self._stop.set()
        self._stream.interrupt()
        self.wait()
