"""`docker wait` and the `wait?condition=` that `docker run` sends before start."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.containers.model import Container
from engine.containers.status import Status
from engine.errors import InvalidParameter, NotFound

if TYPE_CHECKING:
    from engine.containers.manager import ContainerManager

CONDITIONS = ("", "not-running", "next-exit", "removed")
RECHECK_SECONDS = 1.0


def check_condition(condition: str) -> None:
    if condition not in CONDITIONS:
        raise InvalidParameter(
            f"invalid condition: {condition!r}; use not-running, next-exit or removed"
        )


def known_id(m: ContainerManager, ref: str) -> str:
    """The id to wait on: a container's, or one just removed (a fast `run --rm`)."""
    try:
        return m.store.get(ref).id
    except NotFound:
        if ref in m.removed:
            return ref
        raise


def wait(m: ContainerManager, cid: str, condition: str) -> int:
    """Block until the condition holds; returns the exit code Docker reports."""
    check_condition(condition)
    cid = known_id(m, cid)
    try:
        c = m.store.get(cid)
    except NotFound:
        return m.removed[cid]  # known_id found it among the removed
    seq = m.exits.get(c.id, 0)
    with m.changed:
        while not _holds(m, c, condition, seq):
            m.changed.wait(RECHECK_SECONDS)
    return m.removed.get(c.id, c.state.exit_code)


def _holds(m: ContainerManager, c: Container, condition: str, seq: int) -> bool:
    gone = c.id in m.removed
    if condition == "removed":
        return gone
    if condition == "next-exit":
        return gone or m.exits.get(c.id, 0) != seq
    return gone or not c.state.status.alive or c.state.status is Status.CREATED
