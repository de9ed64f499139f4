"""One engine per root: an exclusive lock on `<root>/engine.pid`.

Two engines on one root would each believe they own every container, shim and
cgroup under it; the second one is refused at start, with the first one's pid.
The lock is released by the kernel when the engine exits, however it exits.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from engine.errors import Conflict

PIDFILE = "engine.pid"


def acquire(root: Path) -> int:
    """Lock the root; returns the fd to keep open for the engine's lifetime."""
    path = root / PIDFILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise Conflict(
            f"another engine (pid {holder}) is already running with root {root}; "
            "stop it first, or give this one a different --root"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
