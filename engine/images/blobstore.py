"""Content-addressed blob store: `blobs/sha256/<hex>`, every blob verified.

A blob only appears under its digest after its bytes hashed to that digest and
were fsynced, so a crash mid-download leaves at most a partial file in
`ingest/`, which the next pull resumes instead of trusting.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from engine.atomicfile import fsync_dir
from engine.errors import EngineError, InvalidParameter, NotFound


class DigestMismatch(EngineError):
    """The bytes did not hash to the digest they were fetched or loaded as."""


def split_digest(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise InvalidParameter(f"unsupported or malformed digest: {digest!r}")
    return hexpart


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Ingest:
    """An in-progress blob write. `offset` > 0 means a previous attempt left bytes to resume."""

    digest: str
    path: Path
    file: BinaryIO
    hasher: hashlib._Hash = field(repr=False)
    offset: int = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.hasher.update(data)
        self.offset += len(data)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.blobs / split_digest(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store bytes; verify them against `digest` when given. Returns the digest."""
        actual = sha256_digest(data)
        if digest is not None and digest != actual:
            raise DigestMismatch(f"content digest {actual} does not match expected {digest}")
        with self.ingest(actual) as w:
            if w.offset == 0:
                w.write(data)
            else:
                w.write(data[w.offset :])
        return actual

    @contextmanager
    def ingest(self, digest: str) -> Iterator[Ingest]:
        """Open (or resume) a write of `digest`; commits only if the bytes verify.

        On an exception the partial file is kept, so the caller can resume
        from `Ingest.offset` on the next attempt.
        """
        split_digest(digest)
        partial = self.ingest_dir / split_digest(digest)
        hasher = hashlib.sha256()
        if partial.exists():
            with open(partial, "rb") as old:
                for chunk in iter(lambda: old.read(1 << 20), b""):
                    hasher.update(chunk)
        f = open(partial, "ab")  # noqa: SIM115 - lives across the yield, closed in finally
        w = Ingest(digest, partial, f, hasher, partial.stat().st_size)
        try:
            yield w
            f.flush()
            os.fsync(f.fileno())
        finally:
            f.close()
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            partial.unlink(missing_ok=True)
            raise DigestMismatch(f"content digest {actual} does not match expected {digest}")
        os.replace(partial, self.path(digest))
        fsync_dir(self.blobs)

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        return ["sha256:" + p.name for p in self.blobs.iterdir()]
