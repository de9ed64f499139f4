"""Container status, with the guards every verb checks before it acts.

Docker's messages for wrong-state requests are part of the API clients see
(`docker start` on a paused container, `docker rm` of a running one), so the
guards raise Conflict with those words.
"""

from __future__ import annotations

from enum import StrEnum

from engine.errors import Conflict


class Status(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"

    @property
    def alive(self) -> bool:
        return self in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

    def check_start(self, name: str) -> None:
        if self is Status.PAUSED:
            raise Conflict(f"cannot start a paused container {name}, try unpause instead")
        if self in (Status.REMOVING, Status.DEAD):
            raise Conflict(f"container {name} is marked for removal and cannot be started")

    def check_kill(self, name: str) -> None:
        if not self.alive:
            raise Conflict(f"container {name} is not running")

    def check_pause(self, name: str) -> None:
        if self is Status.PAUSED:
            raise Conflict(f"container {name} is already paused")
        if self is not Status.RUNNING:
            raise Conflict(f"container {name} is not running")

    def check_unpause(self, name: str) -> None:
        if self is not Status.PAUSED:
            raise Conflict(f"container {name} is not paused")

    def check_remove(self, name: str, force: bool) -> None:
        if self.alive and not force:
            state = "paused" if self is Status.PAUSED else "running"
            raise Conflict(
                f'cannot remove container "/{name}": container is {state}: '
                "stop the container before removing or force remove"
            )

    def check_exec(self, name: str) -> None:
        if self is Status.PAUSED:
            raise Conflict(f"container {name} is paused, unpause the container before exec")
        if self is not Status.RUNNING:
            raise Conflict(f"container {name} is not running")
