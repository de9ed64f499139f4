"""`docker rm` (with -f and -v) and `docker container prune`."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.atomicfile import TRASH, discard_tree
from engine.containers import connect
from engine.containers.model import Container
from engine.containers.status import Status
from engine.containers.stop import kill, wait_exit
from engine.errors import Conflict, EngineError, NotFound
from engine.volumes import ANONYMOUS_LABEL

if TYPE_CHECKING:
    from engine.containers.manager import ContainerManager

log = logging.getLogger("engine.containers")

REMEMBER_REMOVED = 256  # exit codes kept for `wait?condition=removed` arriving late


def remove(m: ContainerManager, c: Container, force: bool, volumes: bool) -> None:
    c.state.status.check_remove(c.name, force)
    if c.state.status.alive:
        seq = m.exits.get(c.id, 0)
        with contextlib.suppress(Conflict):
            kill(m, c, signal.SIGKILL)
        wait_exit(m, c, seq, 30.0)
    with c.lock:
        if c.id in m.removed:
            return
        c.state.status = Status.REMOVING
        for p in m.pending.pop(c.id, []):
            p.ready.set()
        m.cgroups.remove(c.id)
        connect.down(m, c)  # a sandbox a crash left behind
        # Renamed away, deleted in the background: `docker run --rm` waits on this removal.
        discard_tree(m.state_dir(c), m.exec_root / TRASH)
        m.store.remove(c)
        if volumes:
            _remove_anonymous_volumes(m, c)
        with m.changed:
            m.removed[c.id] = c.state.exit_code
            while len(m.removed) > REMEMBER_REMOVED:
                m.removed.popitem(last=False)
            m.changed.notify_all()
    for hook in m.on_removed:
        hook(c.id)
    m.event(c, "destroy")


def remove_quietly(m: ContainerManager, c: Container) -> bool:
    """For --rm: remove with -f -v, logging instead of raising; True when it is gone."""
    try:
        remove(m, c, force=True, volumes=True)
    except EngineError as exc:
        log.warning("auto-removing %s failed: %s", c.short_id, exc.message)
        return False
    return True


def prune(m: ContainerManager, match: Callable[[Container], bool]) -> list[str]:
    """Remove the stopped containers `match` accepts; returns their ids."""
    deleted = []
    for c in m.store.all():
        if c.state.status in (Status.EXITED, Status.CREATED, Status.DEAD) and match(c):
            with contextlib.suppress(NotFound, Conflict):
                remove(m, c, force=False, volumes=False)
                deleted.append(c.id)
    return deleted


def _remove_anonymous_volumes(m: ContainerManager, c: Container) -> None:
    for mount in c.mounts:
        name = mount.get("Name")
        if not name:
            continue
        try:
            if ANONYMOUS_LABEL in m.volumes.inspect(name)["Labels"]:
                m.volumes.remove(name, m.volume_users)
        except EngineError as exc:
            log.info("kept volume %s of %s: %s", name, c.short_id, exc.message)
