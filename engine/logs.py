"""Reading a container's json-file log: `docker logs` with --tail/--since/--until/-f/-t.

The shim writes the log (runtime/logwriter.py) and rotates it to `<log>.1`,
`<log>.2` ...; reading here is independent of the shim, so logs stay readable
after the container exits and after an engine restart.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.containers.model import parse_rfc3339

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


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed stream framing: stream byte, 3 zero bytes, big-endian length."""
    return struct.pack(">BxxxI", stream, len(data)) + data


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


def _existing(path: Path, q: LogQuery) -> tuple[Iterator[Record], int, int]:
    """Records already on disk, plus the position in the live file to follow from."""
    records: deque[Record] | list[Record] = deque(maxlen=q.tail) if q.tail >= 0 else []
    inode = offset = 0
    for f in _files(path):
        found_inode, end, recs = _read_new(f, -1, 0)
        records.extend(r for r in recs if _wanted(r, q))
        if f == path:
            inode, offset = found_inode, end
    return iter(records), inode, offset


def read(path: Path, q: LogQuery, alive: Callable[[], bool]) -> Iterator[Record]:
    past, inode, offset = _existing(path, q)
    yield from past
    if not q.follow:
        return
    while True:
        running = alive()
        inode, offset, fresh = _read_new(path, inode, offset)
        for rec in fresh:
            if _wanted(rec, q):
                yield rec
        if q.until and time.time() > q.until:
            return
        if not running and not fresh:
            return
        time.sleep(POLL_SECONDS)


def _read_new(path: Path, inode: int, offset: int) -> tuple[int, int, list[Record]]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below; absence is normal
    except FileNotFoundError:
        return inode, offset, []
    with fh:
        st = os.fstat(fh.fileno())
        if st.st_ino != inode:  # rotated: the old file's tail was renamed to .1; start anew
            inode, offset = st.st_ino, 0
        fh.seek(offset)
        out = []
        for line in fh:
            if not line.endswith(b"\n"):
                break
            offset += len(line)
            rec = _parse(line)
            if rec is not None:
                out.append(rec)
        return inode, offset, out


def render(rec: Record, q: LogQuery, tty: bool) -> bytes:
    data = rec.text
    if q.timestamps:
        data = rec.time.encode() + b" " + data
    return data if tty else frame(STREAMS.get(rec.stream, 1), data)
