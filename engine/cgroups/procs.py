"""Processes in a cgroup: list them, move one in, signal them all."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from engine.cgroups import fs
from engine.errors import EngineError

EMPTY_TIMEOUT = 10.0


def list_pids(cgroup_dir: Path) -> list[int]:
    try:
        text = (cgroup_dir / "cgroup.procs").read_text()
    except FileNotFoundError:
        return []
    return [int(line) for line in text.split()]


def join(cgroup_dir: Path, pid: int) -> None:
    """Move a whole process (all its threads) into the cgroup."""
    fs.write(cgroup_dir / "cgroup.procs", pid)


def signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue  # exited between the listing and the kill


def wait_empty(dirs: list[Path], timeout: float = EMPTY_TIMEOUT) -> None:
    """Wait until no process is left, so rmdir will not meet EBUSY."""
    deadline = time.monotonic() + timeout
    while any(list_pids(d) for d in dirs):
        if time.monotonic() > deadline:
            left = sorted({p for d in dirs for p in list_pids(d)})
            raise EngineError(f"processes {left} survived SIGKILL in {dirs[0]}")
        time.sleep(0.005)
