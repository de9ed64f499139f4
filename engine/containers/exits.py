"""What happens when a container's process ends: record, event, restart policy, --rm.

Runs on a thread of its own per exit (see monitor.py), because it takes the
container's lock and may start the container again after a back-off.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from engine.containers import connect, restart
from engine.containers.model import Container
from engine.containers.start import launch
from engine.containers.status import Status
from engine.errors import EngineError, NotFound
from engine.runtime.spec import ExitStatus

if TYPE_CHECKING:
    from engine.containers.manager import ContainerManager

log = logging.getLogger("engine.containers")


def on_exit(m: ContainerManager, cid: str) -> None:
    try:
        c = m.store.get(cid)
    except NotFound:
        return
    with c.lock:
        status, again = _record(m, c)
    m.event(c, "die", exitCode=str(status.exit_code))
    if status.oom_killed:
        m.event(c, "oom")
    with m.changed:
        m.exits[cid] = m.exits.get(cid, 0) + 1
        m.changed.notify_all()
    if again:
        delay = restart.backoff(c.restart_count + 1)
        threading.Timer(delay, _restart_after_exit, args=(m, c)).start()
    elif c.host_config.get("AutoRemove") and not m.remove_quietly(c):
        with c.lock:
            if c.id not in m.removed:  # the record is still there: keep the exit
                m.store.save(c)


def _record(m: ContainerManager, c: Container) -> tuple[ExitStatus, bool]:
    """Record the exit (lock held); returns it and whether the policy restarts the container."""
    shim = m.shims.pop(c.id, None)
    m.health.unwatch(c)
    status = (shim.wait(10) if shim else None) or ExitStatus(
        255, error="the container's supervisor ended without recording an exit status"
    )
    c.state.record_exit(status)
    connect.down(m, c)
    m.cgroups.remove(c.id)
    if not c.host_config.get("AutoRemove"):  # an auto-removed record is deleted next
        m.store.save(c)
    policy = c.host_config.get("RestartPolicy") or {}
    again = restart.should_restart(policy, status.exit_code, c.restart_count, c.manually_stopped)
    if again:
        c.state.status = Status.RESTARTING
        m.store.save(c)
    return status, again


def _restart_after_exit(m: ContainerManager, c: Container) -> None:
    with c.lock:
        if c.state.status is not Status.RESTARTING or c.manually_stopped:
            return
        c.restart_count += 1
        try:
            launch(m, c)
        except EngineError as exc:
            log.warning("restarting %s failed: %s", c.short_id, exc.message)
            m.notify()
            return
    m.event(c, "restart")
    m.event(c, "start")
    m.notify()
