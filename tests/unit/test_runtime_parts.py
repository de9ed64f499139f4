"""Pure parts of the runtime: capabilities, users, log records, paths, frames."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.errors import EngineError, InvalidParameter
from engine.runtime import capabilities as caps
from engine.runtime.command import CommandError, look_path
from engine.runtime.logwriter import LogWriter, record, rfc3339_nano
from engine.runtime.rootfs import secure_join, tmpfs_options
from engine.runtime.shim import frame
from engine.runtime.syscalls import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY
from engine.runtime.user import merge_env, resolve, with_home


def test_default_caps_mask_matches_docker() -> None:
    assert caps.mask(caps.DEFAULT) == 0xA80425FB


@pytest.mark.parametrize(
    ("add", "drop", "expect"),
    [
        (["net_admin"], ["CAP_CHOWN"], set(caps.DEFAULT) - {"CAP_CHOWN"} | {"CAP_NET_ADMIN"}),
        (["ALL"], ["kill"], set(caps.NUMBER) - {"CAP_KILL"}),
        (["SYS_TIME"], ["all"], {"CAP_SYS_TIME"}),
        ([], [], set(caps.DEFAULT)),
    ],
)
def test_cap_add_drop(add: list[str], drop: list[str], expect: set[str]) -> None:
    assert set(caps.effective_names(add, drop, False)) == expect


def test_privileged_gets_everything() -> None:
    assert set(caps.effective_names([], ["ALL"], True)) == set(caps.NUMBER)


def test_unknown_cap_is_invalid() -> None:
    with pytest.raises(InvalidParameter, match='unknown capability: "CAP_BOGUS"'):
        caps.effective_names(["CAP_BOGUS"], [], False)


PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n"
GROUP = b"root:x:0:\nappg:x:1001:\nwheel:x:10:app,other\ndocker:x:999:app\n"


@pytest.mark.parametrize(
    ("user", "uid", "gid", "sgids", "home"),
    [
        ("", 0, 0, [], "/root"),
        ("app", 1000, 1001, [10, 999], "/home/app"),
        ("1000", 1000, 1001, [10, 999], "/home/app"),
        ("4242", 4242, 0, [], "/"),
        ("4242:77", 4242, 77, [], "/"),
        ("app:wheel", 1000, 10, [], "/home/app"),
        ("app:999", 1000, 999, [], "/home/app"),
    ],
)
def test_resolve_user(user: str, uid: int, gid: int, sgids: list[int], home: str) -> None:
    u = resolve(user, PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids, u.home) == (uid, gid, sgids, home)


def test_unknown_user_and_group() -> None:
    with pytest.raises(EngineError, match="unable to find user bob: no matching entries in passwd"):
        resolve("bob", PASSWD, GROUP)
    with pytest.raises(
        EngineError, match="unable to find group nope: no matching entries in group"
    ):
        resolve("app:nope", PASSWD, GROUP)
    with pytest.raises(EngineError, match="unable to find user app"):
        resolve("app", None, None)
    assert resolve("5", None, None).uid == 5


def test_env_helpers() -> None:
    assert with_home(["A=1"], "/h") == ["A=1", "HOME=/h"]
    assert with_home(["HOME=/x"], "/h") == ["HOME=/x"]
    assert merge_env(["A=1", "B=2"], ["A=3"]) == ["A=3", "B=2"]


def test_log_records_and_partial_lines(tmp_path: Path) -> None:
    log = LogWriter(str(tmp_path / "c.log"))
    log.write("stdout", b"a\nb")
    log.write("stderr", b"e\n")
    log.write("stdout", b"c\n\xff")
    log.close()
    rows = [json.loads(x) for x in (tmp_path / "c.log").read_text().splitlines()]
    assert [(r["stream"], r["log"]) for r in rows] == [
        ("stdout", "a\n"),
        ("stderr", "e\n"),
        ("stdout", "bc\n"),
        ("stdout", "\ufffd"),
    ]


def test_record_format() -> None:
    assert record("stdout", b'hi "x"\n', 1_700_000_000_123_000_000) == (
        b'{"log":"hi \\"x\\"\\n","stream":"stdout","time":"2023-11-14T22:13:20.123Z"}\n'
    )
    assert rfc3339_nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_log_rotation(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    log = LogWriter(str(path), max_size=200, max_file=3)
    for i in range(30):
        log.write("stdout", f"line {i}\n".encode())
    log.close()
    assert {p.name for p in tmp_path.iterdir()} == {"c.log", "c.log.1", "c.log.2"}
    assert all(p.stat().st_size <= 200 for p in tmp_path.iterdir())
    assert "line 29" in path.read_text()


def test_log_single_file_truncates(tmp_path: Path) -> None:
    log = LogWriter(str(tmp_path / "c.log"), max_size=100, max_file=1)
    for i in range(10):
        log.write("stdout", f"line {i}\n".encode())
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["c.log"]


def test_secure_join_keeps_symlinks_inside(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    os.symlink("/etc/../../../../outside", tmp_path / "escape")
    os.symlink("../../../etc", tmp_path / "etc" / "up")
    root = str(tmp_path)
    assert secure_join(root, "/escape/x") == f"{root}/outside/x"
    assert secure_join(root, "/etc/up/passwd") == f"{root}/etc/passwd"
    assert secure_join(root, "../../a") == f"{root}/a"
    assert secure_join(root, "/") == f"{root}/"


def test_tmpfs_options() -> None:
    assert tmpfs_options(["size=64m", "mode=1777", "ro", "noexec"]) == (
        MS_NOSUID | MS_NODEV | MS_RDONLY | MS_NOEXEC,
        "size=64m,mode=1777",
    )
    assert tmpfs_options(["dev", "suid"]) == (0, "")


def test_look_path(tmp_path: Path) -> None:
    exe = tmp_path / "tool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (tmp_path / "plain").write_text("")
    env = [f"PATH=/nonexistent:{tmp_path}"]
    assert look_path("tool", env) == str(exe)
    assert look_path("/abs/thing", env) == "/abs/thing"
    with pytest.raises(CommandError) as info:
        look_path("plain", env)
    assert info.value.exit_code == 127
    assert info.value.message == 'exec: "plain": executable file not found in $PATH'


def test_frame_header() -> None:
    assert frame(2, b"abc") == b"\x02\x00\x00\x00\x00\x00\x00\x03abc"
