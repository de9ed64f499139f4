"""The local image store: image records, unpacked layers and tags, all on disk.

Layout under `root` (<engine root>/images)::

    blobs/sha256/<hex>          config and layer blobs (BlobStore); the config blob's
                                digest is the image ID, as in Docker
    imagedb/<id hex>.json       one record per image: layer blobs, diff_ids, sizes
    layers/<diff_id hex>/diff   a layer unpacked once, shared by every image using it,
                                used as an overlay lowerdir
    layers/<diff_id hex>/layer.json   written last: the completion marker
    repositories.json           familiar refs (`busybox:latest`, `x@sha256:..`) -> image id
    tmp/                        scratch space (archive loads)

Everything is re-read from disk at start; every change is written atomically.
One lock guards the metadata. Unpacking happens outside it (under a per-layer
lock) so a long pull does not stall `docker images`, and layers that a
register() is still working on are never garbage-collected under it.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import atomicfile
from engine.errors import Conflict, InvalidParameter, NotFound
from engine.images import describe
from engine.images.blobstore import BlobStore, split_digest
from engine.images.reference import Reference, parse
from engine.timefmt import now_rfc3339

# engine.images.unpack (tarfile) and engine.images.layers (gzip, bz2, lzma) are imported by
# the two methods that read layer tars, not here: the store is loaded at every engine start,
# where they would cost import time (seconds in an emulated guest) that only a pull, a load
# or a build needs.

InUse = Callable[[str], "bool | str"]
Progress = Callable[[str, str], None]
Records = list[dict[str, str]]
_StrList = list[str]
_Rows = list[dict[str, Any]]
_PathList = list[Path]
_HEX_PREFIX = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")
LAYER_MARKER = "layer.json"


def _never_in_use(_id: str) -> bool:
    return False


@dataclass
class Image:
    id: str
    config: dict[str, Any]
    repo_tags: list[str]
    repo_digests: list[str]
    size: int
    created: str
    diff_ids: list[str] = field(default_factory=list)
    layer_blobs: list[str] = field(default_factory=list)
    layer_sizes: list[int] = field(default_factory=list)
    last_tag_time: str = ""


_ImageList = list[Image]


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _repo_of(key: str) -> str:
    """Repository part of a familiar ref key (`busybox:1` -> `busybox`)."""
    if "@" in key:
        return key.split("@", 1)[0]
    slash = key.rfind("/")
    colon = key.rfind(":")
    return key[:colon] if colon > slash else key


def _in_use_label(found: bool | str) -> str:
    return found if isinstance(found, str) and found else "a container"


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root)
        self._imagedb = self.root / "imagedb"
        self._layers = self.root / "layers"
        self._repos_file = self.root / "repositories.json"
        for d in (self._imagedb, self._layers, self.root / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._layer_locks: dict[str, threading.Lock] = {}
        self._inflight: Counter[str] = Counter()
        self._records: dict[str, dict[str, Any]] = {}
        self._refs: dict[str, str] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._load()

    # -- loading -------------------------------------------------------------------------

    def _load(self) -> None:
        for path in self._imagedb.glob("*.json"):
            try:
                record = atomicfile.read_json(path)
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and record.get("id") == "sha256:" + path.stem:
                self._records[record["id"]] = record
        if self._repos_file.exists():
            data = atomicfile.read_json(self._repos_file)
            for refs in data.get("Repositories", {}).values():
                for key, image_id in refs.items():
                    if image_id in self._records:
                        self._refs[key] = image_id
        self._sweep_layers()
        shutil.rmtree(self.root / "tmp", ignore_errors=True)
        (self.root / "tmp").mkdir(exist_ok=True)

    def _sweep_layers(self) -> None:
        """Drop what a crash left: unpacks without a marker, and trashed layers."""
        for d in self._layers.iterdir():
            if d.name.startswith(".") or not (d / LAYER_MARKER).exists():
                shutil.rmtree(d, ignore_errors=True)

    # -- registration -----------------------------------------------------------------

    def register(
        self,
        config_blob: str,
        layer_blobs: _StrList,
        *,
        ref: Reference | None = None,
        repo_digest: str | None = None,
        progress: Progress | None = None,
    ) -> Image:
        """Unpack the (already stored) layers once per diff_id, then record image and tag.

        Each layer's diff_id is checked against the config; on any failure the
        layers this call unpacked are removed and nothing is recorded.
        """
        image_id = "sha256:" + split_digest(config_blob)
        config = self._parse_config(self.blobs.read(config_blob), config_blob)
        diff_ids: _StrList = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(layer_blobs):
            raise InvalidParameter(
                f"image config {_short(image_id)} lists {len(diff_ids)} layers "
                f"but {len(layer_blobs)} layer blobs were given"
            )
        for blob in layer_blobs:
            if not self.blobs.has(blob):
                raise NotFound(f"layer blob {blob} is not in the store")
        keys = self._ref_keys(ref, repo_digest)
        with self._lock:
            self._inflight.update(set(diff_ids))
        created: _StrList = []
        try:
            sizes = [
                self._ensure_layer(blob, diff_id, created, progress)
                for blob, diff_id in zip(layer_blobs, diff_ids, strict=True)
            ]
            record = {
                "id": image_id,
                "diff_ids": diff_ids,
                "layer_blobs": list(layer_blobs),
                "layer_sizes": sizes,
                "last_tag_time": now_rfc3339() if keys else "",
            }
            with self._lock:
                old = self._records.get(image_id)
                if old is not None and not keys:
                    record["last_tag_time"] = old.get("last_tag_time", "")
                atomicfile.write_json(self._imagedb / f"{split_digest(image_id)}.json", record)
                self._records[image_id] = record
                self._configs[image_id] = config
                if keys:
                    for key in keys:
                        self._refs[key] = image_id
                    self._save_refs()
                return self._image(image_id)
        except BaseException:
            with self._lock:
                unused = [d for d in created if self._inflight[d] == 1 and not self._layer_used(d)]
                trash = [self._trash_layer(d) for d in unused]
            for path in trash:
                if path is not None:
                    shutil.rmtree(path, ignore_errors=True)
            raise
        finally:
            with self._lock:
                self._inflight.subtract(set(diff_ids))
                self._inflight += Counter()  # drop zero counts

    @staticmethod
    def _ref_keys(ref: Reference | None, repo_digest: str | None) -> _StrList:
        keys: _StrList = []
        if ref is not None:
            if ref.tag:
                keys.append(f"{ref.repository}:{ref.tag}")
            if ref.digest:
                keys.append(f"{ref.repository}@{ref.digest}")
        if repo_digest:
            keys.append(parse(repo_digest).familiar)
        return keys

    @staticmethod
    def _parse_config(data: bytes, digest: str) -> dict[str, Any]:
        try:
            config = json.loads(data)
        except ValueError:
            raise InvalidParameter(f"image config {digest} is not valid JSON") from None
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
            raise InvalidParameter(f"image config {digest} has no rootfs.diff_ids list")
        for d in diff_ids:
            split_digest(d)
        assert isinstance(config, dict)
        return config

    def _layer_lock(self, hexd: str) -> threading.Lock:
        with self._lock:
            return self._layer_locks.setdefault(hexd, threading.Lock())

    def _ensure_layer(
        self, blob: str, diff_id: str, created: _StrList, progress: Progress | None
    ) -> int:
        """Unpack `blob` as layer `diff_id` unless already done; returns its content size."""
        hexd = split_digest(diff_id)
        short = split_digest(blob)[:12]
        ldir = self._layers / hexd
        marker = ldir / LAYER_MARKER
        with self._layer_lock(hexd):
            if not marker.exists():
                if progress:
                    progress(short, "Extracting")
                shutil.rmtree(ldir, ignore_errors=True)
                ldir.mkdir(parents=True)
                try:
                    from engine.images.unpack import extract_layer  # deferred: see the imports

                    with self.blobs.open(blob) as f:
                        info = extract_layer(f, ldir / "diff")
                    if info.diff_id != diff_id:
                        raise InvalidParameter(
                            f"layer {blob} unpacks to {info.diff_id}, but the image config "
                            f"expects {diff_id}; the image is corrupt"
                        )
                except BaseException:
                    shutil.rmtree(ldir, ignore_errors=True)
                    raise
                meta = {"diff_id": diff_id, "size": info.size, "tar_size": info.tar_size}
                atomicfile.write_json(marker, meta)
                created.append(diff_id)
            if progress:
                progress(short, "Pull complete")
            return int(atomicfile.read_json(marker).get("size", 0))

    # -- lookup -------------------------------------------------------------------------

    def _resolve(self, name: str) -> tuple[str, str | None]:
        """(image id, ref key if `name` named a tag/digest ref). Caller holds the lock."""
        ref: Reference | None = None
        try:
            ref = parse(name)
        except InvalidParameter:
            if not _HEX_PREFIX.match(name):
                raise
        if ref is not None:
            key = ref.familiar
            if key in self._refs:
                return self._refs[key], key
            if ref.digest and ref.digest in self._records:
                return ref.digest, None
        m = _HEX_PREFIX.match(name)
        if m:
            prefix = "sha256:" + m.group(1)
            matches = [i for i in self._records if i.startswith(prefix)]
            if len(matches) == 1:
                return matches[0], None
            if len(matches) > 1:
                raise InvalidParameter(
                    f"image ID prefix {name!r} is ambiguous: it matches {len(matches)} images"
                )
        shown = ref.familiar if ref is not None and not _HEX_PREFIX.match(name) else name
        raise NotFound(f"No such image: {shown}")

    def resolve(self, name: str) -> tuple[Image, str | None]:
        """The image `name` means, and the ref key if it was named by tag or digest."""
        with self._lock:
            image_id, key = self._resolve(name)
            return self._image(image_id), key

    def get(self, name: str) -> Image:
        return self.resolve(name)[0]

    def list(self) -> _ImageList:
        with self._lock:
            images = [self._image(i) for i in self._records]
        return sorted(images, key=lambda im: describe.created_unix(im.created), reverse=True)

    def _config(self, image_id: str) -> dict[str, Any]:
        config = self._configs.get(image_id)
        if config is None:
            config = self._parse_config(self.blobs.read(image_id), image_id)
            self._configs[image_id] = config
        return config

    def _image(self, image_id: str) -> Image:
        record = self._records[image_id]
        config = self._config(image_id)
        refs = [k for k, v in self._refs.items() if v == image_id]
        sizes = [int(s) for s in record.get("layer_sizes", [])]
        return Image(
            id=image_id,
            config=config,
            repo_tags=[k for k in refs if "@" not in k],
            repo_digests=[k for k in refs if "@" in k],
            size=sum(sizes),
            created=str(config.get("created", "")),
            diff_ids=list(record["diff_ids"]),
            layer_blobs=list(record["layer_blobs"]),
            layer_sizes=sizes,
            last_tag_time=str(record.get("last_tag_time", "")),
        )

    def layer_dirs(self, image: Image) -> _StrList:
        """Unpacked layer directories, top-most first (overlay lowerdir order)."""
        return [str(self._layers / split_digest(d) / "diff") for d in reversed(image.diff_ids)]

    def layer_tar_size(self, diff_id: str) -> int:
        """Length of the uncompressed tar of a stored layer (recorded when it was unpacked)."""
        meta = atomicfile.read_json(self._layers / split_digest(diff_id) / LAYER_MARKER)
        size = meta.get("tar_size")
        if isinstance(size, int):
            return size
        for record in list(self._records.values()):
            if diff_id in record["diff_ids"]:
                blob = record["layer_blobs"][record["diff_ids"].index(diff_id)]
                from engine.images.layers import diff_id_of  # deferred: see the imports

                with self.blobs.open(blob) as f:
                    return diff_id_of(f)[1]
        raise NotFound(f"layer {diff_id} is not in the store")

    def tmp_dir(self) -> Path:
        path = self.root / "tmp" / secrets.token_hex(16)
        path.mkdir(parents=True)
        return path

    # -- tags ---------------------------------------------------------------------------

    def tag(self, name: str, repo: str, tag: str) -> None:
        target = parse(f"{repo}:{tag}" if tag else repo)
        if target.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        with self._lock:
            image_id, _ = self._resolve(name)
            self._refs[target.familiar] = image_id
            self._save_refs()
            self._touch_tag_time(image_id)

    def _touch_tag_time(self, image_id: str) -> None:
        record = dict(self._records[image_id], last_tag_time=now_rfc3339())
        atomicfile.write_json(self._imagedb / f"{split_digest(image_id)}.json", record)
        self._records[image_id] = record

    def _save_refs(self) -> None:
        grouped: dict[str, dict[str, str]] = {}
        for key, image_id in sorted(self._refs.items()):
            grouped.setdefault(_repo_of(key), {})[key] = image_id
        atomicfile.write_json(self._repos_file, {"Repositories": grouped})

    def _refs_of(self, image_id: str) -> _StrList:
        return [k for k, v in self._refs.items() if v == image_id]

    # -- removal ------------------------------------------------------------------------

    def remove(self, name: str, *, force: bool = False, in_use: InUse = _never_in_use) -> Records:
        """`docker rmi`: untag by ref; delete when the last ref goes or when named by id.

        `in_use` (the container store's question) is asked outside our lock, so
        the two stores' locks never nest; the name is resolved again after it.
        """
        trash: _PathList = []
        try:
            with self._lock:
                first_id, _ = self._resolve(name)
            user = in_use(first_id)
            with self._lock:
                image_id, key = self._resolve(name)
                if image_id != first_id:
                    raise Conflict(f"image {name} changed while being removed; try again")
                if key is not None:
                    return self._remove_ref(name, image_id, key, force, user, trash)
                return self._remove_id(image_id, force, user, trash)
        finally:
            for path in trash:
                shutil.rmtree(path, ignore_errors=True)

    def _remove_ref(
        self,
        name: str,
        image_id: str,
        key: str,
        force: bool,
        user: bool | str,
        trash: _PathList,
    ) -> Records:
        remaining = [r for r in self._refs_of(image_id) if r != key]
        also: _StrList = []
        repo = _repo_of(key)
        if "@" not in key and not any("@" not in r and _repo_of(r) == repo for r in remaining):
            # Docker drops digest refs of a repository together with its last tag.
            also = [r for r in remaining if "@" in r and _repo_of(r) == repo]
            remaining = [r for r in remaining if r not in also]
        if not remaining and user and not force:
            raise Conflict(
                f'conflict: unable to remove repository reference "{name}" (must force) - '
                f"container {_in_use_label(user)} is using its referenced image "
                f"{_short(image_id)}"
            )
        records = self._untag([key, *also])
        if remaining or user:
            return records
        return records + self._delete_image(image_id, trash)[0]

    def _remove_id(self, image_id: str, force: bool, user: bool | str, trash: _PathList) -> Records:
        refs = self._refs_of(image_id)
        if not force and len({_repo_of(r) for r in refs}) > 1:
            raise Conflict(
                f"conflict: unable to delete {_short(image_id)} (must be forced) - "
                "image is referenced in multiple repositories"
            )
        if user and not force:
            raise Conflict(
                f"conflict: unable to delete {_short(image_id)} (must be forced) - "
                f"image is being used by container {_in_use_label(user)}"
            )
        records = self._untag(refs)
        if user:
            return records  # forced while in use: untagged, but its layers stay for the container
        return records + self._delete_image(image_id, trash)[0]

    def _untag(self, keys: _StrList) -> Records:
        for key in keys:
            self._refs.pop(key, None)
        if keys:
            self._save_refs()
        return [{"Untagged": key} for key in keys]

    def _delete_image(self, image_id: str, trash: _PathList) -> tuple[Records, int]:
        """Forget the image; trash layers and blobs nothing else uses. Caller holds the lock."""
        record = self._records.pop(image_id)
        self._configs.pop(image_id, None)
        (self._imagedb / f"{split_digest(image_id)}.json").unlink(missing_ok=True)
        records = [{"Deleted": image_id}]
        reclaimed = 0
        for diff_id, size in zip(record["diff_ids"], record.get("layer_sizes", []), strict=False):
            if self._layer_used(diff_id) or self._inflight[diff_id]:
                continue
            path = self._trash_layer(diff_id)
            if path is not None:
                trash.append(path)
                records.append({"Deleted": diff_id})
                reclaimed += int(size)
        for blob in {image_id, *record["layer_blobs"]}:
            if not self._blob_used(blob):
                self.blobs.delete(blob)
        return records, reclaimed

    def _layer_used(self, diff_id: str) -> bool:
        return any(diff_id in r["diff_ids"] for r in self._records.values())

    def _blob_used(self, blob: str) -> bool:
        return blob in self._records or any(
            blob in r["layer_blobs"] for r in self._records.values()
        )

    def _trash_layer(self, diff_id: str) -> Path | None:
        """Move a layer dir out of the way atomically; the caller rmtrees it later."""
        src = self._layers / split_digest(diff_id)
        if not src.exists():
            return None
        dst = self._layers / f".trash-{split_digest(diff_id)}-{secrets.token_hex(4)}"
        src.rename(dst)
        return dst

    def forget_unused_blobs(self, digests: _StrList) -> None:
        """Delete the given blobs unless an image uses them (undoing a failed load)."""
        with self._lock:
            for blob in digests:
                if not self._blob_used(blob):
                    self.blobs.delete(blob)

    def prune(self, dangling_only: bool = True, in_use: InUse = _never_in_use) -> dict[str, Any]:
        """`docker image prune [-a]`: untagged (or all unused) images."""
        deleted: Records = []
        reclaimed = 0
        trash: _PathList = []
        with self._lock:
            candidates = list(self._records)
        unused = {i for i in candidates if not in_use(i)}  # asked outside our lock, as in remove
        try:
            with self._lock:
                for image_id in list(self._records):
                    refs = self._refs_of(image_id)
                    if dangling_only and any("@" not in r for r in refs):
                        continue
                    if image_id not in unused:
                        continue
                    deleted += self._untag(refs)
                    recs, n = self._delete_image(image_id, trash)
                    deleted += recs
                    reclaimed += n
        finally:
            for path in trash:
                shutil.rmtree(path, ignore_errors=True)
        return {"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}

    # -- views --------------------------------------------------------------------------

    def history(self, image: Image) -> _Rows:
        return describe.history(image)

    def inspect(self, image: Image) -> dict[str, Any]:
        return describe.inspect(image, self.layer_dirs(image))

    def summary(self, image: Image) -> dict[str, Any]:
        return describe.summary(image)
