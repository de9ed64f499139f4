"""Layer byte streams: compression sniffing and the diff_id hash of the plain tar.

A layer blob arrives compressed (gzip, usually) but an image config names its
layers by the sha256 of the *uncompressed* tar (the diff_id). Sniffing the
magic bytes instead of trusting a media type means a mislabelled blob still
unpacks, and hashing while reading means the diff_id costs no second pass.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import zlib
from typing import IO, BinaryIO, cast

from engine.errors import InvalidParameter

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
_SNIFF_LEN = 6
_CHUNK = 1 << 20

# What a decompressor raises on bad input; turned into InvalidParameter at the read site.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    zlib.error,
    lzma.LZMAError,
    gzip.BadGzipFile,
)


class _Prefixed(io.RawIOBase):
    """Replays the sniffed head bytes, then the rest of a non-seekable stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buf).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def compression_of(head: bytes) -> str:
    """Name the compression from a blob's first bytes: gzip, zstd, bzip2, xz or none."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return "none"


def _read_head(blob: BinaryIO) -> bytes:
    head = b""
    while len(head) < _SNIFF_LEN:
        more = blob.read(_SNIFF_LEN - len(head))
        if not more:
            break
        head += more
    return head


def decompressed(blob: BinaryIO) -> BinaryIO:
    """A stream of the plain tar inside `blob`, whatever its (stdlib-supported) compression."""
    head = _read_head(blob)
    raw = cast(BinaryIO, io.BufferedReader(_Prefixed(head, blob), _CHUNK))
    kind = compression_of(head)
    if kind == "zstd":
        raise InvalidParameter(
            "zstd-compressed layers are unsupported by this engine; "
            "use an image whose layers are gzip-compressed or uncompressed"
        )
    if kind == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(raw, mode="rb"))
    if kind == "xz":
        return cast(BinaryIO, lzma.LZMAFile(raw, mode="rb"))
    return raw


class HashingReader(io.RawIOBase):
    """Reads a stream while hashing and counting every byte that passes through.

    Decompression errors surface as InvalidParameter, so a corrupt blob is
    reported as bad input rather than as an engine fault.
    """

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._hasher = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buf).cast("B")
        try:
            data = self._src.read(len(view))
        except _DECODE_ERRORS as e:
            raise InvalidParameter(f"layer data is corrupt: {e}") from None
        except OSError as e:
            if e.errno is None:  # bz2 "Invalid data stream" and friends
                raise InvalidParameter(f"layer data is corrupt: {e}") from None
            raise
        view[: len(data)] = data
        self._hasher.update(data)
        self.count += len(data)
        return len(data)

    def drain(self) -> None:
        """Hash the rest of the stream: the diff_id covers the tar's trailing padding too."""
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hasher.hexdigest()

    def as_io(self) -> IO[bytes]:
        return cast(IO[bytes], self)


def diff_id_of(blob: BinaryIO) -> tuple[str, int]:
    """sha256 digest and length of the uncompressed tar inside `blob`."""
    reader = HashingReader(decompressed(blob))
    reader.drain()
    return reader.digest, reader.count
