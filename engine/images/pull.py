"""`docker pull`: resolve a reference to one manifest, fetch its blobs, register the image.

Blobs are fetched a few at a time, skipped when already stored and resumed
when a previous attempt left a partial file. Nothing is registered unless
every blob verified, so a failed pull leaves the store as it was (plus
resumable partials). Progress is streamed as Docker's JSON messages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from engine.errors import InvalidParameter, NotFound
from engine.images import progress as msg
from engine.images.auth import Credentials, credentials_from_dict, load_config_credentials
from engine.images.blobstore import BlobStore, DigestMismatch
from engine.images.manifest import (
    CONFIG_TYPES,
    Descriptor,
    Index,
    Manifest,
    Platform,
    default_platform,
    parse_manifest,
    parse_platform,
    select_manifest,
)
from engine.images.reference import Reference
from engine.images.registry import RegistryClient

PARALLEL_DOWNLOADS = 3

# Two pulls sharing a layer must not append to the same ingest file at once.
_blob_locks: dict[str, threading.Lock] = {}
_blob_locks_guard = threading.Lock()


def _blob_lock(digest: str) -> threading.Lock:
    with _blob_locks_guard:
        return _blob_locks.setdefault(digest, threading.Lock())


class _Image(Protocol):
    @property
    def id(self) -> str: ...


ImageT = TypeVar("ImageT", bound=_Image)
ImageT_co = TypeVar("ImageT_co", bound=_Image, covariant=True)


class ImageStoreLike(Protocol[ImageT_co]):
    """What pull needs of engine.images.store.ImageStore."""

    @property
    def blobs(self) -> BlobStore: ...

    def register(
        self,
        config_blob: str,
        layer_blobs: list[str],
        *,
        ref: Reference | None = None,
        repo_digest: str | None = None,
        progress: Callable[[str, str], None] | None = None,
    ) -> ImageT_co: ...

    def get(self, name: str) -> ImageT_co: ...


def pull(
    store: ImageStoreLike[ImageT],
    ref: Reference,
    *,
    platform: str | None = None,
    auth: dict[str, Any] | None = None,
    progress: Callable[[dict[str, Any]], None],
    insecure: Sequence[str] = (),
) -> ImageT:
    """Pull `ref` into `store` and return the registered image."""
    emit = msg.thread_safe(progress)
    wanted = parse_platform(platform) if platform else default_platform()
    client = RegistryClient(ref.endpoint, _credentials(ref, auth), insecure=insecure)
    emit(msg.status(f"Pulling from {ref.path}", ref.tag or ref.digest))
    manifest, manifest_digest = resolve(client, ref, wanted)
    previous = _existing_id(store, ref)
    download_all(client, store.blobs, ref.path, manifest, emit)
    image = store.register(
        manifest.config.digest,
        [d.digest for d in manifest.layers],
        ref=ref,
        repo_digest=f"{ref.repository}@{manifest_digest}",
        progress=lambda short_id, text: emit(msg.layer(text, short_id)),
    )
    emit(msg.status(f"Digest: {manifest_digest}"))
    verdict = "Image is up to date for" if previous == image.id else "Downloaded newer image for"
    emit(msg.status(f"Status: {verdict} {ref.familiar}"))
    return image


def _credentials(ref: Reference, auth: dict[str, Any] | None) -> Credentials | None:
    """Explicit X-Registry-Auth wins; otherwise whatever `docker login` stored."""
    if auth:
        creds = credentials_from_dict(auth)
        if not creds.empty:
            return creds
    return load_config_credentials(ref.domain)


def _existing_id(store: ImageStoreLike[ImageT], ref: Reference) -> str | None:
    try:
        return store.get(ref.familiar).id
    except NotFound:
        return None


def resolve(client: RegistryClient, ref: Reference, wanted: Platform) -> tuple[Manifest, str]:
    """The image manifest for `wanted` and the digest the repository tag points at.

    The returned digest is the top-level one (the index's, for multi-platform
    images), as Docker records it in RepoDigests.
    """
    data, media_type, top_digest = client.get_manifest(ref)
    doc = parse_manifest(data, media_type)
    if isinstance(doc, Index):
        chosen = select_manifest(doc, wanted)
        by_digest = Reference(ref.domain, ref.path, "", chosen.digest)
        data, media_type, _ = client.get_manifest(by_digest)
        doc = parse_manifest(data, media_type)
        if isinstance(doc, Index):
            raise InvalidParameter(f"manifest {chosen.digest} of {ref.familiar} is a nested index")
    if doc.config.media_type and doc.config.media_type not in CONFIG_TYPES:
        raise InvalidParameter(
            f"unsupported image: config media type {doc.config.media_type!r} "
            "is not a container image config"
        )
    return doc, top_digest


def download_all(
    client: RegistryClient,
    blobs: BlobStore,
    repo: str,
    manifest: Manifest,
    emit: msg.ProgressFn,
) -> None:
    """Fetch the config and every missing layer, PARALLEL_DOWNLOADS at a time."""
    layers: list[Descriptor] = []
    for d in manifest.layers:
        if blobs.has(d.digest):
            emit(msg.layer("Already exists", d.short_id))
        elif d.digest not in {x.digest for x in layers}:
            layers.append(d)
            emit(msg.layer("Pulling fs layer", d.short_id))
    for d in layers[PARALLEL_DOWNLOADS:]:
        emit(msg.layer("Waiting", d.short_id))
    jobs: list[tuple[Descriptor, bool]] = [(d, True) for d in layers]
    if not blobs.has(manifest.config.digest):
        jobs.insert(0, (manifest.config, False))
    with ThreadPoolExecutor(PARALLEL_DOWNLOADS, thread_name_prefix="pull") as pool:
        futures: list[Future[None]] = [
            pool.submit(fetch_one, client, blobs, repo, d, emit if shown else None)
            for d, shown in jobs
        ]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
        for f in futures:
            if f.done() and not f.cancelled() and f.exception() is not None:
                f.result()  # re-raise the first failure, in manifest order


def fetch_one(
    client: RegistryClient,
    blobs: BlobStore,
    repo: str,
    d: Descriptor,
    emit: msg.ProgressFn | None,
) -> None:
    """Download one blob; a resumed partial that fails to verify is retried from scratch."""
    with _blob_lock(d.digest):
        if not blobs.has(d.digest):  # another pull may have fetched it while we waited
            _fetch_locked(client, blobs, repo, d, emit)
            return
    if emit:
        emit(msg.layer("Download complete", d.short_id))


def _fetch_locked(
    client: RegistryClient,
    blobs: BlobStore,
    repo: str,
    d: Descriptor,
    emit: msg.ProgressFn | None,
) -> None:
    for attempt in range(2):
        resumed = False
        try:
            with blobs.ingest(d.digest) as ingest:
                resumed = ingest.offset > 0
                on_bytes = msg.RateLimited(emit, d.short_id) if emit else None
                client.fetch_blob(repo, d.digest, ingest, size=d.size, on_bytes=on_bytes)
                if emit:
                    emit(msg.layer("Verifying Checksum", d.short_id))
        except DigestMismatch:
            if resumed and attempt == 0:
                continue  # the bad partial was discarded by the ingest; fetch it whole
            raise
        if emit:
            emit(msg.layer("Download complete", d.short_id))
        return
