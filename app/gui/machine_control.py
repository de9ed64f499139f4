"""What the tray (and later the machine page) drive: a machine that starts and stops.

`MachineController` is the hook: the machine page provides one over machine/'s backends
(qemu, libvirt, native) and offers it with `ctx.set_machine(controller)`; the tray follows
it from then on (whichever of the two was made first). Until then,
`EngineConnection` stands in: its state is whether the engine answers (the native engine is
started by the user, so it cannot be started or stopped from here).
"""

from __future__ import annotations

import enum

from PySide6.QtCore import QObject, Signal

from app.gui.context import AppContext


class MachineState(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    ERROR = "error"


class MachineController(QObject):
    """Base of every controller: emits `state_changed(state)` and `start_failed(message)`."""

    state_changed = Signal(str)
    start_failed = Signal(str)
    name = "engine"

    def state(self) -> MachineState:
        raise NotImplementedError

    def can_control(self) -> bool:
        """Whether start()/stop() do anything (the tray greys them out otherwise)."""
        return False

    def start(self) -> None:
        """Begin starting; progress comes as state_changed, failure as start_failed."""

    def stop(self) -> None:
        """Begin stopping; the end comes as state_changed(STOPPED)."""


class EngineConnection(MachineController):
    """The engine's reachability as a machine state (no VM to control)."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self._state = MachineState.STARTING
        ctx.events.connected.connect(lambda: self._set(MachineState.RUNNING))
        ctx.events.disconnected.connect(lambda _why: self._set(MachineState.STOPPED))

    def state(self) -> MachineState:
        return self._state

    def _set(self, state: MachineState) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(str(state))
