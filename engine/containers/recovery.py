"""Live-restore: find every container again when the engine starts.

Containers run under their own shims, so they outlive the engine. At start the
engine reconnects to each live shim, records the exits it missed, removes
`--rm` containers that ended meanwhile and applies Docker's boot restart rule.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from engine.atomicfile import read_json
from engine.containers import connect, ports, restart
from engine.containers.model import Container
from engine.containers.start import start
from engine.containers.status import Status
from engine.errors import EngineError
from engine.runtime.shim_client import ShimHandle
from engine.runtime.spec import ExitStatus

if TYPE_CHECKING:
    from engine.containers.manager import ContainerManager

log = logging.getLogger("engine.containers")


def recover(m: ContainerManager) -> None:
    """One container whose recovery fails (a cgroup that will not go, a record that
    will not save) is logged and left as it is: it must not keep the engine, and so
    every other container, from coming up."""
    for c in m.store.all():
        try:
            _recover_one(m, c)
        except Exception:
            log.exception("recovering container %s failed", c.short_id)
    connect.sweep(m)


def _recover_one(m: ContainerManager, c: Container) -> None:
    with c.lock:
        if c.state.status.alive:
            _reattach(m, c)
        else:
            _end_stray_shim(m, c)
            if connect.down(m, c):  # the engine died while the container was exiting
                m.store.save(c)
    if c.state.status is not Status.EXITED:
        return
    if c.host_config.get("AutoRemove"):
        m.remove_quietly(c)  # it ended while the engine was down or mid-removal
    elif restart.starts_on_boot(
        c.host_config.get("RestartPolicy") or {},
        c.state.exit_code,
        c.restart_count,
        c.manually_stopped,
    ):
        with contextlib.suppress(EngineError):
            start(m, c)


def _reattach(m: ContainerManager, c: Container) -> None:
    shim = ShimHandle.recover(m.state_dir(c))
    if shim is not None:
        m.shims[c.id] = shim
        c.state.pid = shim.pid
        if c.state.status is Status.RESTARTING:
            c.state.status = Status.RUNNING
        ports.record(c, shim)  # the shim's own account of what it listens on
        m.store.save(c)
        m.monitor.watch(c.id, shim.monitor())
        connect.restore(m, c)
        m.health.resume(c)
        return
    status = _read_exit(m.state_dir(c)) or ExitStatus(
        255, error="the container ended while the engine was down"
    )
    c.state.record_exit(status)
    connect.down(m, c)
    m.cgroups.remove(c.id)
    m.store.save(c)


def _end_stray_shim(m: ContainerManager, c: Container) -> None:
    """A shim left by an engine that died mid-start (before it recorded RUNNING)
    runs a container no record knows of: end it, so it neither leaks nor holds
    the cgroup that the next start of this container creates again."""
    shim = ShimHandle.recover(m.state_dir(c))
    if shim is None:
        return
    log.warning("ending container %s, left half-started by the last engine", c.short_id)
    with contextlib.suppress(EngineError):
        shim.signal(signal.SIGKILL)
    shim.wait(10)


def _read_exit(state_dir: Path) -> ExitStatus | None:
    try:
        return ExitStatus(**read_json(state_dir / "exit.json"))
    except (OSError, ValueError, TypeError):
        return None
