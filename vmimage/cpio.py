"""A reproducible newc cpio writer: the initramfs format the kernel unpacks.

Entries are written in sorted path order with one fixed mtime, uid/gid 0 and
sequential inode numbers, so the same tree always gives the same bytes
(GNU cpio would record the builder's mtimes, owners and inode numbers).
Hard links are stored as separate files: simpler, and the kernel does not care.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member: `data` is file content or a symlink's target."""

    path: str  # relative, no leading slash
    mode: int  # full st_mode (type and permission bits)
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)  # device nodes: (major, minor)


def tree_entries(root: Path) -> Iterator[Entry]:
    """Every file, directory and symlink under `root`, sorted by path."""
    paths = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    for rel in paths:
        full = root / rel
        st = full.lstat()
        if stat.S_ISLNK(st.st_mode):
            yield Entry(rel, stat.S_IFLNK | 0o777, os.readlink(full).encode())
        elif stat.S_ISDIR(st.st_mode):
            yield Entry(rel, stat.S_IFDIR | stat.S_IMODE(st.st_mode))
        elif stat.S_ISREG(st.st_mode):
            yield Entry(rel, stat.S_IFREG | stat.S_IMODE(st.st_mode), full.read_bytes())
        else:
            raise ValueError(f"{rel}: only files, directories and symlinks go into an image")


def write(out: BinaryIO, entries: Iterable[Entry], mtime: int) -> None:
    """Write a newc archive of `entries` (in the order given) and the trailer."""
    ino = 1
    for entry in entries:
        _write_one(out, entry, ino, mtime)
        ino += 1
    _write_one(out, Entry(TRAILER, 0), 0, 0)


def _write_one(out: BinaryIO, entry: Entry, ino: int, mtime: int) -> None:
    name = entry.path.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (
        ino,
        entry.mode,
        0,
        0,
        nlink,
        mtime,
        len(entry.data),
        0,
        0,
        entry.rdev[0],
        entry.rdev[1],
        len(name),
        0,
    )
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    out.write(header + name + _pad(len(header) + len(name)))
    out.write(entry.data + _pad(len(entry.data)))


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)
