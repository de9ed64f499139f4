"""Volume copy-up from the union of unpacked overlay layers (root: chown, mknod, trusted.*)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.containers import copyup, create
from engine.errors import InvalidParameter
from engine.volumes import VolumeStore

OPAQUE = "trusted.overlay.opaque"


def whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def write(path: Path, text: str, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, *owner)
    os.chmod(path, mode)


def opaque(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.setxattr(path, OPAQUE, b"y")


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Three layers, top-most first (overlay lowerdir order), and an empty volume dir."""
    top, mid, low = tmp_path / "top", tmp_path / "mid", tmp_path / "low"
    for layer in (top, mid, low):
        layer.mkdir()
    return top, mid, low


def tree(root: Path) -> dict[str, str]:
    """Relative path -> file text, "<dir>", or "-> target" for symlinks."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_dir():
            out[rel] = "<dir>"
        else:
            out[rel] = p.read_text()
    return out


def test_union_of_layers_with_whiteouts_and_opaque_dirs(
    layers: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    top, mid, low = layers
    write(low / "data/only-low.txt", "low\n")
    write(low / "data/shadowed.txt", "old\n")
    write(low / "data/gone.txt", "deleted above\n")
    write(low / "data/sub/low-file", "hidden by the opaque dir above\n")
    write(low / "data/was-dir/inner", "replaced by a file above\n")
    write(low / "data/merged/from-low", "low part\n")
    write(mid / "data/shadowed.txt", "new\n")
    whiteout(mid / "data/gone.txt")
    opaque(mid / "data/sub")
    write(mid / "data/sub/mid-file", "mid's own\n")
    write(mid / "data/was-dir", "now a file\n")
    write(top / "data/merged/from-top", "top part\n")
    dest = tmp_path / "vol"
    dest.mkdir()
    assert copyup.populate(dest, [str(top), str(mid), str(low)], "/data")
    assert tree(dest) == {
        "merged": "<dir>",
        "merged/from-low": "low part\n",
        "merged/from-top": "top part\n",
        "only-low.txt": "low\n",
        "shadowed.txt": "new\n",
        "sub": "<dir>",
        "sub/mid-file": "mid's own\n",
        "was-dir": "now a file\n",
    }
    assert OPAQUE not in os.listxattr(dest / "sub")


def test_opaque_target_or_ancestor_hides_lower_layers(
    layers: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    top, mid, low = layers
    write(low / "opt/data/old", "old\n")
    opaque(mid / "opt")
    write(mid / "opt/data/new", "new\n")
    dest = tmp_path / "vol"
    dest.mkdir()
    assert copyup.populate(dest, [str(top), str(mid), str(low)], "/opt/data")
    assert tree(dest) == {"new": "new\n"}
    opaque(top / "srv")  # an opaque ancestor with nothing under it hides everything below
    write(low / "srv/data/x", "x\n")
    dest2 = tmp_path / "vol2"
    dest2.mkdir()
    assert not copyup.populate(dest2, [str(top), str(mid), str(low)], "/srv/data")
    assert tree(dest2) == {}


@pytest.mark.parametrize("kind", ["whiteout", "file", "absent", "symlink"])
def test_nothing_is_copied_when_the_image_has_no_directory_there(
    layers: tuple[Path, Path, Path], tmp_path: Path, kind: str
) -> None:
    top, _, low = layers
    write(low / "data/seed", "seed\n")
    if kind == "whiteout":
        whiteout(top / "data")
    elif kind == "file":
        write(top / "data", "a file now\n")
    elif kind == "symlink":
        os.symlink("/etc", top / "data")
    dest = tmp_path / "vol"
    dest.mkdir()
    target = "/elsewhere" if kind == "absent" else "/data"
    assert not copyup.populate(dest, [str(top), str(low)], target)
    assert list(dest.iterdir()) == []


def test_metadata_links_and_xattrs_are_kept(
    layers: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    top, _, low = layers
    (low / "data").mkdir()
    os.chown(low / "data", 1000, 1000)
    os.chmod(low / "data", 0o750)
    write(low / "data/suid", "#!/bin/sh\n", 0o4755, (0, 0))
    write(low / "data/owned", "mine\n", 0o600, (1000, 1001))
    os.setxattr(low / "data/owned", "user.dockyard", b"yes")
    write(low / "data/hard-a", "same inode\n")
    os.link(low / "data/hard-a", low / "data/hard-b")
    os.symlink("/etc/passwd", low / "data/abs-link")
    os.symlink("/etc", low / "data/dir-link")
    os.mkfifo(low / "data/fifo")
    os.utime(low / "data/owned", (1_000_000, 1_000_000))
    dest = tmp_path / "vol"
    dest.mkdir()
    assert copyup.populate(dest, [str(top), str(low)], "/data")
    root = dest.stat()
    assert (root.st_uid, root.st_gid, stat.S_IMODE(root.st_mode)) == (1000, 1000, 0o750)
    assert stat.S_IMODE((dest / "suid").stat().st_mode) == 0o4755
    owned = (dest / "owned").stat()
    assert (owned.st_uid, owned.st_gid, stat.S_IMODE(owned.st_mode)) == (1000, 1001, 0o600)
    assert owned.st_mtime == 1_000_000
    assert os.getxattr(dest / "owned", "user.dockyard") == b"yes"
    assert (dest / "hard-a").stat().st_ino == (dest / "hard-b").stat().st_ino
    assert (dest / "hard-a").stat().st_nlink == 2
    assert os.readlink(dest / "abs-link") == "/etc/passwd"  # copied, never followed
    assert os.readlink(dest / "dir-link") == "/etc"
    assert stat.S_ISFIFO((dest / "fifo").lstat().st_mode)


def test_clear_empties_a_volume(tmp_path: Path) -> None:
    write(tmp_path / "v/a/b/c", "x")
    write(tmp_path / "v/top", "y")
    os.symlink("/etc", tmp_path / "v/link")
    copyup.clear(tmp_path / "v")
    assert copyup.is_empty(tmp_path / "v")
    assert Path("/etc/passwd").exists()


def test_failed_create_leaves_no_directory_or_anonymous_volume(tmp_path: Path) -> None:
    volumes = VolumeStore(tmp_path / "volumes")
    layer = tmp_path / "layer"
    write(layer / "data/seed", "seed\n")
    paths = create.CreatePaths(tmp_path / "containers", [str(layer)], tmp_path / "empty")
    missing = {"Type": "bind", "Source": "/no/such/dir", "Target": "/b"}
    # Binds come first: the anonymous volume for /data exists when the bind fails.
    body = {
        "Image": "img",
        "Cmd": ["true"],
        "HostConfig": {"Binds": ["/data"], "Mounts": [missing]},
    }
    with pytest.raises(InvalidParameter, match="does not exist"):
        create.build(body, "c", "sha256:x", {}, paths, volumes, "parent")
    assert list((tmp_path / "containers").iterdir()) == []
    assert volumes.names() == []
    ok = create.build(
        {**body, "HostConfig": {"Binds": ["/data"]}}, "c", "sha256:x", {}, paths, volumes, "parent"
    )
    (name,) = volumes.names()
    assert ok.mounts[0]["Name"] == name
    assert (volumes.data_dir(name) / "seed").read_text() == "seed\n"
