"""What one folder holds, by lstat only, and the content hash of a file.

Why lstat and never stat: a symlink is synced as a link (its target text), and a scan never
follows one, so a link pointing out of the share cannot make us read or write outside it.
Special files (sockets, FIFOs, devices) are not synced: they mean nothing on the other side.

Paths are "/"-separated and relative to the share's root on both sides, whatever the host
OS; `local()` turns one into this OS's path.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from machine.sync.ignore import IgnoreRules

FILE, DIR, LINK = "f", "d", "l"
CHUNK = 1 << 20
Key = tuple[object, ...]


@dataclass(frozen=True)
class Entry:
    """One path as seen by lstat: kind, size, mtime (ns), permission bits, link target."""

    kind: str
    size: int = 0
    mtime_ns: int = 0
    mode: int = 0
    target: str = ""

    def key(self) -> Key:
        """What must stay equal for the entry to count as unchanged since the last sync.

        Files: size, mtime and mode (a chmod changes neither size nor mtime). Directories:
        only that they exist (their mtime moves with every child). Links: their target."""
        if self.kind == FILE:
            return (FILE, self.size, self.mtime_ns, self.mode)
        if self.kind == LINK:
            return (LINK, self.target)
        return (DIR,)

    def to_json(self) -> list[object]:
        return [self.kind, self.size, self.mtime_ns, self.mode, self.target]

    @classmethod
    def from_json(cls, doc: list[object]) -> Entry:
        kind, size, mtime_ns, mode, target = doc
        return cls(str(kind), int(str(size)), int(str(mtime_ns)), int(str(mode)), str(target))


def local(root: str, rel: str) -> str:
    return os.path.join(root, *rel.split("/")) if rel else root


def entry_of(st: os.stat_result, path: str) -> Entry | None:
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISREG(st.st_mode):
        return Entry(FILE, st.st_size, st.st_mtime_ns, mode)
    if stat.S_ISDIR(st.st_mode):
        return Entry(DIR, 0, 0, mode)
    if stat.S_ISLNK(st.st_mode):
        return Entry(LINK, 0, 0, 0, os.readlink(path))
    return None


def lstat(root: str, rel: str) -> Entry | None:
    path = local(root, rel)
    try:
        return entry_of(os.lstat(path), path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _walk(root: str, rel: str, rules: IgnoreRules, out: dict[str, Entry]) -> None:
    try:
        with os.scandir(local(root, rel)) as it:
            children = list(it)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for child in children:
        crel = f"{rel}/{child.name}" if rel else child.name
        try:
            entry = entry_of(child.stat(follow_symlinks=False), child.path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if entry is None or rules.ignored(crel, entry.kind == DIR):
            continue
        out[crel] = entry
        if entry.kind == DIR:
            _walk(root, crel, rules, out)


def scan(root: str, rules: IgnoreRules, scopes: Iterable[str] = ("",)) -> dict[str, Entry]:
    """Entries under each scope: the scope itself ("" is the root, not listed) and, when it
    is a directory, everything below it that the rules do not ignore."""
    out: dict[str, Entry] = {}
    for scope in scopes:
        if scope:
            entry = lstat(root, scope)
            if entry is None or rules.ignored(scope, entry.kind == DIR):
                continue
            out[scope] = entry
            if entry.kind != DIR:
                continue
        _walk(root, scope, rules, out)
    return out


def digest(root: str, rel: str) -> str | None:
    """sha256 of a regular file's content, read without following a link; None if the
    path is gone or is not a regular file any more."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(local(root, rel), flags)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError:
        return None  # ELOOP: it became a link
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        h = hashlib.sha256()
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()
