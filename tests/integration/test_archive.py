"""docker save / docker load: round trips, hostile and broken archives, podman interop."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import InvalidParameter
from engine.images.archive import load, save
from engine.images.reference import parse
from engine.images.store import ImageStore
from tests.unit.test_images_tarbuild import TarBuilder, busybox_layer, image_config, put_image

pytestmark = pytest.mark.integration
BASE = busybox_layer()


def app_layer(text: str) -> bytes:
    return TarBuilder().dir("app").file("app/run.sh", text.encode(), mode=0o755).bytes()


@pytest.fixture
def src(tmp_path: Path) -> ImageStore:
    store = ImageStore(tmp_path / "src")
    config, digests = put_image(store.blobs, [BASE, app_layer("a")])
    store.register(config, digests, ref=parse("busybox"))
    store.tag("busybox", "localhost:5000/team/app", "v1")
    config, digests = put_image(store.blobs, [BASE, app_layer("b")], cmd=["b"])
    store.register(config, digests)  # untagged
    return store


def fresh(tmp_path: Path, name: str = "dst") -> ImageStore:
    return ImageStore(tmp_path / name)


def saved(store: ImageStore, names: list[str]) -> bytes:
    out = io.BytesIO()
    save(store, names, out)
    return out.getvalue()


def state(store: ImageStore) -> tuple[object, ...]:
    """Everything a failed load must leave as it was."""
    files = sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*"))
    return files, [(i.id, i.repo_tags) for i in store.list()]


def test_round_trip_keeps_ids_tags_and_content(src: ImageStore, tmp_path: Path) -> None:
    untagged = next(i for i in src.list() if not i.repo_tags)
    data = saved(src, ["busybox", "localhost:5000/team/app:v1", untagged.id[7:19]])
    dst = fresh(tmp_path)
    seen: list[dict[str, object]] = []
    lines = load(dst, io.BytesIO(data), seen.append)
    assert seen[0] == {"status": "Loading layer", "progressDetail": {}, "id": seen[0]["id"]}
    assert len(seen) == 3  # one per distinct layer unpacked
    assert lines == [
        "Loaded image: busybox:latest",
        "Loaded image: localhost:5000/team/app:v1",
        f"Loaded image ID: {untagged.id}",
    ]
    for name in ("busybox", "localhost:5000/team/app:v1", untagged.id):
        a, b = src.get(name), dst.get(name)
        assert (a.id, a.diff_ids, a.size) == (b.id, b.diff_ids, b.size)
    top = dst.layer_dirs(dst.get("busybox"))
    assert Path(top[0], "app/run.sh").read_bytes() == b"a"
    assert Path(top[1], "bin/busybox").read_bytes() == Path("/bin/busybox").read_bytes()
    assert len(list((dst.root / "layers").iterdir())) == 3  # shared base unpacked once


def test_saved_archive_layout(src: ImageStore) -> None:
    image = src.get("busybox")
    with tarfile.open(fileobj=io.BytesIO(saved(src, ["busybox"]))) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        layout = json.load(tar.extractfile("oci-layout"))  # type: ignore[arg-type]
        repos = json.load(tar.extractfile("repositories"))  # type: ignore[arg-type]
    assert manifest == [
        {
            "Config": "blobs/sha256/" + image.id[7:],
            "RepoTags": ["busybox:latest"],
            "Layers": ["blobs/sha256/" + d[7:] for d in image.diff_ids],
        }
    ]
    assert layout == {"imageLayoutVersion": "1.0.0"}
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == (
        "docker.io/library/busybox:latest"
    )
    assert repos == {"busybox": {"latest": image.diff_ids[-1][7:]}}
    assert len(names) == len(set(names))


def test_load_gzipped_archive_and_reload_is_idempotent(src: ImageStore, tmp_path: Path) -> None:
    data = gzip.compress(saved(src, ["busybox"]), compresslevel=1)
    dst = fresh(tmp_path)
    assert load(dst, io.BytesIO(data)) == ["Loaded image: busybox:latest"]
    assert load(dst, io.BytesIO(data)) == ["Loaded image: busybox:latest"]
    assert len(dst.list()) == 1


def assert_load_refused(tmp_path: Path, data: bytes, match: str) -> None:
    """Loading `data` into a fresh store fails with `match` and leaves the store as it was."""
    dst = fresh(tmp_path)
    before = state(dst)
    with pytest.raises(InvalidParameter, match=match):
        load(dst, io.BytesIO(data))
    assert state(dst) == before


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_archive_fails_cleanly(src: ImageStore, tmp_path: Path, cut: float) -> None:
    data = saved(src, ["busybox"])
    assert_load_refused(tmp_path, data[: int(len(data) * cut)], "invalid image archive")


def test_garbage_and_empty_archives(tmp_path: Path) -> None:
    dst = fresh(tmp_path)
    before = state(dst)
    for data in (b"", b"garbage" * 100, TarBuilder().file("hello", b"x").bytes()):
        with pytest.raises(InvalidParameter, match="invalid image archive"):
            load(dst, io.BytesIO(data))
    assert state(dst) == before


def archive_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    t = TarBuilder()
    for name, data in files.items():
        t.file(name, data)
    for name, target in (links or {}).items():
        t.symlink(name, target)
    return t.bytes()


def test_hostile_member_paths_are_never_trusted(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = BASE
    diff = "sha256:" + __import__("hashlib").sha256(layer).hexdigest()
    config = image_config([diff])
    manifest = [{"Config": "c.json", "RepoTags": ["evil:1"], "Layers": ["../../outside/l.tar"]}]
    data = archive_of(
        {
            "../../outside/l.tar": layer,
            f"/{outside}/abs": b"x",
            "c.json": config,
            "manifest.json": json.dumps(manifest).encode(),
        }
    )
    assert_load_refused(tmp_path, data, "does not contain")
    assert os.listdir(outside) == []


def test_symlinked_legacy_layers_resolve_inside_archive(tmp_path: Path) -> None:
    import hashlib

    diff = "sha256:" + hashlib.sha256(BASE).hexdigest()
    config = image_config([diff, diff])
    manifest = [
        {"Config": "c.json", "RepoTags": ["old:1"], "Layers": ["a/layer.tar", "b/layer.tar"]}
    ]
    data = archive_of(
        {"a/layer.tar": BASE, "c.json": config, "manifest.json": json.dumps(manifest).encode()},
        {"b/layer.tar": "../a/layer.tar", "loop/x": "../loop/x", "esc/y": "../../../etc/passwd"},
    )
    dst = fresh(tmp_path)
    assert load(dst, io.BytesIO(data)) == ["Loaded image: old:1"]
    assert dst.get("old:1").diff_ids == [diff, diff]


def test_hostile_layer_rolls_back_every_image_of_the_load(src: ImageStore, tmp_path: Path) -> None:
    import hashlib

    evil = TarBuilder().symlink("e", "/etc").file("e/pwned", b"x").bytes()
    good_diff = "sha256:" + hashlib.sha256(BASE).hexdigest()
    evil_diff = "sha256:" + hashlib.sha256(evil).hexdigest()
    manifest = [
        {"Config": "good.json", "RepoTags": ["good:1"], "Layers": ["good.tar"]},
        {"Config": "evil.json", "RepoTags": ["evil:1"], "Layers": ["evil.tar"]},
    ]
    data = archive_of(
        {
            "good.tar": BASE,
            "evil.tar": evil,
            "good.json": image_config([good_diff]),
            "evil.json": image_config([evil_diff]),
            "manifest.json": json.dumps(manifest).encode(),
        }
    )
    assert_load_refused(tmp_path, data, "symlink")
    assert not Path("/etc/pwned").exists()


def test_diff_id_mismatch_is_rejected(tmp_path: Path) -> None:
    manifest = [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l.tar"]}]
    wrong = "sha256:" + "0" * 64
    data = archive_of(
        {
            "l.tar": BASE,
            "c.json": image_config([wrong]),
            "manifest.json": json.dumps(manifest).encode(),
        }
    )
    assert_load_refused(tmp_path, data, "corrupt")


def test_bad_manifest_shapes(tmp_path: Path) -> None:
    dst = fresh(tmp_path)
    for manifest in (
        {"not": "a list"},
        [{"Config": 3}],
        [{"Config": "c", "RepoTags": ["Bad Tag"]}],
    ):
        data = archive_of({"manifest.json": json.dumps(manifest).encode(), "c": b"{}"})
        with pytest.raises(InvalidParameter):
            load(dst, io.BytesIO(data))
    assert dst.list() == []


# -- podman interop -----------------------------------------------------------------------


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[list[str]]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    conf = tmp_path / "containers.conf"
    conf.write_text('[engine]\nruntime = "runc"\n')
    root = Path(tempfile.mkdtemp(prefix="dy-pm-", dir="/tmp"))  # podman: runroot < 50 chars
    argv = [
        "podman",
        "--root",
        str(root / "root"),
        "--runroot",
        str(root / "run"),
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
    ]
    os.environ["CONTAINERS_CONF"] = str(conf)
    try:
        yield argv
    finally:
        subprocess.run([*argv, "system", "reset", "--force"], capture_output=True, timeout=60)
        os.environ.pop("CONTAINERS_CONF", None)
        shutil.rmtree(root, ignore_errors=True)


def run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_podman_loads_our_archive(src: ImageStore, tmp_path: Path, podman: list[str]) -> None:
    path = tmp_path / "save.tar"
    path.write_bytes(saved(src, ["busybox"]))
    run([*podman, "load", "-i", str(path)])
    ids = run([*podman, "images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"])
    assert f"{src.get('busybox').id} docker.io/library/busybox:latest" in ids


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_we_load_podman_saves(src: ImageStore, tmp_path: Path, podman: list[str], fmt: str) -> None:
    path = tmp_path / "ours.tar"
    path.write_bytes(saved(src, ["busybox"]))
    run([*podman, "load", "-i", str(path)])
    theirs = tmp_path / f"{fmt}.tar"
    run([*podman, "save", "--format", fmt, "-o", str(theirs), "docker.io/library/busybox:latest"])
    dst = fresh(tmp_path)
    with open(theirs, "rb") as f:
        lines = load(dst, f)
    image = next(iter(dst.list()))
    assert image.diff_ids == src.get("busybox").diff_ids
    assert Path(dst.layer_dirs(image)[1], "bin/busybox").exists()
    if fmt == "docker-archive":
        assert lines == ["Loaded image: busybox:latest"] and image.id == src.get("busybox").id
