"""The build context and layer diffs, for real: hostile context tars, the cache checksum,
and layers written from a real overlayfs upper directory, checked by unpacking them with
our own extractor over the same lower and comparing the trees."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.build import context, layerdiff
from engine.build.context import ContextTooLarge
from engine.errors import InvalidParameter
from engine.images.unpack import extract_layer
from tests.unit.test_images_tarbuild import TarBuilder

pytestmark = pytest.mark.integration

# security.capability for cap_net_bind_service=ep (VFS_CAP_REVISION_2, effective bit set).
CAP_NET_BIND = bytes.fromhex("01000002" + "00040000" + "00000000" + "00000000" + "00000000")


def snapshot(top: Path) -> dict[str, Any]:
    """Every entry below `top`: type, mode, owner, rdev, size, content/target, xattrs."""
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
            xattrs = {
                k: os.getxattr(p, k, follow_symlinks=False)
                for k in os.listxattr(p, follow_symlinks=False)
                if not k.startswith("trusted.overlay.")
            }
            mtime = int(st.st_mtime) if not stat.S_ISDIR(st.st_mode) else None
            out[str(p.relative_to(top))] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                st.st_rdev,
                st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
                extra,
                xattrs,
                mtime,
            )
    return out


# -- receiving the context ----------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep.txt").write_text("precious")
    return {"tmp": tmp_path, "sentinel": sentinel, "dest": tmp_path / "ctx" / "c"}


def plain_context() -> bytes:
    t = (
        TarBuilder()
        .file("Dockerfile", b"FROM scratch\n")
        .dir("src")
        .file("src/app.py", b"print(1)\n")
    )
    return (
        t.file(".wh.not-a-whiteout", b"literal").file("src/.wh..wh..opq", b"also literal").bytes()
    )


@pytest.mark.parametrize(
    "compress",
    [lambda b: b, gzip.compress, bz2.compress, lzma.compress],
    ids=["plain", "gzip", "bzip2", "xz"],
)
def test_receive_any_compression(env: dict[str, Path], compress: Any) -> None:
    context.receive(io.BytesIO(compress(plain_context())), env["dest"])
    d = env["dest"]
    assert (d / "Dockerfile").read_bytes() == b"FROM scratch\n"
    assert (d / "src" / "app.py").read_bytes() == b"print(1)\n"
    # a context is not a layer: whiteout-looking names are ordinary files
    assert (d / ".wh.not-a-whiteout").read_bytes() == b"literal"
    assert (d / "src" / ".wh..wh..opq").read_bytes() == b"also literal"
    assert "trusted.overlay.opaque" not in os.listxattr(d / "src")


def reject(env: dict[str, Path], body: bytes, err: type[Exception], match: str, **kw: Any) -> None:
    before = snapshot(env["sentinel"])
    passwd = Path("/etc/passwd").read_bytes()
    with pytest.raises(err, match=match):
        context.receive(io.BytesIO(body), env["dest"], **kw)
    assert snapshot(env["sentinel"]) == before and Path("/etc/passwd").read_bytes() == passwd
    assert not env["dest"].exists()
    leftovers = list(env["dest"].parent.iterdir()) if env["dest"].parent.exists() else []
    assert leftovers == [], "temp dirs left behind"


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda s: TarBuilder().file("../../escape", b"x"), "escapes the context"),
        (lambda s: TarBuilder().symlink("out", str(s)).file("out/pwned", b"x"), "symlink 'out'"),
        (lambda s: TarBuilder().hardlink("pw", "/etc/passwd"), "not in the context"),
        (lambda s: TarBuilder().hardlink("k", "../sentinel/keep.txt"), "escapes the context"),
    ],
    ids=["dotdot", "symlink-escape", "hardlink-host", "hardlink-dotdot"],
)
def test_hostile_contexts_are_refused(env: dict[str, Path], build: Any, match: str) -> None:
    body = build(env["sentinel"]).file("after", b"1").bytes()
    reject(
        env, body, InvalidParameter, r"^the build context is not a valid tar archive: .*" + match
    )


def test_absolute_names_land_inside_and_devices_are_dropped(env: dict[str, Path]) -> None:
    name = f"/tmp/dockyard-ctx-{uuid.uuid4().hex}"
    t = (
        TarBuilder()
        .file(name, b"x")
        .node("dev-null", tarfile.CHRTYPE, 1, 3)
        .node("fifo", tarfile.FIFOTYPE)
    )
    context.receive(io.BytesIO(t.bytes()), env["dest"])
    assert not Path(name).exists()
    assert (env["dest"] / name.lstrip("/")).read_bytes() == b"x"
    assert sorted(os.listdir(env["dest"])) == ["tmp"]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"this is not a tar at all" * 40, "not a valid tar archive"),
        (gzip.compress(plain_context())[:60], "not a valid tar archive"),
        (TarBuilder().file("big", os.urandom(20_000)).bytes()[:10_000], "end of data"),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 64, "zstd"),
        (b"", "empty file"),
    ],
    ids=["garbage", "cut-gzip", "truncated", "zstd", "empty"],
)
def test_malformed_context_is_a_clear_error(env: dict[str, Path], body: bytes, match: str) -> None:
    reject(env, body, InvalidParameter, match)


def test_size_limit_counts_uncompressed_bytes(env: dict[str, Path]) -> None:
    bomb = gzip.compress(TarBuilder().file("zeros", b"\0" * 4_000_000).bytes())
    assert len(bomb) < 100_000
    reject(env, bomb, ContextTooLarge, "larger than 1000000 bytes", limit_bytes=1_000_000)
    context.receive(io.BytesIO(bomb), env["dest"], limit_bytes=5_000_000)
    assert (env["dest"] / "zeros").stat().st_size == 4_000_000


def test_existing_destination_is_refused(env: dict[str, Path]) -> None:
    env["dest"].mkdir(parents=True)
    (env["dest"] / "old").write_text("keep")
    with pytest.raises(Exception, match="already exists"):
        context.receive(io.BytesIO(plain_context()), env["dest"])
    assert os.listdir(env["dest"]) == ["old"]


# -- the cache checksum --------------------------------------------------------------------


def test_checksum_ignores_mtime_but_not_content_or_metadata(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "a.txt").write_text("a")
    (root / "src" / "sub" / "b.txt").write_text("b")
    (root / "top").write_text("t")
    (root / "link").symlink_to("src/a.txt")
    first = context.checksum(root, ["src", "top", "link"])
    assert first.startswith("sha256:") and len(first) == 71

    os.utime(root / "src" / "sub" / "b.txt", (1, 1))
    os.utime(root / "src", (2, 2))
    assert context.checksum(root, ["src", "top", "link"]) == first, "mtime must not matter"
    assert context.checksum(root, ["./src/", "top", "link"]) == first
    whole = context.checksum(root, ["."])
    assert context.checksum(root, [""]) == whole == context.checksum(root, ["/"])

    changes = [
        lambda: (root / "src" / "sub" / "b.txt").write_text("B"),
        lambda: os.chmod(root / "top", 0o600),
        lambda: os.chown(root / "top", 1000, 1000),
        lambda: os.setxattr(root / "top", "user.k", b"v"),
        lambda: ((root / "link").unlink(), (root / "link").symlink_to("top")),
        lambda: (root / "src" / "new").write_text(""),
        lambda: (root / "src" / "sub" / "b.txt").rename(root / "src" / "sub" / "c.txt"),
    ]
    seen = {first}
    for change in changes:
        change()
        now = context.checksum(root, ["src", "top", "link"])
        assert now not in seen
        seen.add(now)
    assert context.checksum(root, ["top", "src", "link"]) not in seen, "order is part of it"
    assert context.checksum(root, ["."]) != whole


def test_checksum_refuses_bad_paths(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "real").mkdir()
    (root / "real" / "f").write_text("x")
    (root / "ln").symlink_to("real")
    (root / "out").symlink_to("/etc")
    with pytest.raises(InvalidParameter, match="file not found in build context"):
        context.checksum(root, ["missing"])
    with pytest.raises(InvalidParameter, match="outside the build context"):
        context.checksum(root, ["../etc/passwd"])
    with pytest.raises(InvalidParameter, match="symlinked directories are not followed"):
        context.checksum(root, ["out/passwd"])
    with pytest.raises(InvalidParameter, match="symlinked directories are not followed"):
        context.checksum(root, ["ln/f"])
    assert context.checksum(root, ["out"]) != context.checksum(root, ["ln"])


# -- layers from a real overlay -----------------------------------------------------------


def mount_overlay(lowers: list[Path], target: Path, upper: Path | None = None) -> None:
    opts = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None:
        work = upper.parent / (upper.name + ".work")
        work.mkdir()
        opts += f",upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], check=True)


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for target in reversed(made):
        subprocess.run(["umount", str(target)], check=False)


def make_lower(lower: Path) -> None:
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "keep").write_text("keep")
    (lower / "etc" / "gone").write_text("gone")
    (lower / "etc" / "chmodded").write_text("mode")
    (lower / "cache" / "deep").mkdir(parents=True)
    (lower / "cache" / "old").write_text("old")
    (lower / "cache" / "deep" / "older").write_text("older")
    (lower / "olddir" / "x").mkdir(parents=True)
    (lower / "bin").mkdir()
    (lower / "bin" / "tool").write_bytes(b"\x7fELF tool")


def change(merged: Path) -> None:
    (merged / "etc" / "gone").unlink()
    os.chmod(merged / "etc" / "chmodded", 0o600)
    (merged / "etc" / "new").write_text("new")
    subprocess.run(["rm", "-rf", str(merged / "cache")], check=True)
    (merged / "cache").mkdir()
    (merged / "cache" / "fresh").write_text("fresh")
    subprocess.run(["rm", "-rf", str(merged / "olddir")], check=True)
    (merged / "app").mkdir(mode=0o750)
    os.chown(merged / "app", 1000, 1001)
    (merged / "app" / "data").write_bytes(b"d" * 5000)
    os.link(merged / "app" / "data", merged / "app" / "data-link")
    (merged / "app" / "sym").symlink_to("../etc/keep")
    os.mkfifo(merged / "app" / "fifo")
    os.mknod(merged / "app" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (merged / "app" / "suid").write_text("s")
    os.chmod(merged / "app" / "suid", 0o4755)
    (merged / "bin" / "tool").write_bytes(b"\x7fELF tool v2")
    os.setxattr(merged / "bin" / "tool", "security.capability", CAP_NET_BIND)
    os.setxattr(merged / "app" / "data", "user.tag", b"v\x00\xff")
    os.utime(merged / "app" / "data", (1_600_000_000, 1_600_000_000))


def test_layer_from_upper_round_trips_through_our_unpacker(
    tmp_path: Path, mounts: list[Path]
) -> None:
    lower, upper, merged = tmp_path / "lower", tmp_path / "upper", tmp_path / "merged"
    upper.mkdir()
    merged.mkdir()
    make_lower(lower)
    mount_overlay([lower], merged, upper)
    mounts.append(merged)
    change(merged)
    expected = snapshot(merged)
    subprocess.run(["umount", str(merged)], check=True)
    mounts.remove(merged)

    buf = io.BytesIO()
    layerdiff.write_layer(upper, buf)
    layer = buf.getvalue()
    again = io.BytesIO()
    layerdiff.write_layer(upper, again)
    assert again.getvalue() == layer, "the same upper dir must give the same bytes"

    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    for i, n in enumerate(names):  # a directory comes before what it holds
        assert "/" not in n or n.rsplit("/", 1)[0] in names[:i]
    assert "etc/.wh.gone" in names and "olddir" not in names and ".wh.olddir" in names
    assert "cache/.wh..wh..opq" in names and "cache/old" not in names
    by_name = {m.name: m for m in members}
    assert by_name["app/data-link"].islnk() and by_name["app/data-link"].linkname == "app/data"
    assert by_name["app/null"].ischr() and by_name["app/fifo"].isfifo()
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert not any(
        k.startswith("SCHILY.xattr.trusted.overlay") for m in members for k in m.pax_headers
    )
    assert by_name["app/data"].mtime == 1_600_000_000

    applied = tmp_path / "applied"
    extract_layer(io.BytesIO(layer), tmp_path / "layer", allow_devices=True)
    applied.mkdir()
    mount_overlay([tmp_path / "layer", lower], applied)
    mounts.append(applied)
    got = snapshot(applied)
    assert got == expected
    assert os.getxattr(applied / "bin" / "tool", "security.capability") == CAP_NET_BIND
    data, link = (os.lstat(applied / "app" / n) for n in ("data", "data-link"))
    assert (data.st_ino, data.st_nlink) == (link.st_ino, 2)


def test_layer_mtimes_clamp_to_epoch_and_excluded_paths_stay_out(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_text("runtime's")
    (upper / "etc" / "app.conf").write_text("x")
    os.utime(upper / "etc" / "app.conf", (100, 100))
    buf = io.BytesIO()
    layerdiff.write_layer(upper, buf, epoch=1_000, exclude=["/etc/hosts"])
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        got = {m.name: m.mtime for m in tar.getmembers()}
    assert got == {"etc": 1_000, "etc/app.conf": 100}


def test_upper_with_redirects_is_refused(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "moved").mkdir(parents=True)
    os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/orig")
    with pytest.raises(Exception, match="redirect_dir=off"):
        layerdiff.write_layer(upper, io.BytesIO())


# -- COPY/ADD layers straight from the context ----------------------------------------------


def test_write_tree_names_owners_and_modes(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "main.py").write_text("main")
    (root / "src" / "pkg" / "mod.py").write_text("mod")
    os.link(root / "src" / "main.py", root / "src" / "main-again.py")
    (root / "src" / "ln").symlink_to("/etc/passwd")
    os.chown(root / "src" / "main.py", 1234, 1234)
    (root / "README").write_text("r")

    buf = io.BytesIO()
    layerdiff.write_tree(root, ["src", "README", "src/pkg"], buf, chown=(0, 0), dest_prefix="/app/")
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile(members["app/src/pkg/mod.py"]).read() == b"mod"  # type: ignore[union-attr]
    assert sorted(members) == [
        "app/README",
        "app/src",
        "app/src/ln",
        "app/src/main-again.py",
        "app/src/main.py",
        "app/src/pkg",
        "app/src/pkg/mod.py",
    ]
    assert all((m.uid, m.gid, m.uname) == (0, 0, "") for m in members.values())
    assert (
        members["app/src/main.py"].islnk()
        and members["app/src/main.py"].linkname == "app/src/main-again.py"
    )
    assert members["app/src/ln"].issym() and members["app/src/ln"].linkname == "/etc/passwd"

    kept = io.BytesIO()
    layerdiff.write_tree(root, ["src/main.py"], kept, chmod=0o640, recursive=False)
    with tarfile.open(fileobj=io.BytesIO(kept.getvalue())) as tar:
        (only,) = tar.getmembers()
    assert (only.name, only.uid, only.mode) == ("src/main.py", 1234, 0o640)

    with pytest.raises(InvalidParameter, match="outside the build context"):
        layerdiff.write_tree(root, ["../x"], io.BytesIO())
    with pytest.raises(InvalidParameter, match="file not found"):
        layerdiff.write_tree(root, ["nope"], io.BytesIO())
