"""Freezing and thawing a cgroup (docker pause / unpause).

Both versions freeze asynchronously: v1 passes through FREEZING, v2 sets
"frozen 1" in cgroup.events once every task has stopped. Callers get a
cgroup that has settled, so a paused container's processes are really
stopped when pause returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from engine.cgroups import fs
from engine.errors import EngineError

SETTLE_TIMEOUT = 10.0
POLL_INTERVAL = 0.005


def wait_for(done: Callable[[], bool], nudge: Callable[[], None], what: str) -> None:
    """Poll until done(); nudge() re-requests the change (v1 may stall in FREEZING)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            raise EngineError(f"{what} did not settle within {SETTLE_TIMEOUT:.0f}s")
        nudge()
        time.sleep(POLL_INTERVAL)


def state_v1(cgroup_dir: Path) -> str:
    return fs.read(cgroup_dir / "freezer.state")


def set_v1(cgroup_dir: Path, state: str) -> None:
    path = cgroup_dir / "freezer.state"
    fs.write(path, state)
    wait_for(lambda: state_v1(cgroup_dir) == state, lambda: fs.write(path, state), str(path))


def freeze_v1(cgroup_dir: Path) -> None:
    try:
        set_v1(cgroup_dir, "FROZEN")
    except EngineError:
        fs.write(cgroup_dir / "freezer.state", "THAWED")  # never leave it half frozen
        raise


def thaw_v1(cgroup_dir: Path) -> None:
    _unless_gone(cgroup_dir, lambda: set_v1(cgroup_dir, "THAWED"))


def _unless_gone(cgroup_dir: Path, thaw: Callable[[], None]) -> None:
    """Thaw, where a cgroup removed meanwhile counts as thawed: its shim removes it as the
    container ends (a stop or kill -9 of a paused container races with that), and nothing
    is left frozen in a cgroup that no longer exists."""
    try:
        thaw()
    except (OSError, EngineError):
        if cgroup_dir.is_dir():
            raise


def is_frozen_v1(cgroup_dir: Path) -> bool:
    return state_v1(cgroup_dir) == "FROZEN"


def is_frozen_v2(cgroup_dir: Path) -> bool:
    return fs.read_keyed(cgroup_dir / "cgroup.events").get("frozen", 0) == 1


def set_v2(cgroup_dir: Path, frozen: bool) -> None:
    fs.write(cgroup_dir / "cgroup.freeze", int(frozen))
    wait_for(lambda: is_frozen_v2(cgroup_dir) == frozen, lambda: None, str(cgroup_dir))


def freeze_v2(cgroup_dir: Path) -> None:
    try:
        set_v2(cgroup_dir, True)
    except EngineError:
        fs.write(cgroup_dir / "cgroup.freeze", 0)
        raise


def thaw_v2(cgroup_dir: Path) -> None:
    _unless_gone(cgroup_dir, lambda: set_v2(cgroup_dir, False))
