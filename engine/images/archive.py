"""`docker save` / `docker load`: image archives in Docker's format.

`save` writes what Docker 25+ writes: an OCI image layout (oci-layout,
index.json, blobs/sha256/...) plus the legacy manifest.json and repositories
that older loaders (and podman) read, with layers as uncompressed tars named
by their diff_id.

`load` accepts that, older `docker save` archives (`<id>/layer.tar`, possibly
symlinked) and plain OCI layouts, gzip-compressed or not. An archive is
untrusted: members are copied to numbered scratch files and never created by
their own names; names are only keys the manifest looks up. Layers are then
unpacked by the same safe unpacker as a pull, and their diff_ids checked. If
anything fails, images this load registered and blobs it added are removed,
so a bad archive leaves the store as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import posixpath
import shutil
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from engine.errors import InvalidParameter, NotFound
from engine.images import progress as msg
from engine.images.blobstore import BlobStore, split_digest
from engine.images.describe import created_unix
from engine.images.layers import decompressed
from engine.images.reference import Reference, parse
from engine.images.store import Image, ImageStore

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
MAX_JSON = 32 << 20  # a manifest or config larger than this is not a real one
MAX_LINK_HOPS = 16
_CHUNK = 1 << 20
_ARCHIVE_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    gzip.BadGzipFile,
)

# Receives Docker JSON progress messages ({"status": "Loading layer", "id": ...}).
Progress = Callable[[dict[str, Any]], None]


# -- save ---------------------------------------------------------------------------------


def save(store: ImageStore, names: list[str], out: BinaryIO) -> None:
    """Write the named images (with the tags they were named by) as one archive to `out`."""
    chosen: dict[str, tuple[Image, list[str]]] = {}
    for name in names:
        image, key = store.resolve(name)
        _, tags = chosen.setdefault(image.id, (image, []))
        if key is not None and "@" not in key and key not in tags:
            tags.append(key)
    writer = _Writer(out)
    try:
        writer.dir("blobs/")
        writer.dir("blobs/sha256/")
        legacy: list[dict[str, Any]] = []
        descriptors: list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        for image, tags in chosen.values():
            writer.mtime = created_unix(image.created)
            layer_paths = [
                _write_layer(store, writer, image, i) for i in range(len(image.diff_ids))
            ]
            config_path = writer.blob(store.blobs.read(image.id))
            manifest = _oci_manifest(store, image)
            manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            writer.blob(manifest)
            descriptors += _index_entries(manifest_digest, len(manifest), tags)
            legacy.append({"Config": config_path, "RepoTags": tags or None, "Layers": layer_paths})
            for tag in tags:
                ref = parse(tag)
                top = split_digest(image.diff_ids[-1]) if image.diff_ids else ""
                repositories.setdefault(ref.repository, {})[ref.tag] = top
        writer.mtime = 0
        index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": descriptors}
        writer.file("index.json", _json(index))
        writer.file("manifest.json", _json(legacy))
        writer.file("oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        if repositories:
            writer.file("repositories", _json(repositories))
    finally:
        writer.close()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _Writer:
    """A streaming tar writer (the output may be an HTTP response) that writes each blob once."""

    def __init__(self, out: BinaryIO) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.written: set[str] = set()
        self.mtime = 0

    def _info(self, name: str, size: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.size = size
        ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        ti.mtime = self.mtime
        return ti

    def dir(self, name: str) -> None:
        self.tar.addfile(self._info(name, 0, tarfile.DIRTYPE))

    def file(self, name: str, data: bytes) -> None:
        self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def blob(self, data: bytes) -> str:
        path = "blobs/sha256/" + hashlib.sha256(data).hexdigest()
        if path not in self.written:
            self.file(path, data)
            self.written.add(path)
        return path

    def stream(self, path: str, src: BinaryIO, size: int) -> None:
        if path not in self.written:
            self.tar.addfile(self._info(path, size), src)
            self.written.add(path)

    def close(self) -> None:
        self.tar.close()


def _write_layer(store: ImageStore, writer: _Writer, image: Image, index: int) -> str:
    diff_id = image.diff_ids[index]
    path = "blobs/sha256/" + split_digest(diff_id)
    if path not in writer.written:
        size = store.layer_tar_size(diff_id)
        with store.blobs.open(image.layer_blobs[index]) as raw:
            writer.stream(path, decompressed(raw), size)
    return path


def _oci_manifest(store: ImageStore, image: Image) -> bytes:
    layers = [
        {"mediaType": MEDIA_LAYER, "digest": d, "size": store.layer_tar_size(d)}
        for d in image.diff_ids
    ]
    config = {"mediaType": MEDIA_CONFIG, "digest": image.id, "size": store.blobs.size(image.id)}
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config,
        "layers": layers,
    }
    return _json(manifest)


def _index_entries(digest: str, size: int, tags: list[str]) -> list[dict[str, Any]]:
    base = {"mediaType": MEDIA_MANIFEST, "digest": digest, "size": size}
    if not tags:
        return [base]
    entries = []
    for tag in tags:
        ref = parse(tag)
        annotations = {
            ANNOTATION_IMAGE_NAME: f"{ref.domain}/{ref.path}:{ref.tag}",
            ANNOTATION_REF_NAME: ref.tag,
        }
        entries.append({**base, "annotations": annotations})
    return entries


# -- load ---------------------------------------------------------------------------------


@dataclass
class _Planned:
    config: str  # archive key of the config
    layers: list[str]  # archive keys of the layer tars (any compression)
    tags: list[Reference]
    image_id: str = ""


@dataclass
class _Archive:
    """An untrusted archive's members, by normalised name, as scratch files."""

    scratch: Path
    files: dict[str, Path] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def read(self, stream: BinaryIO) -> None:
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                for n, member in enumerate(tar):
                    self._take(tar, n, member)
        except _ARCHIVE_ERRORS as e:
            raise InvalidParameter(f"invalid image archive: {e or type(e).__name__}") from None

    def _take(self, tar: tarfile.TarFile, n: int, m: tarfile.TarInfo) -> None:
        key = _key(m.name)
        if key is None:
            return  # a name outside the archive root can never be what a manifest means
        if m.isreg():
            path = self.scratch / str(n)
            src = tar.extractfile(m)
            copied = 0
            with open(path, "wb") as f:
                while src is not None and (chunk := src.read(_CHUNK)):
                    f.write(chunk)
                    copied += len(chunk)
            if copied != m.size:
                raise InvalidParameter(f"invalid image archive: {key!r} is truncated")
            self.files[key] = path
            self.links.pop(key, None)
        elif m.issym() or m.islnk():
            base = posixpath.dirname(key) if m.issym() else ""
            target = _key(posixpath.join(base, m.linkname))
            if target is not None:
                self.links[key] = target
                self.files.pop(key, None)

    def has(self, key: str) -> bool:
        return key in self.files or key in self.links

    def path(self, key: str) -> Path:
        seen = 0
        while key in self.links and seen < MAX_LINK_HOPS:
            key = self.links[key]
            seen += 1
        if key not in self.files:
            raise InvalidParameter(
                f"invalid image archive: it refers to {key!r}, which it does not contain"
            )
        return self.files[key]

    def json(self, key: str) -> Any:
        path = self.path(key)
        if path.stat().st_size > MAX_JSON:
            raise InvalidParameter(f"invalid image archive: {key!r} is too large")
        try:
            return json.loads(path.read_bytes())
        except ValueError:
            raise InvalidParameter(f"invalid image archive: {key!r} is not valid JSON") from None


def _key(name: str) -> str | None:
    """Normalise a member name; None if it climbs above the archive root."""
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(comp)
    return "/".join(parts) or None


def load(store: ImageStore, stream: BinaryIO, progress: Progress | None = None) -> list[str]:
    """Load every image in the archive; returns Docker's "Loaded image: ..." lines.

    `progress` gets a Docker JSON message per layer being unpacked.
    """
    scratch = store.tmp_dir()
    try:
        archive = _Archive(scratch)
        archive.read(stream)
        plans = _plan(archive)
        _register_all(store, archive, plans, progress)
        return _tag_all(store, plans)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _plan(archive: _Archive) -> list[_Planned]:
    if archive.has("manifest.json"):
        plans = _plan_legacy(archive)
    elif archive.has("index.json"):
        plans = _plan_index(archive, archive.json("index.json"), 0)
    else:
        raise InvalidParameter(
            "invalid image archive: it has neither manifest.json nor index.json "
            "(expected the output of `docker save` or an OCI layout)"
        )
    if not plans:
        raise InvalidParameter("invalid image archive: it contains no images")
    for plan in plans:
        config = archive.json(plan.config)
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list) or len(diff_ids) != len(plan.layers):
            raise InvalidParameter(
                f"invalid image archive: config {plan.config!r} does not list "
                f"{len(plan.layers)} layers in rootfs.diff_ids"
            )
        for key in plan.layers:
            archive.path(key)
    return plans


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"invalid image archive: {what} must be a list of strings")
    return value


def _tag_ref(text: str) -> Reference:
    ref = parse(text)
    if ref.digest or not ref.tag:
        raise InvalidParameter(f"invalid image archive: {text!r} is not a repository:tag")
    return ref


def _plan_legacy(archive: _Archive) -> list[_Planned]:
    entries = archive.json("manifest.json")
    if not isinstance(entries, list):
        raise InvalidParameter("invalid image archive: manifest.json must be a list")
    plans = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidParameter("invalid image archive: a manifest.json entry has no Config")
        tags = [_tag_ref(t) for t in _str_list(entry.get("RepoTags"), "RepoTags")]
        layers = [_key(k) or "" for k in _str_list(entry.get("Layers"), "Layers")]
        plans.append(_Planned(_key(entry["Config"]) or "", layers, tags))
    return plans


def _blob_key(descriptor: Any) -> str:
    digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
    if not isinstance(digest, str):
        raise InvalidParameter("invalid image archive: a descriptor has no digest")
    return "blobs/sha256/" + split_digest(digest)


def _verified_json(archive: _Archive, descriptor: dict[str, Any]) -> Any:
    key = _blob_key(descriptor)
    actual = "sha256:" + hashlib.sha256(archive.path(key).read_bytes()).hexdigest()
    if actual != descriptor["digest"]:
        raise InvalidParameter(f"invalid image archive: {key} does not match its digest")
    return archive.json(key)


def _plan_index(archive: _Archive, index: Any, depth: int) -> list[_Planned]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or depth > 2:
        raise InvalidParameter("invalid image archive: index.json has no manifests list")
    plans: list[_Planned] = []
    for desc in manifests:
        if not isinstance(desc, dict):
            raise InvalidParameter("invalid image archive: bad manifest descriptor")
        doc = _verified_json(archive, desc)
        if not isinstance(doc, dict):
            raise InvalidParameter("invalid image archive: a manifest is not a JSON object")
        if desc.get("mediaType") in (MEDIA_INDEX, DOCKER_MANIFEST_LIST) or "manifests" in doc:
            plans += _plan_index(archive, doc, depth + 1)
            continue
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise InvalidParameter("invalid image archive: a manifest has no layers list")
        plan = _Planned(_blob_key(doc.get("config")), [_blob_key(d) for d in layers], [])
        name = _oci_name(desc.get("annotations"))
        existing = next((p for p in plans if p.config == plan.config), None)
        if existing is None:
            plans.append(plan)
        if name is not None:
            (existing or plan).tags.append(name)
    return plans


def _oci_name(annotations: Any) -> Reference | None:
    if not isinstance(annotations, dict):
        return None
    name = annotations.get(ANNOTATION_IMAGE_NAME) or annotations.get(ANNOTATION_REF_NAME)
    if not isinstance(name, str) or not (":" in name or "/" in name):
        return None  # a bare "latest" names no repository
    try:
        ref = parse(name)
    except InvalidParameter:
        return None
    return ref if ref.tag and not ref.digest else None


def _put_file(blobs: BlobStore, path: Path, added: list[str]) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    digest = "sha256:" + hasher.hexdigest()
    if blobs.has(digest):
        return digest
    with blobs.ingest(digest) as w, open(path, "rb") as f:
        f.seek(w.offset)
        while chunk := f.read(_CHUNK):
            w.write(chunk)
    added.append(digest)
    return digest


def _exists(store: ImageStore, image_id: str) -> bool:
    try:
        store.get(image_id)
    except NotFound:
        return False
    return True


def _register_all(
    store: ImageStore, archive: _Archive, plans: list[_Planned], progress: Progress | None
) -> None:
    added_blobs: list[str] = []
    added_images: list[str] = []

    def on_layer(short_id: str, status: str) -> None:
        if progress is not None and status == "Extracting":
            progress(msg.layer("Loading layer", short_id))

    try:
        for plan in plans:
            config = _put_file(store.blobs, archive.path(plan.config), added_blobs)
            layers = [_put_file(store.blobs, archive.path(k), added_blobs) for k in plan.layers]
            existed = _exists(store, config)
            plan.image_id = store.register(config, layers, progress=on_layer).id
            if not existed:
                added_images.append(plan.image_id)
    except BaseException:
        for image_id in added_images:
            store.remove(image_id, force=True)
        store.forget_unused_blobs(added_blobs)
        raise


def _tag_all(store: ImageStore, plans: list[_Planned]) -> list[str]:
    lines = []
    for plan in plans:
        for ref in plan.tags:
            store.tag(plan.image_id, ref.repository, ref.tag)
            lines.append(f"Loaded image: {ref.familiar}")
        if not plan.tags:
            lines.append(f"Loaded image ID: {plan.image_id}")
    return lines
