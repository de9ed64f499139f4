"""`docker kill` and `docker stop`: signal through the shim, then wait for the exit.

Waiting never holds the container's lock, because the exit handler needs it.
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import TYPE_CHECKING

from engine.containers.model import Container
from engine.containers.status import Status
from engine.errors import Conflict, EngineError, InvalidParameter, NotModified

if TYPE_CHECKING:
    from engine.containers.manager import ContainerManager

DEFAULT_GRACE = 10
KILL_WAIT = 30.0
_MANUAL_STOP_SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)


def kill(m: ContainerManager, c: Container, sig: int = signal.SIGKILL) -> None:
    with c.lock:
        c.state.status.check_kill(c.name)
        shim = m.shims.get(c.id)
        if c.state.status is Status.RESTARTING or shim is None:
            _stop_restarting(m, c)
            return
        if sig in _MANUAL_STOP_SIGNALS:
            c.manually_stopped = True  # restart policies leave a stopped container alone
            m.store.save(c)
        shim.signal(sig)
        if c.state.status is Status.PAUSED and sig == signal.SIGKILL:
            m.cgroups.thaw(c.id)
    m.event(c, "kill", signal=str(int(sig)))


def stop(m: ContainerManager, c: Container, timeout: int | None, sig: str | None) -> None:
    if not c.state.status.alive:
        raise NotModified(f"container {c.name} is already stopped")
    grace = _grace(c, timeout)
    stop_signal = parse_signal(sig or c.spec.stop_signal)
    with c.lock:
        if c.state.status is Status.RESTARTING:
            _stop_restarting(m, c)
            m.notify()
            return
        m.health.unwatch(c)  # no check starts while the container winds down
    seq = m.exits.get(c.id, 0)
    if grace != 0:
        with contextlib.suppress(Conflict):
            kill(m, c, stop_signal)
        if c.state.status is Status.PAUSED:
            m.cgroups.thaw(c.id)  # a frozen process cannot act on its stop signal
        if wait_exit(m, c, seq, None if grace < 0 else float(grace)):
            m.event(c, "stop")
            return
    with contextlib.suppress(Conflict):
        kill(m, c, signal.SIGKILL)
    if not wait_exit(m, c, seq, KILL_WAIT):
        raise EngineError(f"container {c.name} did not exit after SIGKILL")
    m.event(c, "stop")


def _grace(c: Container, timeout: int | None) -> int:
    if timeout is not None:
        return timeout
    configured = c.config.get("StopTimeout")  # `--stop-timeout` on create
    return DEFAULT_GRACE if configured is None else int(configured)


def _stop_restarting(m: ContainerManager, c: Container) -> None:
    """A container between restarts has no process: stopping it cancels the restart."""
    c.manually_stopped = True
    c.state.status = Status.EXITED
    m.store.save(c)


def wait_exit(m: ContainerManager, c: Container, seq: int, timeout: float | None) -> bool:
    """Wait until the container's exit count moves past `seq`; False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with m.changed:
        while m.exits.get(c.id, 0) == seq and c.state.status.alive:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            m.changed.wait(left)
    return True


def parse_signal(text: str | int) -> int:
    """ "SIGTERM", "TERM", "15" or 15 -> 15; unknown names are a 400."""
    if isinstance(text, int):
        return text
    value = text.strip().upper()
    if value.isdigit():
        return int(value)
    if not value.startswith("SIG"):
        value = "SIG" + value
    try:
        return int(signal.Signals[value])
    except KeyError:
        raise InvalidParameter(f"invalid signal: {text}") from None
