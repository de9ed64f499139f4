"""Layer extraction against hostile tars: nothing outside the root may change.

Every test builds its tar with tarfile, snapshots a sentinel directory beside the
destination (and /etc/passwd), unpacks, and compares. Runs as root, so chown,
mknod and trusted.* xattrs are real.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from engine.errors import Conflict, InvalidParameter
from engine.images.unpack import OPAQUE_XATTR, UnsafeLayer, extract_layer, unpack_layer
from tests.unit.test_images_tarbuild import TarBuilder

pytestmark = pytest.mark.integration


def snapshot(top: Path) -> dict[str, Any]:
    """Every entry below `top` with type, mode, owner, size and content/target."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            extra: Any = None
            if stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            out[str(p.relative_to(top))] = (st.st_mode, st.st_uid, st.st_nlink, st.st_size, extra)
    return out


def host_state() -> tuple[Any, ...]:
    st = os.stat("/etc/passwd")
    return (st.st_nlink, st.st_mtime_ns, hashlib.sha256(Path("/etc/passwd").read_bytes()).digest())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    sentinel = tmp_path / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "keep.txt").write_text("precious")
    (sentinel / "sub" / "inner").write_text("also precious")
    return {"tmp": tmp_path, "sentinel": sentinel, "dest": tmp_path / "layers" / "L"}


def assert_untouched(env: dict[str, Path], before: dict[str, Any], host: tuple[Any, ...]) -> None:
    assert snapshot(env["sentinel"]) == before
    assert host_state() == host
    assert not env["dest"].exists(), "a rejected layer must leave no destination"
    leftovers = (
        [p.name for p in env["dest"].parent.iterdir()] if env["dest"].parent.exists() else []
    )
    assert leftovers == [], f"temp dirs left behind: {leftovers}"


def reject(env: dict[str, Path], layer: bytes, err: type[Exception], match: str) -> None:
    before, host = snapshot(env["sentinel"]), host_state()
    with pytest.raises(err, match=match):
        unpack_layer(io.BytesIO(layer), env["dest"])
    assert_untouched(env, before, host)
    assert snapshot(env["tmp"] / "sentinel") == before


def test_absolute_path_is_made_relative(env: dict[str, Path]) -> None:
    name = f"/tmp/dockyard-unpack-{uuid.uuid4().hex}"
    before = snapshot(env["sentinel"])
    unpack_layer(
        io.BytesIO(TarBuilder().file(name, b"x").file("/../../abs2", b"y").bytes()), env["dest"]
    )
    assert not Path(name).exists()
    assert (env["dest"] / name.lstrip("/")).read_bytes() == b"x"
    assert (env["dest"] / "abs2").read_bytes() == b"y"  # "/.." stays at "/", as filepath.Clean
    assert snapshot(env["sentinel"]) == before


@pytest.mark.parametrize("name", ["../../escape", "../sentinel/keep.txt", "a/../../escape", ".."])
def test_dotdot_escape_is_rejected(env: dict[str, Path], name: str) -> None:
    layer = TarBuilder().file("ok", b"1").file(name, b"pwned").bytes()
    reject(env, layer, UnsafeLayer, "escapes the layer root")


def test_write_through_symlink_is_rejected(env: dict[str, Path]) -> None:
    layer = TarBuilder().symlink("evil", str(env["sentinel"])).file("evil/pwned", b"x").bytes()
    reject(env, layer, UnsafeLayer, "symlink 'evil'")


def test_write_through_relative_symlink_chain_is_rejected(env: dict[str, Path]) -> None:
    t = TarBuilder().dir("a").symlink("a/up", "..").symlink("a/b", "up/..").symlink("c", "a/b/..")
    t.file("c/sentinel/keep.txt", b"overwritten")
    reject(env, t.bytes(), UnsafeLayer, "symlink 'c'")


def test_deep_dotdot_symlink_then_nested_write_is_rejected(env: dict[str, Path]) -> None:
    t = TarBuilder().dir("d").symlink("d/up", "../../../../../../../..")
    t.file("d/up" + str(env["sentinel"]) + "/pwned", b"x")
    reject(env, t.bytes(), UnsafeLayer, "symlink 'up'")


def test_hardlink_to_host_file_is_rejected(env: dict[str, Path]) -> None:
    layer = TarBuilder().hardlink("passwd", "/etc/passwd").bytes()
    reject(env, layer, InvalidParameter, "not in the layer")


def test_hardlink_escaping_is_rejected(env: dict[str, Path]) -> None:
    layer = TarBuilder().hardlink("x", "../sentinel/keep.txt").bytes()
    reject(env, layer, UnsafeLayer, "escapes the layer root")


def test_hardlink_through_symlink_is_rejected(env: dict[str, Path]) -> None:
    layer = TarBuilder().symlink("e", str(env["sentinel"])).hardlink("x", "e/keep.txt").bytes()
    reject(env, layer, UnsafeLayer, "symlink 'e'")


def test_regular_file_replaces_symlink_instead_of_writing_through(env: dict[str, Path]) -> None:
    target = env["sentinel"] / "keep.txt"
    before, host = snapshot(env["sentinel"]), host_state()
    t = TarBuilder().symlink("s", str(target)).file("s", b"new").symlink("p", "/etc/passwd")
    t.file("p", b"root::0:0::/:/bin/sh\n").symlink("d", str(env["sentinel"])).dir("d").file(
        "d/f", b"in"
    )
    unpack_layer(io.BytesIO(t.bytes()), env["dest"])
    assert snapshot(env["sentinel"]) == before and host_state() == host
    assert (env["dest"] / "s").read_bytes() == b"new" and not (env["dest"] / "s").is_symlink()
    assert (env["dest"] / "d").is_dir() and not (env["dest"] / "d").is_symlink()
    assert (env["dest"] / "d" / "f").read_bytes() == b"in"


def test_devices_and_fifos_are_skipped_unless_allowed(env: dict[str, Path]) -> None:
    t = TarBuilder().dir("dev")
    t.node("dev/sda", tarfile.BLKTYPE, 8, 0).node("dev/mem", tarfile.CHRTYPE, 1, 1)
    t.node("dev/fifo", tarfile.FIFOTYPE).file("dev/ok", b"1")
    layer = t.bytes()
    unpack_layer(io.BytesIO(layer), env["dest"])
    assert sorted(os.listdir(env["dest"] / "dev")) == ["ok"]

    allowed = env["tmp"] / "allowed"
    unpack_layer(io.BytesIO(layer), allowed, allow_devices=True)
    sda, mem, fifo = (os.lstat(allowed / "dev" / n) for n in ("sda", "mem", "fifo"))
    assert stat.S_ISBLK(sda.st_mode) and sda.st_rdev == os.makedev(8, 0)
    assert stat.S_ISCHR(mem.st_mode) and mem.st_rdev == os.makedev(1, 1)
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o644


def test_too_long_component_is_invalid_and_leaves_nothing(env: dict[str, Path]) -> None:
    reject(
        env, TarBuilder().file("x" * 300, b"1").bytes(), InvalidParameter, "could not be extracted"
    )


def test_path_longer_than_path_max_extracts(env: dict[str, Path]) -> None:
    name = "/".join(["d" * 200] * 25) + "/leaf"  # ~5000 bytes, each component legal
    unpack_layer(io.BytesIO(TarBuilder().file(name, b"deep").bytes()), env["dest"])
    fd = os.open(env["dest"], os.O_RDONLY)
    try:
        for comp in name.split("/")[:-1]:
            nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        assert os.stat("leaf", dir_fd=fd).st_size == 4
    finally:
        os.close(fd)


def test_whiteouts_become_overlay_whiteouts(env: dict[str, Path]) -> None:
    t = (
        TarBuilder()
        .dir("etc")
        .file("etc/.wh.motd")
        .dir("var/cache", uid=5)
        .file("var/cache/.wh..wh..opq")
    )
    t.file(".wh.toplevel").file("etc/.wh..wh.plnk")
    unpack_layer(io.BytesIO(t.bytes()), env["dest"])
    for p in (env["dest"] / "etc" / "motd", env["dest"] / "toplevel"):
        st = os.lstat(p)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and (st.st_uid, st.st_gid) == (0, 0)
    assert os.getxattr(env["dest"] / "var" / "cache", OPAQUE_XATTR) == b"y"
    assert sorted(os.listdir(env["dest"] / "etc")) == ["motd"]
    assert os.listdir(env["dest"] / "var" / "cache") == []


def test_layer_cannot_plant_overlay_xattrs(env: dict[str, Path]) -> None:
    t = TarBuilder().dir("d", xattrs={"trusted.overlay.redirect": b"/etc", "user.ok": b"1"})
    unpack_layer(io.BytesIO(t.bytes()), env["dest"])
    assert os.listxattr(env["dest"] / "d") == ["user.ok"]


def test_normal_layer_round_trips_metadata(env: dict[str, Path]) -> None:
    t = (
        TarBuilder()
        .dir("./", mode=0o755)
        .dir("bin", mode=0o2755, uid=1, gid=2, mtime=1_600_000_000)
    )
    t.file("bin/su", b"#!suid", mode=0o4755, uid=0, gid=0, xattrs={"user.tag": b"v\x00\xff"})
    t.file("bin/own", b"x", mode=0o640, uid=1000, gid=1001, mtime=1_500_000_123)
    t.hardlink("bin/su2", "bin/su").symlink("bin/link", "/bin/su", uid=7, gid=8)
    t.dir("tmp", mode=0o1777)
    layer = t.bytes()
    info = extract_layer(io.BytesIO(gzip.compress(layer)), env["dest"])
    d = env["dest"]
    assert info.diff_id == "sha256:" + hashlib.sha256(layer).hexdigest()
    assert info.tar_size == len(layer) and info.size == len(b"#!suid") + 1
    su = os.lstat(d / "bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o4755 and su.st_nlink == 2
    assert os.lstat(d / "bin/su2").st_ino == su.st_ino
    assert os.getxattr(d / "bin/su", "user.tag") == b"v\x00\xff"
    own = os.lstat(d / "bin/own")
    assert (own.st_uid, own.st_gid, stat.S_IMODE(own.st_mode)) == (1000, 1001, 0o640)
    assert own.st_mtime == 1_500_000_123
    link = os.lstat(d / "bin/link")
    assert os.readlink(d / "bin/link") == "/bin/su" and (link.st_uid, link.st_gid) == (7, 8)
    bin_ = os.lstat(d / "bin")
    assert stat.S_IMODE(bin_.st_mode) == 0o2755 and (bin_.st_uid, bin_.st_gid) == (1, 2)
    assert bin_.st_mtime == 1_600_000_000  # set after its children were created
    assert stat.S_IMODE(os.lstat(d / "tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o755


def test_corrupt_and_truncated_layers_leave_nothing(env: dict[str, Path]) -> None:
    layer = TarBuilder().file("big", os.urandom(50_000)).bytes()
    reject(env, layer[:20_000], InvalidParameter, "truncated|not a valid tar")
    gz = gzip.compress(layer)
    reject(env, gz[: len(gz) // 2], InvalidParameter, "corrupt")
    reject(env, b"\x28\xb5\x2f\xfd" + b"\x00" * 64, InvalidParameter, "zstd")
    reject(env, b"this is not a tar at all" * 40, InvalidParameter, "not a valid tar")


def test_existing_nonempty_destination_is_a_conflict(env: dict[str, Path]) -> None:
    env["dest"].mkdir(parents=True)
    (env["dest"] / "old").write_text("keep")
    with pytest.raises(Conflict):
        unpack_layer(io.BytesIO(TarBuilder().file("new", b"1").bytes()), env["dest"])
    assert os.listdir(env["dest"]) == ["old"]
    assert sorted(os.listdir(env["dest"].parent)) == ["L"]


def test_later_members_replace_earlier_ones(env: dict[str, Path]) -> None:
    t = TarBuilder().dir("d").file("d/x", b"1").dir("d/sub").file("d/sub/y", b"2")
    t.file("d", b"now a file").file("f", b"old").dir("f").file("f/z", b"3")
    unpack_layer(io.BytesIO(t.bytes()), env["dest"])
    assert (env["dest"] / "d").read_bytes() == b"now a file"
    assert (env["dest"] / "f" / "z").read_bytes() == b"3"
