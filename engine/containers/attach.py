"""Attaching a client to a container's stdio, before or after it starts."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.containers.model import Container
from engine.containers.status import Status
from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.containers.manager import ContainerManager

log = logging.getLogger("engine.containers")


@dataclass
class PendingAttach:
    """An attach that arrived before start; it is connected to the shim before the exec."""

    stdin: bool
    stdout: bool
    stderr: bool
    ready: threading.Event = field(default_factory=threading.Event)
    sock: Any = None  # the shim socket, once connected; None if there was nothing to attach to


def prepare_attach(
    m: ContainerManager, c: Container, stdin: bool, stdout: bool, stderr: bool
) -> PendingAttach:
    """Register an attach now, before the client hears 101 Switching Protocols.

    `docker run` sends start as soon as its attach is answered, so an attach
    registered any later can miss a short-lived container's whole output. The
    returned `ready` is set once `sock` is connected (None: nothing to attach to)."""
    pending = PendingAttach(stdin, stdout, stderr)
    with c.lock:
        shim = m.shims.get(c.id)
        if shim is None or c.state.status not in (Status.RUNNING, Status.PAUSED):
            m.pending.setdefault(c.id, []).append(pending)
            return pending
        try:
            pending.sock = shim.attach(stdin, stdout, stderr)
        except (OSError, EngineError) as exc:
            log.info("attach to %s found it gone: %s", c.short_id, exc)
        pending.ready.set()
    return pending
