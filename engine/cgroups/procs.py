"""Processes in a cgroup: list them, move one in, signal them all."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from engine.cgroups import fs
from engine.errors import EngineError

EMPTY_TIMEOUT = 10.0


def list_pids(cgroup_dir: Path) -> list[int]:
    """The processes in a cgroup; none once it is gone or being removed (ENODEV)."""
    try:
        text = (cgroup_dir / "cgroup.procs").read_text()
    except FileNotFoundError:
        return []
    except OSError as e:
        if e.errno == errno.ENODEV:
            return []
        raise
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


def own_procs_file(root: Path = Path("/sys/fs/cgroup")) -> Path | None:
    """cgroup.procs of the cgroup this process is in (v2, or v1's pids hierarchy)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, ctrls, path = line.split(":", 2)
        mount = root if ctrls == "" else root / "pids" if "pids" in ctrls.split(",") else None
        if mount is not None:
            candidate = mount / path.lstrip("/") / "cgroup.procs"
            if candidate.is_file():
                return candidate
    return None


def warm_attach(root: Path = Path("/sys/fs/cgroup")) -> None:
    """Start, in the background, the wait the next cgroup join would block on.

    Moving a process into a cgroup (v1 or v2) takes a kernel lock whose
    first writer after a quiet spell waits for an RCU grace period (~10 ms
    here); writers soon after it pass at once. A container start calls this
    before it launches the shim, so that wait runs alongside the shim's own
    start-up instead of after it. The write re-enters this process into the
    cgroup it is already in: a no-op for everything but that lock. Failure
    only loses the head start.
    """
    target = own_procs_file(root)
    if target is not None:
        threading.Thread(target=_rejoin, args=(target,), name="cgroup-warm", daemon=True).start()


def _rejoin(procs_file: Path) -> None:
    with contextlib.suppress(EngineError):
        fs.write(procs_file, os.getpid())
