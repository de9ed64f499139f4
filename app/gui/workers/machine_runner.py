"""`MachineRunner`: the machine page's MachineController, driving one machine off the GUI thread.

Why one thread of its own (a QThreadPool of one) rather than the context's pool: a VM start
takes seconds to minutes, and machine verbs must not overlap (a stop racing a start, a
config save racing either), so they queue one after another there while the API calls of
the other pages keep their own pool. Each verb is a function of machine_jobs run as a job;
its stages come back as `stage_changed` signals as the backend reports them, its outcome as
`snapshot_changed` (re-read after every verb, and every STATUS_MS while idle, so a start or
stop from the CLI shows too) or `failed`. The tray follows `state_changed`/`start_failed`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from app.gui.machine_control import MachineController, MachineState
from app.gui.workers import machine_jobs
from app.gui.workers.machine_jobs import Snapshot
from machine.backend import MachineState as VmState
from machine.backend import Stage
from machine.errors import MachineError

STATUS_MS = 3000  # how often an idle runner re-reads the machine's state
_STATES = {
    str(VmState.RUNNING): MachineState.RUNNING,
    str(VmState.STOPPED): MachineState.STOPPED,
    str(VmState.NOT_CREATED): MachineState.STOPPED,
}


class _Relay(QObject):
    """Carries a job's progress and outcome to the GUI thread (see workers/call.py's
    CallRelay for why the relay is the receiver of its own signals)."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    _in_flight: set[_Relay] = set()

    def __init__(
        self,
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_progress: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        super().__init__()
        self._done, self._error, self._progress = on_done, on_error, on_progress
        _Relay._in_flight.add(self)
        self.progressed.connect(self._deliver_progress)
        self.succeeded.connect(self._deliver_result)
        self.failed.connect(self._deliver_error)

    @Slot(object)
    def _deliver_progress(self, stage: object) -> None:
        if self._progress is not None and isinstance(stage, dict):
            self._progress(stage)

    @Slot(object)
    def _deliver_result(self, result: object) -> None:
        _Relay._in_flight.discard(self)
        self._done(result)

    @Slot(object)
    def _deliver_error(self, error: object) -> None:
        _Relay._in_flight.discard(self)
        if isinstance(error, Exception):
            self._error(error)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[Callable[[Stage], None]], Any], relay: _Relay) -> None:
        super().__init__()
        self._fn = fn
        self._relay = relay

    def run(self) -> None:
        def report(stage: Stage) -> None:
            self._relay.progressed.emit(stage.as_dict())  # a copy: the backend mutates it

        try:
            result = self._fn(report)
        except Exception as e:  # every failure goes back as a signal
            self._relay.failed.emit(e)
        else:
            self._relay.succeeded.emit(result)


class MachineRunner(MachineController):
    snapshot_changed = Signal(object)  # Snapshot
    stage_changed = Signal(object)  # the current start's stages so far: list[dict]
    busy_changed = Signal(str)  # "Starting…", "Stopping…", "" when idle
    failed = Signal(object)  # the Exception of a verb (a MachineError has stage and hint)
    saved = Signal(object)  # the MachineConfig after a settings or shares change

    def __init__(self, name: str = machine_jobs.DEFAULT_NAME) -> None:
        super().__init__()
        self.name = name
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.snap: Snapshot | None = None
        self.stages: list[dict[str, Any]] = []  # the current or last start's, live
        self.error: Exception | None = None  # the last verb's failure, until one succeeds
        self.busy = ""
        self._state = MachineState.STOPPED
        self._reading = False
        self._timer = QTimer(self)
        self._timer.setInterval(STATUS_MS)
        self._timer.timeout.connect(self.refresh)

    # -- MachineController ---------------------------------------------------------------
    def state(self) -> MachineState:
        return self._state

    def can_control(self) -> bool:
        return self.snap is not None and self.snap.config is not None

    def start(self) -> None:
        if self.busy:
            return
        self._starting()
        self._verb(
            "Starting…",
            lambda report: machine_jobs.start(self.name, report),
            progress=self._on_stage,
            failed=self._start_failed,
        )

    def stop(self) -> None:
        if not self.busy:
            self._verb("Stopping…", lambda _r: machine_jobs.stop(self.name))

    def restart(self) -> None:
        if self.busy:
            return
        self._starting()

        def both(report: Callable[[Stage], None]) -> object:
            machine_jobs.stop(self.name)
            return machine_jobs.start(self.name, report)

        self._verb("Restarting…", both, progress=self._on_stage, failed=self._start_failed)

    def _starting(self) -> None:
        """A start's fresh page: the last run's stages and error cleared, state STARTING."""
        self.stages = []
        self.error = None
        self.stage_changed.emit([])
        self._set_state(MachineState.STARTING)

    # -- other verbs -----------------------------------------------------------------------
    def watch(self, name: str | None = None) -> None:
        """Follow `name` (or the current machine): read its state now, then every STATUS_MS."""
        if name is not None and name != self.name:
            self.name = name
            self.snap = None
            self.stages = []
            self.error = None
        self.refresh()
        self._timer.start()

    def refresh(self) -> None:
        """Re-read the machine's state (skipped while a verb runs: it re-reads when done)."""
        if self.busy or self._reading:
            return
        self._reading = True
        name = self.name
        self._submit(lambda _r: machine_jobs.snapshot(name), self._read, self._read_failed)

    def create(self, backend: str, engine_args: list[str] | None = None) -> None:
        name = self.name
        self._verb("Creating…", lambda _r: machine_jobs.create(name, backend, engine_args))

    def set_resources(self, cpus: int, memory_mib: int, disk_gib: int) -> None:
        name = self.name
        self._verb(
            "Saving…",
            lambda _r: machine_jobs.set_resources(name, cpus, memory_mib, disk_gib),
            done=self.saved.emit,
        )

    def add_share(self, host_path: str, guest_path: str, mode: str, readonly: bool) -> None:
        name = self.name
        self._verb(
            "Saving…",
            lambda _r: machine_jobs.add_share(name, host_path, guest_path, mode, readonly),
            done=self.saved.emit,
        )

    def remove_share(self, tag: str) -> None:
        name = self.name
        self._verb("Saving…", lambda _r: machine_jobs.remove_share(name, tag), done=self.saved.emit)

    def shutdown(self) -> None:
        """Stop polling and wait for the verb in progress (a start is not abandoned halfway:
        the backend leaves no process behind only if it runs to its end)."""
        self._timer.stop()
        self.pool.waitForDone()

    # -- plumbing --------------------------------------------------------------------------
    def _verb(
        self,
        busy: str,
        fn: Callable[[Callable[[Stage], None]], Any],
        progress: Callable[[dict[str, Any]], None] | None = None,
        done: Callable[[Any], None] | None = None,
        failed: Callable[[Exception], None] | None = None,
    ) -> None:
        self._set_busy(busy)

        def ok(result: Any) -> None:
            self.error = None
            self._set_busy("")
            if done is not None:
                done(result)
            self.refresh()

        def bad(error: Exception) -> None:
            self.error = error
            self._set_busy("")
            (failed or self.failed.emit)(error)
            self.refresh()

        self._submit(fn, ok, bad, progress)

    def _submit(
        self,
        fn: Callable[[Callable[[Stage], None]], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.pool.start(_Job(fn, _Relay(on_done, on_error, progress)))

    def _set_busy(self, text: str) -> None:
        self.busy = text
        self.busy_changed.emit(text)

    def _on_stage(self, stage: dict[str, Any]) -> None:
        """A stage began or ended: replace the entry of the same name and start time."""
        for i, known in enumerate(self.stages):
            if known.get("name") == stage.get("name") and known.get("started") == stage.get(
                "started"
            ):
                self.stages[i] = stage
                break
        else:
            self.stages.append(stage)
        self.stage_changed.emit(list(self.stages))

    def _start_failed(self, error: Exception) -> None:
        self._set_state(MachineState.ERROR)
        self.failed.emit(error)
        self.start_failed.emit(describe(error))

    def _read(self, snap: Snapshot) -> None:
        self._reading = False
        if snap.name != self.name:
            return
        self.snap = snap
        if snap.stages and not self.busy:
            self.stages = list(snap.stages)  # the recorded last start, ours or the CLI's
        self.snapshot_changed.emit(snap)
        self._set_state(self._state_of(snap))

    def _read_failed(self, error: Exception) -> None:
        self._reading = False
        self.error = error
        self.failed.emit(error)
        self._set_state(MachineState.ERROR)

    def _state_of(self, snap: Snapshot) -> MachineState:
        if self.busy.startswith(("Starting", "Restarting")):
            return MachineState.STARTING
        state = _STATES.get(snap.state, MachineState.ERROR)
        if state == MachineState.STOPPED and self.error is not None:
            return MachineState.ERROR  # a failed start stays visible until the next verb
        return state

    def _set_state(self, state: MachineState) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(str(state))


def describe(error: Exception) -> str:
    """One line for a notification: the stage and the message (the hint goes elsewhere)."""
    if isinstance(error, MachineError):
        where = f"{error.stage}: " if error.stage else ""
        return f"{where}{error.message}"
    return str(error) or type(error).__name__
