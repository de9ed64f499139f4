"""Reading a container's json-file log: `docker logs` with --tail/--since/--until/-f/-t.

The shim writes the log (runtime/logwriter.py) and rotates it to `<log>.1`,
`<log>.2` ...; reading here is independent of the shim, so logs stay readable
after the container exits and after an engine restart.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.streamframe import frame
from engine.timefmt import parse_rfc3339

STREAMS = {"stdin": 0, "stdout": 1, "stderr": 2}
POLL_SECONDS = 0.1


@dataclass
class LogQuery:
    stdout: bool = True
    stderr: bool = True
    since: float = 0.0
    until: float = 0.0
    tail: int = -1  # -1 = all
    timestamps: bool = False
    follow: bool = False


@dataclass
class Record:
    stream: str
    text: bytes
    time: str


def _files(path: Path) -> list[Path]:
    rotated = sorted(
        (p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: -int(p.suffix[1:]),
    )
    return [*rotated, path] if path.exists() else rotated


def _parse(line: bytes) -> Record | None:
    try:
        raw = json.loads(line)
        return Record(str(raw.get("stream", "stdout")), str(raw["log"]).encode(), str(raw["time"]))
    except (ValueError, KeyError, TypeError):
        return None  # a torn last line (writer mid-append) or foreign content


def _wanted(rec: Record, q: LogQuery) -> bool:
    if (rec.stream == "stdout" and not q.stdout) or (rec.stream == "stderr" and not q.stderr):
        return False
    if q.since or q.until:
        moment = parse_rfc3339(rec.time)
        if (q.since and moment < q.since) or (q.until and moment > q.until):
            return False
    return True


def _existing(path: Path, q: LogQuery) -> tuple[Iterator[Record], _Cursor | None, int]:
    """Records already on disk, an open cursor at the end of the live file, and the
    inode of the newest file read (where following picks up after a rotation)."""
    records: deque[Record] | list[Record] = deque(maxlen=q.tail) if q.tail >= 0 else []
    cursor, last_inode = None, -1
    for f in _files(path):
        opened = _Cursor.open(f)
        if opened is None:
            continue
        records.extend(r for r in opened.read() if _wanted(r, q))
        last_inode = opened.inode
        if f == path:
            cursor = opened
        else:
            opened.close()
    return iter(records), cursor, last_inode


def read(path: Path, q: LogQuery, alive: Callable[[], bool]) -> Iterator[Record]:
    past, cursor, last_inode = _existing(path, q)
    if not q.follow:
        if cursor is not None:
            cursor.close()
        yield from past
        return
    try:
        yield from past
        while True:
            running = alive()
            fresh, cursor, last_inode = _follow(path, cursor, last_inode)
            for rec in fresh:
                if _wanted(rec, q):
                    yield rec
            if q.until and time.time() > q.until:
                return
            if not running and not fresh:
                return
            time.sleep(POLL_SECONDS)
    finally:
        if cursor is not None:
            cursor.close()


class _Cursor:
    """An open log file and how far it has been read (complete lines only).

    The file stays open while following, so after a rotation the lines written
    to it just before it was renamed to `.1` can still be read."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.inode = os.fstat(fh.fileno()).st_ino
        self.offset = 0

    @classmethod
    def open(cls, path: Path) -> _Cursor | None:
        try:
            return cls(open(path, "rb"))  # closed by the caller
        except FileNotFoundError:
            return None

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.fh.close()

    def read(self) -> list[Record]:
        if os.fstat(self.fh.fileno()).st_size < self.offset:
            self.offset = 0  # truncated in place (max-file=1)
        self.fh.seek(self.offset)
        out = []
        for line in self.fh:
            if not line.endswith(b"\n"):
                break
            self.offset += len(line)
            rec = _parse(line)
            if rec is not None:
                out.append(rec)
        return out


def _follow(
    path: Path, cursor: _Cursor | None, last_inode: int
) -> tuple[list[Record], _Cursor | None, int]:
    """New records since the last call, across any rotations in between."""
    fresh = cursor.read() if cursor is not None else []
    live_inode = _inode(path)
    if live_inode in (-2, last_inode):
        return fresh, cursor, last_inode  # no live file right now (mid-rotation), or same
    # Rotated: finish the old file, then every newer rotated file, then the live one.
    if cursor is not None:
        fresh += cursor.read()
        cursor.close()
    files = _files(path)
    inodes = [_inode(f) for f in files]
    # The old file is gone only if it rotated past max-file: then all that is left is newer.
    newer = files[inodes.index(last_inode) + 1 :] if last_inode in inodes else files
    cursor = None
    for f in newer:
        opened = _Cursor.open(f)
        if opened is None:
            continue
        fresh += opened.read()
        last_inode = opened.inode
        if f == path:
            cursor = opened
        else:
            opened.close()
    return fresh, cursor, last_inode


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return -2


def render(rec: Record, q: LogQuery, tty: bool) -> bytes:
    data = rec.text
    if q.timestamps:
        data = rec.time.encode() + b" " + data
    return data if tty else frame(STREAMS.get(rec.stream, 1), data)
