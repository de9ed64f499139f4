"""`AppContext`: what every page shares — the engine connection, events, settings, workers.

Pages get one in `Page.attach(ctx)` and do all engine I/O through `ctx.run(...)` (a one-shot
call on the pool, answered on the GUI thread) or a stream worker of their own; the GUI thread
never touches a socket. Cross-page requests (open a container's logs) are signals here, so
pages do not import each other.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from PySide6.QtCore import QObject, QSettings, QThreadPool, Signal

from app import dockercontexts
from app.engine_client import DEFAULT_HOST, EngineClient, EngineError
from app.gui import prefs
from app.gui.workers.call import CallRelay, CallWorker, Job, OnDone, OnError
from app.gui.workers.events import EventHub, EventStream

CALL_TIMEOUT_S = 30.0


def default_target(settings: QSettings) -> tuple[str, str]:
    """(docker context, host): the context saved in the settings, else the saved host,
    else the docker CLI's choice (DOCKER_HOST, DOCKER_CONTEXT, the config's current
    context), else the default socket. The context is "" for a plain address."""
    saved_context = str(settings.value(prefs.CONTEXT, "") or "")
    if saved_context:
        return saved_context, context_host(saved_context)
    saved = str(settings.value(prefs.HOST, "") or "")
    if saved:
        return "", saved
    if os.environ.get("DOCKER_HOST"):
        return "", os.environ["DOCKER_HOST"]
    name = dockercontexts.current_name(os.environ)
    return name, context_host(name)


def context_host(name: str) -> str:
    """The docker endpoint of context `name`; `default` is DOCKER_HOST or the default
    socket; "" when the context cannot be used (a client then says why, on each try)."""
    if name == dockercontexts.DEFAULT:
        return os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    try:
        return dockercontexts.endpoint(name, os.environ)
    except dockercontexts.ContextError:
        return ""


class AppContext(QObject):
    """The engine connection (`host`, `context`, `client()`), `events` (EventHub),
    `settings`, `pool`."""

    logs_requested = Signal(str)  # container id: the logs view opens it
    page_requested = Signal(str)  # page title: the window switches to it
    host_changed = Signal(str)
    machine_changed = Signal(object)  # a MachineController (app/gui/machine_control.py)

    def __init__(self, host: str | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings()
        # `context`: the docker context `host` came from ("" for an address given as is)
        self.context, self.host = ("", host) if host else default_target(self.settings)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(4)
        self.events = EventHub()
        self.machine: object | None = None  # the controller the machine page offers, if any
        self._stream: EventStream | None = None

    def client(self, timeout: float = CALL_TIMEOUT_S) -> EngineClient:
        """A new client for this engine (one connection per call; cheap). A context that
        could not be used is looked up again, so one created since is found (the error
        says what is wrong with it otherwise)."""
        host = self.host or context_host(self.context)
        if not host:
            try:
                dockercontexts.endpoint(self.context, os.environ)
            except dockercontexts.ContextError as e:
                raise EngineError(0, str(e)) from None
        return EngineClient(host, timeout=timeout)

    def describe(self) -> str:
        """Which engine, for people: the address, and the docker context it came from."""
        if self.context and self.context != dockercontexts.DEFAULT:
            return f'{self.host or "?"} (docker context "{self.context}")'
        return self.host

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
        self.settings.remove(prefs.CONTEXT)
        self._switch("", host)

    def set_context(self, name: str) -> None:
        """Switch to docker context `name` (saved by name, so a later change of its
        endpoint is followed), like set_host."""
        self.settings.setValue(prefs.CONTEXT, name)
        self._switch(name, context_host(name))

    def _switch(self, context: str, host: str) -> None:
        self.context, self.host = context, host
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
        sshdial = sys.modules.get("app.sshdial")  # loaded only once an ssh:// engine was used
        if sshdial is not None:
            sshdial.close_all()

    def _stop_stream(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream = None
