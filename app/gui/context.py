"""`AppContext`: what every page shares — the engine connection, events, settings, workers.

Pages get one in `Page.attach(ctx)` and do all engine I/O through `ctx.run(...)` (a one-shot
call on the pool, answered on the GUI thread) or a stream worker of their own; the GUI thread
never touches a socket. Cross-page requests (open a container's logs) are signals here, so
pages do not import each other.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QSettings, QThreadPool, Signal

from app.engine_client import EngineClient, resolve_host
from app.gui import prefs
from app.gui.workers.call import CallRelay, CallWorker, Job, OnDone, OnError
from app.gui.workers.events import EventHub, EventStream

CALL_TIMEOUT_S = 30.0


def default_host(settings: QSettings) -> str:
    """The host saved in the settings, else DOCKER_HOST, else the default socket."""
    saved = settings.value(prefs.HOST, "")
    return str(saved) if saved else resolve_host()


class AppContext(QObject):
    """The engine connection (`host`, `client()`), `events` (EventHub), `settings`, `pool`."""

    logs_requested = Signal(str)  # container id: the logs view opens it
    page_requested = Signal(str)  # page title: the window switches to it
    host_changed = Signal(str)
    machine_changed = Signal(object)  # a MachineController (app/gui/machine_control.py)

    def __init__(self, host: str | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings()
        self.host = host or default_host(self.settings)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(4)
        self.events = EventHub()
        self.machine: object | None = None  # the controller the machine page offers, if any
        self._stream: EventStream | None = None

    def client(self, timeout: float = CALL_TIMEOUT_S) -> EngineClient:
        """A new client for this engine (one connection per call; cheap)."""
        return EngineClient(self.host, timeout=timeout)

    def run(self, job: Job, on_done: OnDone | None = None, on_error: OnError | None = None) -> None:
        """`job(client)` on the pool; `on_done(result)` or `on_error(exc)` on the GUI thread."""
        relay = CallRelay(on_done, on_error)
        self.pool.start(CallWorker(job, self.client, relay))

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        on_done: OnDone | None = None,
        on_error: OnError | None = None,
    ) -> None:
        """Shorthand for one JSON call: `ctx.call("POST", f"/containers/{id}/stop")`."""
        self.run(lambda c: c.call(method, path, params), on_done, on_error)

    # -- the events stream -------------------------------------------------------------

    def start(self) -> None:
        """Start following the engine's events (idempotent)."""
        if self._stream is not None:
            return
        stream = EventStream(lambda: self.client(timeout=10.0))
        stream.opened.connect(self.events.on_opened)
        stream.lost.connect(self.events.on_lost)
        stream.received.connect(self.events.on_event)
        self._stream = stream
        stream.start()

    def retry(self) -> None:
        """Reconnect now instead of after the current pause (the banner's Retry)."""
        if self._stream is None:
            self.start()
        else:
            self._stream.retry_now()

    def set_host(self, host: str) -> None:
        """Switch engines: saved, events restarted, pages refresh on `connected`."""
        self.settings.setValue(prefs.HOST, host)
        self.host = host
        self._stop_stream()
        self.host_changed.emit(host)
        self.start()

    def set_machine(self, controller: object) -> None:
        """The machine page offers its MachineController; the tray drives it from then on.
        Kept here too, so a tray made after the page still finds it."""
        self.machine = controller
        self.machine_changed.emit(controller)

    def open_logs(self, container_id: str) -> None:
        self.logs_requested.emit(container_id)

    def close(self) -> None:
        """Stop the stream and wait for running calls (at most their timeout)."""
        self._stop_stream()
        self.pool.waitForDone()

    def _stop_stream(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream = None
