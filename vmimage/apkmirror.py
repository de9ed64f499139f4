"""Fetching from an Alpine mirror into a local cache, trusting nothing unchecked.

Layout of a mirror (any HTTP(S) or file: URL; the user picks one with
`DOCKYARD_ALPINE_MIRROR`, since this project names no mirror host of its own)::

    <mirror>/<branch>/<repo>/<arch>/APKINDEX.tar.gz
    <mirror>/<branch>/<repo>/<arch>/<name>-<version>.apk

Every download lands in a temp file beside its cache path and is renamed into
place only after its check passed (index: a trusted signature; package: the
verified index's checksum, its signature and data hash), so a failed or
tampered download leaves nothing in the cache. A cached package is re-checked
on every use and fetched again if it no longer matches.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.atomicfile import write_bytes
from vmimage.apk import ApkError, CheckedPackage, TrustedKeys, check_package, read_index
from vmimage.apkindex import ApkIndexError, Index, Package, parse_index

INDEX_FILE = "APKINDEX.tar.gz"
_MAX_INDEX = 64 << 20
_MAX_PACKAGE = 1 << 30
_CHUNK = 1 << 20

Opener = Callable[[str], BinaryIO]


class Unreachable(ApkError):
    """The mirror did not answer at all (as opposed to answering with an error)."""


def _urlopen(url: str) -> BinaryIO:
    response: BinaryIO = urllib.request.urlopen(url, timeout=60)
    return response


@dataclass(frozen=True)
class Mirror:
    """One branch and architecture of an Alpine mirror, with a cache directory."""

    url: str  # e.g. https://<mirror>/alpine
    branch: str  # e.g. v3.23
    arch: str  # e.g. x86_64
    keys: TrustedKeys
    cache: Path
    repos: Sequence[str] = ("main",)
    opener: Opener = _urlopen

    def repo_url(self, repo: str) -> str:
        return f"{self.url.rstrip('/')}/{self.branch}/{repo}/{self.arch}"

    def repo_cache(self, repo: str) -> Path:
        return self.cache / self.branch / repo / self.arch

    def index(self) -> Index:
        """Fetch, verify and parse the index of every repository.

        The index is fetched fresh each time. If the mirror cannot be reached,
        a cached index that still verifies is used instead, with a warning, so a
        rebuild from a full cache works offline.
        """
        index = Index()
        for repo in self.repos:
            url = f"{self.repo_url(repo)}/{INDEX_FILE}"
            cached = self.repo_cache(repo) / INDEX_FILE
            try:
                blob = self._download(url, _MAX_INDEX)
                fresh = True
            except Unreachable as e:
                if not cached.is_file():
                    raise
                print(f"vmimage: {e}; using the cached index {cached}", file=sys.stderr)
                blob, fresh = cached.read_bytes(), False
            text = read_index(blob, self.keys, what=url if fresh else str(cached))
            try:
                index.extend(parse_index(text, repo))
            except ApkIndexError as e:
                raise ApkError(f"{url}: {e}") from None
            if fresh:
                write_bytes(cached, blob)
        return index

    def package(self, pkg: Package) -> CheckedPackage:
        """The checked package, from the cache when it still matches, else downloaded."""
        path = self.repo_cache(pkg.repo) / pkg.filename
        if path.is_file():
            try:
                return check_package(path.read_bytes(), pkg, self.keys)
            except ApkError:
                path.unlink()
        url = f"{self.repo_url(pkg.repo)}/{pkg.filename}"
        blob = self._download(url, _MAX_PACKAGE)
        checked = check_package(blob, pkg, self.keys)
        write_bytes(path, blob)
        return checked

    def packages(self, pkgs: Sequence[Package]) -> list[CheckedPackage]:
        """Check every package before the caller installs any, so a bad one changes nothing."""
        return [self.package(p) for p in pkgs]

    def _download(self, url: str, limit: int) -> bytes:
        try:
            with self.opener(url) as response:
                chunks: list[bytes] = []
                total = 0
                while chunk := response.read(_CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise ApkError(f"{url}: larger than {limit} bytes; not an Alpine file")
                    chunks.append(chunk)
        except urllib.error.HTTPError as e:
            raise ApkError(
                f"cannot fetch {url}: HTTP {e.code} {e.reason}; check the mirror URL, "
                f"branch ({self.branch}) and architecture ({self.arch})"
            ) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise Unreachable(
                f"cannot fetch {url}: {reason}; is the mirror reachable from here?"
            ) from None
        return b"".join(chunks)
