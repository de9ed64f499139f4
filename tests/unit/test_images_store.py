"""ImageStore: register, lookup, tags, Docker's rmi/prune semantics, restart safety."""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from pathlib import Path

import pytest

from engine.errors import Conflict, InvalidParameter, NotFound
from engine.images.reference import parse
from engine.images.store import ImageStore
from tests.unit.test_images_tarbuild import TarBuilder, busybox_layer, image_config, put_image

BASE = busybox_layer()


def app_layer(text: str) -> bytes:
    return TarBuilder().dir("app").file("app/run.sh", text.encode(), mode=0o755).bytes()


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def add(store: ImageStore, layers: list[bytes], ref: str | None = None, **kw: object) -> str:
    config, digests = put_image(store.blobs, layers, **kw)  # type: ignore[arg-type]
    return store.register(config, digests, ref=parse(ref) if ref else None).id


def layer_names(store: ImageStore) -> list[str]:
    return sorted(p.name for p in (store.root / "layers").iterdir())


def test_register_unpacks_and_tags(store: ImageStore) -> None:
    seen: list[tuple[str, str]] = []
    config, digests = put_image(store.blobs, [BASE, app_layer("a")])
    image = store.register(
        config, digests, ref=parse("busybox"), progress=lambda i, s: seen.append((i, s))
    )
    assert image.id == config and image.repo_tags == ["busybox:latest"]
    assert image.diff_ids == [
        "sha256:" + hashlib.sha256(x).hexdigest() for x in (BASE, app_layer("a"))
    ]
    assert (
        image.size == os.path.getsize("/bin/busybox") + len(b"root:x:0:0:root:/root:/bin/sh\n") + 1
    )
    top, bottom = store.layer_dirs(image)
    assert Path(top, "app/run.sh").read_bytes() == b"a"
    assert os.access(Path(bottom, "bin/sh"), os.X_OK)
    assert [s for _, s in seen] == ["Extracting", "Pull complete"] * 2
    assert seen[0][0] == digests[0].removeprefix("sha256:")[:12]


@pytest.mark.parametrize(
    "name",
    ["busybox", "busybox:latest", "docker.io/library/busybox:latest", "index.docker.io/busybox"],
)
def test_get_by_reference(store: ImageStore, name: str) -> None:
    image_id = add(store, [BASE], "busybox")
    assert store.get(name).id == image_id


def test_get_by_id_and_prefix(store: ImageStore) -> None:
    image_id = add(store, [BASE], "busybox")
    hexid = image_id.removeprefix("sha256:")
    for name in (image_id, hexid, hexid[:12], "sha256:" + hexid[:5], hexid[:1]):
        assert store.get(name).id == image_id


def test_registry_refs_and_digests(store: ImageStore) -> None:
    config, digests = put_image(store.blobs, [BASE])
    digest = "sha256:" + "ab" * 32
    store.register(
        config, digests, ref=parse("localhost:5000/x:y"), repo_digest=f"localhost:5000/x@{digest}"
    )
    image = store.get("localhost:5000/x:y")
    assert image.repo_tags == ["localhost:5000/x:y"]
    assert image.repo_digests == [f"localhost:5000/x@{digest}"]
    assert store.get(f"localhost:5000/x@{digest}").id == config


def test_missing_image_messages(store: ImageStore) -> None:
    with pytest.raises(NotFound, match=r"^No such image: busybox:latest$"):
        store.get("busybox")
    with pytest.raises(NotFound, match="No such image: abc123"):
        store.get("abc123")
    with pytest.raises(InvalidParameter, match="invalid reference"):
        store.get("Bad_Name")


def test_ambiguous_prefix(store: ImageStore) -> None:
    firsts: dict[str, str] = {}
    for i in range(17):  # 17 ids over 16 hex digits: two must share a first character
        image_id = add(store, [BASE], cmd=[f"c{i}"])
        first = image_id[7]
        if first in firsts:
            break
        firsts[first] = image_id
    with pytest.raises(InvalidParameter, match="ambiguous"):
        store.get(first)


def test_diff_id_mismatch_records_nothing(store: ImageStore) -> None:
    good = store.blobs.put(gzip.compress(BASE))
    other = store.blobs.put(gzip.compress(app_layer("x")))
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    right = "sha256:" + hashlib.sha256(BASE).hexdigest()
    config = store.blobs.put(image_config([right, wrong]))
    with pytest.raises(InvalidParameter, match="corrupt"):
        store.register(config, [good, other], ref=parse("bad"))
    assert store.list() == [] and layer_names(store) == []
    with pytest.raises(NotFound):
        store.get("bad")
    with pytest.raises(InvalidParameter, match="2 layers but 1"):
        store.register(config, [good])


def test_bad_config_is_invalid(store: ImageStore) -> None:
    for raw in (b"not json", b"{}", b'{"rootfs": {"diff_ids": ["nope"]}}'):
        with pytest.raises(InvalidParameter):
            store.register(store.blobs.put(raw), [])
    assert store.list() == []


def test_shared_layer_unpacked_once(store: ImageStore) -> None:
    a = store.get(add(store, [BASE, app_layer("a")], "a"))
    b = store.get(add(store, [BASE, app_layer("b")], "b"))
    assert store.layer_dirs(a)[1] == store.layer_dirs(b)[1]
    assert len(layer_names(store)) == 3


def test_concurrent_registers_share_the_base(store: ImageStore) -> None:
    errors: list[BaseException] = []
    prepared = [put_image(store.blobs, [BASE, app_layer(str(i))]) for i in range(6)]

    def run(i: int) -> None:
        try:
            store.register(*prepared[i], ref=parse(f"img{i}"))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list()) == 6 and len(layer_names(store)) == 7


def test_restart_rereads_everything(store: ImageStore) -> None:
    image_id = add(store, [BASE], "busybox")
    store.tag("busybox", "localhost:5000/copy", "v1")
    again = ImageStore(store.root)
    image = again.get("localhost:5000/copy:v1")
    assert image.id == image_id
    assert sorted(image.repo_tags) == ["busybox:latest", "localhost:5000/copy:v1"]
    assert again.layer_dirs(image) == store.layer_dirs(store.get(image_id))


def test_restart_sweeps_unfinished_layers(store: ImageStore) -> None:
    add(store, [BASE], "busybox")
    half = store.root / "layers" / ("f" * 64)
    (half / "diff").mkdir(parents=True)
    trash = store.root / "layers" / ".trash-x"
    trash.mkdir()
    ImageStore(store.root)
    assert not half.exists() and not trash.exists()
    assert len(layer_names(store)) == 1


def test_tag_and_untag(store: ImageStore) -> None:
    image_id = add(store, [BASE], "busybox")
    store.tag(image_id[7:19], "mine", "")
    assert sorted(store.get("mine").repo_tags) == ["busybox:latest", "mine:latest"]
    assert store.remove("mine") == [{"Untagged": "mine:latest"}]
    assert store.get("busybox").id == image_id
    with pytest.raises(InvalidParameter):
        store.tag("busybox", "x@sha256:" + "a" * 64, "")


def test_removing_last_tag_deletes_image_layers_and_blobs(store: ImageStore) -> None:
    keep = store.get(add(store, [BASE, app_layer("keep")], "keep"))
    config, digests = put_image(store.blobs, [BASE, app_layer("gone")])
    gone = store.register(config, digests, ref=parse("gone"), repo_digest="gone@sha256:" + "c" * 64)
    out = store.remove("gone")
    assert out == [
        {"Untagged": "gone:latest"},
        {"Untagged": "gone@sha256:" + "c" * 64},
        {"Deleted": gone.id},
        {"Deleted": gone.diff_ids[1]},
    ]
    assert not store.blobs.has(config) and not store.blobs.has(digests[1])
    assert store.blobs.has(digests[0])  # base still used by `keep`
    assert all(Path(d).is_dir() for d in store.layer_dirs(keep))
    assert len(layer_names(store)) == 2
    assert [i.id for i in ImageStore(store.root).list()] == [keep.id]


def test_remove_by_id_with_several_repositories_needs_force(store: ImageStore) -> None:
    image_id = add(store, [BASE], "a")
    store.tag("a", "b", "1")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove(image_id)
    out = store.remove(image_id, force=True)
    assert {"Untagged": "a:latest"} in out and {"Untagged": "b:1"} in out
    assert {"Deleted": image_id} in out
    assert store.list() == [] and layer_names(store) == []


def test_remove_by_id_single_repository_untags_and_deletes(store: ImageStore) -> None:
    image_id = add(store, [BASE], "a")
    store.tag("a", "a", "2")
    out = store.remove(image_id[7:15])
    assert out[:2] == [{"Untagged": "a:2"}, {"Untagged": "a:latest"}] or out[:2] == [
        {"Untagged": "a:latest"},
        {"Untagged": "a:2"},
    ]
    assert out[2] == {"Deleted": image_id}


def test_image_in_use(store: ImageStore) -> None:
    image_id = add(store, [BASE], "busybox")
    used = lambda i: "c0ffee123456" if i == image_id else False  # noqa: E731
    with pytest.raises(
        Conflict, match=r'unable to remove repository reference "busybox".*c0ffee123456'
    ):
        store.remove("busybox", in_use=used)
    with pytest.raises(Conflict, match="being used by container c0ffee123456"):
        store.remove(image_id, in_use=used)
    assert store.get("busybox").id == image_id
    assert store.remove("busybox", force=True, in_use=used) == [{"Untagged": "busybox:latest"}]
    image = store.get(image_id)  # kept, dangling, because a container needs its layers
    assert image.repo_tags == [] and all(Path(d).is_dir() for d in store.layer_dirs(image))


def test_prune(store: ImageStore) -> None:
    tagged = add(store, [BASE], "tagged")
    dangling = add(store, [BASE, app_layer("d")])
    used = add(store, [BASE, app_layer("u")], "used")
    out = store.prune()
    assert out["ImagesDeleted"][0] == {"Deleted": dangling} and out["SpaceReclaimed"] == 1
    out = store.prune(dangling_only=False, in_use=lambda i: i == used)
    assert {"Untagged": "tagged:latest"} in out["ImagesDeleted"]
    assert [i.id for i in store.list()] == [used]
    assert tagged not in [i.id for i in store.list()]


def test_views(store: ImageStore) -> None:
    image = store.get(add(store, [BASE, app_layer("a")], "busybox"))
    row = store.summary(image)
    assert row["Id"] == image.id and row["RepoTags"] == ["busybox:latest"]
    assert row["Created"] == 1714564800 and row["Size"] == image.size
    assert row["Labels"] == {"a": "b"} and row["SharedSize"] == -1 and row["Containers"] == -1
    info = store.inspect(image)
    assert info["RootFS"] == {"Type": "layers", "Layers": image.diff_ids}
    assert info["Config"]["Cmd"] == ["sh"] and info["Config"]["Entrypoint"] is None
    assert info["GraphDriver"]["Name"] == "overlay2"
    assert info["GraphDriver"]["Data"]["LowerDir"] == store.layer_dirs(image)[1]
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    assert info["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    hist = store.history(image)
    assert [h["CreatedBy"] for h in hist] == ["layer 1", "layer 0"]
    assert hist[0]["Id"] == image.id and hist[0]["Tags"] == ["busybox:latest"]
    assert hist[1]["Id"] == "<missing>" and hist[0]["Size"] == 1


def test_in_use_is_asked_without_holding_the_store_lock(store: ImageStore) -> None:
    """The container store may call back into the image store: no lock may be held."""
    image_id = add(store, [BASE], "busybox")
    add(store, [BASE, app_layer("d")])

    def other_thread_can_read(_id: str) -> bool:
        t = threading.Thread(target=store.list)
        t.start()
        t.join(timeout=5)
        assert not t.is_alive(), "in_use was called with the store lock held"
        return False

    store.prune(in_use=other_thread_can_read)
    store.remove("busybox", in_use=other_thread_can_read)
    assert store.list() == [] and image_id
