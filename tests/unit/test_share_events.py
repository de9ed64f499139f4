"""File-event replay for 9p/virtiofs shares: the host's mapping from watchdog events to
agent operations, its echo guards, and the guest agent's operations on a real directory
(each checked with a real inotify watch: the event it raises and that the bytes, size and
mtime stay as they were)."""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from pathlib import Path

import pytest

from machine import replay_agent
from machine.share_events import Op, Replayer, guest_path, ops_for

IN_MODIFY, IN_CREATE, IN_DELETE, IN_ISDIR = 0x2, 0x100, 0x200, 0x40000000


def test_ops_per_event_kind() -> None:
    assert ops_for("created", False, "/h/a") == [Op("touch", "/h/a")]
    assert ops_for("created", True, "/h/d") == [Op("touch", "/h/d", True)]
    assert ops_for("modified", False, "/h/a") == [Op("touch", "/h/a")]
    assert ops_for("modified", True, "/h/d") == []  # the child's own event names it
    assert ops_for("deleted", False, "/h/a") == [Op("gone", "/h/a")]
    assert ops_for("moved", False, "/h/a", "/h/b") == [Op("gone", "/h/a"), Op("touch", "/h/b")]
    for kind in ("opened", "closed", "closed_no_write"):
        assert ops_for(kind, False, "/h/a") == []


def test_guest_paths() -> None:
    assert guest_path("/h/src", "/g", "/h/src/a/b") == "/g/a/b"
    assert guest_path("/h/src", "/g/", "/h/src/a") == "/g/a"
    assert guest_path("/h/src", "/g", "/h/src") == "/g"
    assert guest_path("/h/src", "/g", "/h/other") is None


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_unchanged_file_is_not_replayed_twice(tmp_path: Path) -> None:
    """Our utimensat keeps mtime and size: its echo from the host watcher is dropped."""
    f = tmp_path / "f"
    f.write_text("x")
    r = Replayer(str(tmp_path), "/g", lambda m: None)
    first = r.message(Op("touch", str(f)))
    assert first == {"op": "touch", "path": "/g/f", "mtime_ns": f.stat().st_mtime_ns}
    assert r.message(Op("touch", str(f))) is None
    os.utime(f, ns=(0, f.stat().st_mtime_ns + 1))
    assert r.message(Op("touch", str(f))) is not None  # a real change is


def test_a_delete_is_replayed_once_and_its_placeholder_echo_dropped(tmp_path: Path) -> None:
    clock = Clock()
    r = Replayer(str(tmp_path), "/g", lambda m: None, clock)
    f = tmp_path / "f"
    assert r.message(Op("gone", str(f))) == {"op": "gone", "path": "/g/f", "dir": False}
    fd = os.open(f, os.O_CREAT | os.O_WRONLY, 0)  # the agent's placeholder, seen on the host
    os.close(fd)
    os.chmod(f, 0)
    assert r.message(Op("touch", str(f))) is None
    f.unlink()
    assert r.message(Op("gone", str(f))) is None  # the placeholder's own delete
    clock.now += 5
    assert r.message(Op("gone", str(f))) is not None


def test_nothing_is_replayed_for_a_name_that_is_back_or_already_gone(tmp_path: Path) -> None:
    r = Replayer(str(tmp_path), "/g", lambda m: None)
    f = tmp_path / "f"
    f.write_text("back")
    assert r.message(Op("gone", str(f))) is None
    assert r.message(Op("touch", str(tmp_path / "never"))) is None
    assert r.message(Op("touch", str(tmp_path))) is None  # the share's root itself


class Watch:
    def __init__(self, path: Path) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        assert self.libc.inotify_add_watch(self.fd, str(path).encode(), 0xFFF) >= 0

    def events(self) -> list[tuple[int, str]]:
        out = []
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        at = 0
        while at < len(data):
            _, mask, _, size = struct.unpack_from("iIII", data, at)
            name = data[at + 16 : at + 16 + size].rstrip(b"\0").decode()
            out.append((mask, name))
            at += 16 + size
        return out

    def close(self) -> None:
        os.close(self.fd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux only")
def test_touch_raises_in_modify_and_changes_nothing(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("content")
    before = f.stat()
    w = Watch(tmp_path)
    try:
        assert replay_agent.touch(str(f), before.st_mtime_ns - 10**9) == "touched"
        assert (IN_MODIFY, "f") in w.events()
    finally:
        w.close()
    after = f.stat()
    assert (after.st_mtime_ns, after.st_size, f.read_text()) == (
        before.st_mtime_ns,
        before.st_size,
        "content",
    )
    assert replay_agent.touch(str(tmp_path / "nope"), 0) == "absent"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux only")
def test_gone_raises_create_then_delete_and_leaves_no_file(tmp_path: Path) -> None:
    w = Watch(tmp_path)
    try:
        assert replay_agent.gone(str(tmp_path / "f"), False) == "replayed"
        assert replay_agent.gone(str(tmp_path / "d"), True) == "replayed"
        events = w.events()
    finally:
        w.close()
    assert [e for e in events if e[0] & (IN_CREATE | IN_DELETE)] == [
        (IN_CREATE, "f"),
        (IN_DELETE, "f"),
        (IN_CREATE | IN_ISDIR, "d"),
        (IN_DELETE | IN_ISDIR, "d"),
    ]
    assert list(tmp_path.iterdir()) == []


def test_gone_never_touches_a_name_that_exists(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("the user's")
    assert replay_agent.gone(str(f), False) == "exists"
    assert f.read_text() == "the user's"
    assert replay_agent.gone(str(tmp_path / "no" / "f"), False) == "no parent"


def test_the_agent_reads_json_lines(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    assert replay_agent.apply({"op": "touch", "path": str(f), "mtime_ns": 0}) == "touched"
    with pytest.raises(ValueError, match="unknown op"):
        replay_agent.apply({"op": "chmod", "path": str(f)})
