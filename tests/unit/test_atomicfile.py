"""Atomic writes: whole files or nothing, the asked mode, no temp files left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine import atomicfile


def names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("durable", [True, False])
def test_write_bytes_replaces_content_with_the_mode(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "sub" / "f.json"
    atomicfile.write_bytes(target, b"old", durable=durable)
    atomicfile.write_bytes(target, b"new", mode=0o600, durable=durable)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert names(target.parent) == ["f.json"]


def test_write_json_round_trips(tmp_path: Path) -> None:
    atomicfile.write_json(tmp_path / "r.json", {"b": [1, 2], "a": None})
    assert atomicfile.read_json(tmp_path / "r.json") == {"a": None, "b": [1, 2]}


@pytest.mark.parametrize("durable", [True, False])
def test_write_many_writes_every_file(tmp_path: Path, durable: bool) -> None:
    files = {tmp_path / "hosts": b"h\n", tmp_path / "hostname": b"n\n", tmp_path / "x" / "y": b""}
    atomicfile.write_many(files, mode=0o640, durable=durable)
    for path, data in files.items():
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert names(tmp_path) == ["hostname", "hosts", "x"]


def test_write_many_renames_nothing_when_a_temp_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "keep").write_bytes(b"old")
    blocked = tmp_path / "file-not-dir"
    blocked.write_bytes(b"")
    with pytest.raises(OSError):
        atomicfile.write_many({tmp_path / "keep": b"new", blocked / "child": b"x"})
    assert (tmp_path / "keep").read_bytes() == b"old"
    assert names(tmp_path) == ["file-not-dir", "keep"]


def test_write_many_failed_rename_leaves_no_temp_files(tmp_path: Path) -> None:
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-dir" / "inside").write_bytes(b"")  # a non-empty dir cannot be replaced
    with pytest.raises(OSError):
        atomicfile.write_many({tmp_path / "first": b"1", tmp_path / "a-dir": b"2"})
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert (tmp_path / "a-dir").is_dir()


def _open_under(root: Path) -> list[str]:
    """What this process holds open under `root` (files, the directory, deleted temps).

    Not a count of all descriptors: other tests' threads in this worker open and
    close their own meanwhile."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (or the listing's own descriptor)
        if target.startswith(str(root)):
            held.append(target)
    return held


def test_no_file_descriptor_leaks(tmp_path: Path) -> None:
    for i in range(20):
        atomicfile.write_many({tmp_path / f"a{i}": b"a", tmp_path / f"b{i}": b"b"})
    with pytest.raises(OSError):
        atomicfile.write_many({tmp_path / "ok": b"", tmp_path / "a0" / "no": b""})
    assert _open_under(tmp_path) == []
