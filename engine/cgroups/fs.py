"""Reading and writing cgroupfs files, with errors that name the file.

The kernel answers a bad write with a bare errno (EINVAL, EBUSY ...); turning
it into an EngineError that names the file and the value is what lets a user
see *which* limit the kernel refused.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from engine.errors import EngineError


def write(path: Path, value: str | int) -> None:
    """Write one value with a single write(2), as cgroupfs expects."""
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise EngineError(f"cannot open {path} to write {value!r}: {e.strerror}") from e
    try:
        os.write(fd, data)
    except OSError as e:
        raise EngineError(f"the kernel refused {value!r} in {path}: {e.strerror}") from e
    finally:
        os.close(fd)


def write_limit(path: Path, value: str | int, unlimited: str | int) -> None:
    """Write a limit, tolerating a missing file only when nothing is asked for.

    A controller may be absent (a v1 kernel without swap accounting, a v2
    hierarchy that does not delegate `memory`). Asking for "no limit" there
    is already true; asking for a real limit must fail loudly.
    """
    if path.exists():
        write(path, value)
    elif str(value) != str(unlimited):
        raise EngineError(
            f"cannot set {path.name}={value}: {path.parent} has no such file "
            "(is the controller enabled in this kernel/hierarchy?)"
        )


def read(path: Path) -> str:
    return path.read_text().strip()


def read_words(path: Path) -> set[str]:
    """Space-separated lists (cgroup.controllers); a missing file lists nothing."""
    try:
        return set(read(path).split())
    except FileNotFoundError:
        return set()


def read_int(path: Path, default: int = 0) -> int:
    """Read an integer file; "max" and a missing file give `default`."""
    try:
        text = read(path)
    except FileNotFoundError:
        return default
    return default if text == "max" else int(text)


def read_keyed(path: Path) -> dict[str, int]:
    """Parse flat keyed files such as memory.events or cpu.stat ("key N" lines)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split() for line in lines)
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}


def mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def rmdir(path: Path) -> None:
    """Remove one cgroup directory; a missing one is already removed."""
    try:
        path.rmdir()
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise EngineError(f"cgroup {path} still has processes; cannot remove it") from e
        raise EngineError(f"cannot remove cgroup {path}: {e.strerror}") from e
