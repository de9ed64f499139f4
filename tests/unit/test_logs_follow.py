"""engine/logs.py following a json-file log while the writer rotates or truncates it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from engine import logs


def line(n: int) -> bytes:
    record = {"log": f"n-{n}\n", "stream": "stdout", "time": "2024-01-01T00:00:00.000000001Z"}
    return json.dumps(record).encode() + b"\n"


def append(path: Path, *numbers: int) -> None:
    with open(path, "ab") as f:
        for n in numbers:
            f.write(line(n))


def rotate(path: Path, max_file: int) -> None:
    """What runtime/logwriter.py does: shift .N files up, the live file becomes .1."""
    for i in range(max_file - 1, 0, -1):
        src = Path(f"{path}.{i - 1}") if i > 1 else path
        if src.exists():
            os.replace(src, f"{path}.{i}")


def numbers(records: Iterator[logs.Record], count: int) -> list[int]:
    return [int(next(records).text.decode().split("-")[1]) for _ in range(count)]


def test_follow_reads_the_old_file_tail_and_every_rotated_file(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    append(log, 1, 2)
    follower = logs.read(log, logs.LogQuery(follow=True), lambda: True)
    assert numbers(follower, 2) == [1, 2]
    append(log, 3)  # written just before the rotation: must not be lost
    rotate(log, 4)
    append(log, 4)
    rotate(log, 4)  # two rotations between polls
    assert not log.exists()  # mid-rotation: no live file for a moment
    append(log, 5)
    assert numbers(follower, 3) == [3, 4, 5]


def test_follow_after_the_old_file_rotated_away(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    append(log, 1)
    follower = logs.read(log, logs.LogQuery(follow=True), lambda: True)
    assert numbers(follower, 1) == [1]
    for n in (2, 3, 4):  # max-file=2: the file holding 1 is deleted
        rotate(log, 2)
        append(log, n)
    got = numbers(follower, 2)
    assert got == [3, 4]  # what is left, in order, nothing twice


def test_follow_after_truncation_in_place(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    append(log, 1, 2, 3)
    follower = logs.read(log, logs.LogQuery(follow=True), lambda: True)
    assert numbers(follower, 3) == [1, 2, 3]
    os.truncate(log, 0)  # max-file=1 truncates instead of renaming
    append(log, 4)
    assert numbers(follower, 1) == [4]


def test_tail_spans_rotated_files_in_order(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    append(log, 1, 2)
    rotate(log, 3)
    append(log, 3, 4)
    rotate(log, 3)
    append(log, 5)
    records = logs.read(log, logs.LogQuery(tail=3), lambda: False)
    assert [r.text for r in records] == [b"n-3\n", b"n-4\n", b"n-5\n"]
