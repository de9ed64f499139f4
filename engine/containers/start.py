"""`docker start`: launch the container's shim, connect waiting attaches, then let it exec.

Attaches that arrived before start are connected while the process is still
held before exec, so `docker run` never misses the first bytes of output.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING

from engine.containers import connect, ports
from engine.containers.model import Container
from engine.containers.status import Status
from engine.errors import EngineError, NotModified
from engine.runtime.shim_client import ExecFailed, ShimHandle
from engine.timefmt import now_rfc3339

if TYPE_CHECKING:
    from engine.containers.manager import ContainerManager

log = logging.getLogger("engine.containers")


def start(m: ContainerManager, c: Container) -> None:
    launching = False
    try:
        with c.lock:
            if c.state.status in (Status.RUNNING, Status.PAUSED):
                raise NotModified(f"container {c.name} is already started")
            c.state.status.check_start(c.name)
            launching = True
            launch(m, c)
    except EngineError:
        # As Docker: a --rm container that cannot start goes away (one whose state
        # refused the start, e.g. being removed, is left to whoever holds it).
        if c.host_config.get("AutoRemove") and launching:
            m.remove_quietly(c)
        raise
    m.event(c, "start", **ports.event_attrs(c))
    m.notify()


def launch(m: ContainerManager, c: Container) -> None:
    """Start the process of a container whose lock the caller holds."""
    state_dir = m.state_dir(c)
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        connect.up(m, c)  # the netns the init joins, ready before it exists
        ports.plan(c, m.default_bind_ip)  # needs the address connect.up gave
        shim = ShimHandle.launch(c.spec, state_dir)
    except EngineError as exc:
        _record_failed_start(m, c, 128, exc.message)
        raise
    ports.record(c, shim)
    _connect_pending(m, c, shim)
    size = c.host_config.get("ConsoleSize") or [0, 0]
    if c.spec.tty and len(size) == 2 and size[0] and size[1]:
        shim.resize(int(size[0]), int(size[1]))  # before exec: the first command sees it
    try:
        shim.release()
    except ExecFailed as exc:
        shim.wait(5)
        _record_failed_start(m, c, exc.exit_code, exc.message)
        raise
    _record_running(c, shim.pid)
    m.store.save(c)
    m.shims[c.id] = shim
    m.monitor.watch(c.id, shim.monitor())
    m.health.watch(c)


def _record_running(c: Container, pid: int) -> None:
    c.state.status = Status.RUNNING
    c.state.pid = pid
    c.state.started_at = now_rfc3339()
    c.state.exit_code = 0
    c.state.error = ""
    c.state.oom_killed = False
    c.manually_stopped = False


def _record_failed_start(m: ContainerManager, c: Container, code: int, message: str) -> None:
    c.state.exit_code = code
    c.state.error = message
    if c.state.status is Status.RESTARTING:
        c.state.status = Status.EXITED
    connect.down(m, c)
    m.store.save(c)
    m.cgroups.remove(c.id)
    for p in m.pending.pop(c.id, []):
        p.ready.set()


def _connect_pending(m: ContainerManager, c: Container, shim: ShimHandle) -> None:
    for p in m.pending.pop(c.id, []):
        try:
            p.sock = shim.attach(p.stdin, p.stdout, p.stderr)
        except (OSError, EngineError) as exc:
            log.warning("could not attach a waiting client to %s: %s", c.short_id, exc)
        p.ready.set()
