"""The build context: received from the request body, checksummed for the cache.

The context tar is hostile input like any image layer (a client can send
`../../etc/passwd`, absolute names, symlinks pointing out and then files
"inside" them, device nodes), so it is extracted by the same dir-fd walking
extractor as layers (`engine.images.unpack`), with whiteout names kept as the
ordinary files they are here and devices dropped.

The checksum decides whether a COPY/ADD step can come from the cache. Like
the classic builder (tarsum v1 headers plus content), it covers each file's
path, type, mode, owner, size, link target, device numbers, xattrs and bytes,
but not its mtime: a fresh checkout or `touch` of an unchanged file still hits
the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path
from typing import BinaryIO, cast

from engine.errors import EngineError, InvalidParameter
from engine.images.layers import HashingReader, decompressed
from engine.images.unpack import extract_layer

_CHUNK = 1 << 20
_TAR_PREFIX = "layer is not a valid tar archive: "
_REWORDS = (
    ("layer member", "member"),
    ("layer data", "data"),
    ("the layer root", "the context"),
    ("not in the layer", "not in the context"),
    ("; the layer is corrupt", ""),
)


class ContextTooLarge(InvalidParameter):
    """The context is bigger than the engine accepts."""


class _Limited(io.RawIOBase):
    """Passes a stream through, failing once more than `limit` bytes went by."""

    def __init__(self, src: BinaryIO, limit: int) -> None:
        self._src = src
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buf).cast("B")
        data = self._src.read(len(view))
        self.count += len(data)
        if self.count > self._limit:
            raise ContextTooLarge(
                f"the build context is larger than {self._limit} bytes; "
                "leave big files out with .dockerignore"
            )
        view[: len(data)] = data
        return len(data)


def receive(stream: BinaryIO, dest: Path, limit_bytes: int | None = None) -> None:
    """Extract the context tar (plain, gzip, bzip2 or xz) into `dest`, which must not exist.

    `limit_bytes` bounds the uncompressed tar, so a small compressed body
    cannot expand without end. On any error nothing is left at `dest`.
    """
    # HashingReader turns a corrupt compressed stream into InvalidParameter.
    plain = cast(BinaryIO, HashingReader(decompressed(stream)).as_io())
    if limit_bytes is not None:
        plain = cast(BinaryIO, io.BufferedReader(_Limited(plain, limit_bytes), _CHUNK))
    try:
        extract_layer(plain, Path(dest), allow_devices=False, whiteouts=False)
    except ContextTooLarge:
        raise
    except InvalidParameter as e:
        raise InvalidParameter(
            f"the build context is not a valid tar archive: {_reword(e.message)}"
        ) from None


def _reword(message: str) -> str:
    """The extractor speaks of layers; here the tar is a build context."""
    text = message.removeprefix(_TAR_PREFIX)
    for old, new in _REWORDS:
        text = text.replace(old, new)
    return text


def _entry(root: Path, rel: str) -> Path:
    """root/rel, refusing `..`, absolute names and symlinks on the way (not at the end)."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidParameter(f"{rel!r} points outside the build context")
    path = Path(root)
    for comp in parts[:-1]:
        path = path / comp
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise _missing(rel) from None
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidParameter(
                f"{rel!r}: {comp!r} is not a directory in the build context "
                "(symlinked directories are not followed)"
            )
    return path / parts[-1] if parts else path


def _missing(rel: str) -> InvalidParameter:
    return InvalidParameter(f"file not found in build context or excluded by .dockerignore: {rel}")


def _header(rel: str, path: Path, st: os.stat_result) -> bytes:
    mode = st.st_mode
    link = os.readlink(path) if stat.S_ISLNK(mode) else ""
    dev = (
        (os.major(st.st_rdev), os.minor(st.st_rdev))
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else (0, 0)
    )
    size = st.st_size if stat.S_ISREG(mode) else 0
    xattrs: list[list[str]] = []
    if not stat.S_ISLNK(mode):
        try:
            names = sorted(os.listxattr(path, follow_symlinks=False))
        except OSError:
            names = []
        for name in names:
            try:
                xattrs.append([name, os.getxattr(path, name, follow_symlinks=False).hex()])
            except OSError:
                continue
    fields = [
        rel,
        stat.S_IFMT(mode),
        stat.S_IMODE(mode),
        st.st_uid,
        st.st_gid,
        size,
        link,
        dev,
        xattrs,
    ]
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def _hash_file(h: hashlib._Hash, path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)


def _add(h: hashlib._Hash, root: Path, raw: str) -> None:
    rel = "/".join(p for p in raw.split("/") if p not in ("", "."))
    path = _entry(root, rel)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise _missing(rel) from None
    h.update(_header(rel, path, st))
    if stat.S_ISREG(st.st_mode):
        _hash_file(h, path)
    elif stat.S_ISDIR(st.st_mode):
        for name in sorted(os.listdir(path)):
            _add(h, root, f"{rel}/{name}" if rel else name)


def checksum(root: Path, paths: list[str]) -> str:
    """sha256 over `paths` (relative to `root`; directories with all they hold), in order.

    Symlinks are hashed as links (their target string), never followed.
    """
    h = hashlib.sha256()
    try:
        for rel in paths:
            _add(h, Path(root), rel)
    except PermissionError as e:
        raise EngineError(f"cannot read the build context: {e}") from e
    return "sha256:" + h.hexdigest()
