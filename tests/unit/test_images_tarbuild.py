"""Helpers that build layer tars and images offline (plus unit tests of layers.py).

Other image tests import the builders from here, so an image never needs the network:
a layer is a tar built with tarfile, an image is a config JSON plus layers in a BlobStore.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InvalidParameter
from engine.images.blobstore import BlobStore
from engine.images.layers import compression_of, decompressed, diff_id_of

BUSYBOX = Path("/bin/busybox")


class TarBuilder:
    """An in-memory tar; each method adds one member (PAX format, so xattrs survive)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _info(self, name: str, kind: bytes, **kw: Any) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mtime = kw.pop("mtime", 1_700_000_000)
        ti.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
        xattrs: dict[str, bytes] = kw.pop("xattrs", {})
        if xattrs:
            ti.pax_headers = {
                f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()
            }
        for k, v in kw.items():
            setattr(ti, k, v)
        return ti

    def file(self, name: str, data: bytes = b"", **kw: Any) -> TarBuilder:
        ti = self._info(name, tarfile.REGTYPE, **kw)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))
        return self

    def dir(self, name: str, **kw: Any) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, **kw))
        return self

    def symlink(self, name: str, target: str, **kw: Any) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.SYMTYPE, linkname=target, mode=0o777, **kw))
        return self

    def hardlink(self, name: str, target: str, **kw: Any) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.LNKTYPE, linkname=target, **kw))
        return self

    def node(self, name: str, kind: bytes, major: int = 0, minor: int = 0, **kw: Any) -> TarBuilder:
        self.tar.addfile(self._info(name, kind, devmajor=major, devminor=minor, **kw))
        return self

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def busybox_layer() -> bytes:
    """A tiny bootable rootfs: /bin/busybox with sh/echo/ls/cat links, /etc/passwd."""
    t = TarBuilder().dir("bin").dir("etc").dir("tmp", mode=0o1777)
    t.file("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)
    for applet in ("sh", "echo", "ls", "cat", "true"):
        t.hardlink(f"bin/{applet}", "bin/busybox")
    t.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    return t.bytes()


def image_config(diff_ids: list[str], *, cmd: list[str] | None = None, **extra: Any) -> bytes:
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T12:00:00.123456789Z",
        "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin"], "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2024-05-01T12:00:00Z", "created_by": f"layer {i}"}
            for i in range(len(diff_ids))
        ],
    }
    config.update(extra)
    return json.dumps(config, sort_keys=True).encode()


@lru_cache(maxsize=32)
def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def put_image(
    blobs: BlobStore, layers: list[bytes], *, compress: bool = True, **config_kw: Any
) -> tuple[str, list[str]]:
    """Store layers (gzipped unless told) and a config; returns (config digest, layer digests)."""
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    digests = [blobs.put(gz(layer) if compress else layer) for layer in layers]
    return blobs.put(image_config(diff_ids, **config_kw)), digests


# -- unit tests of engine/images/layers.py ------------------------------------------------


def test_compression_sniffing() -> None:
    assert compression_of(gzip.compress(b"x")) == "gzip"
    assert compression_of(b"\x28\xb5\x2f\xfd....") == "zstd"
    assert compression_of(b"BZh91AY") == "bzip2"
    assert compression_of(b"\xfd7zXZ\x00") == "xz"
    assert compression_of(b"bin/\x00\x00") == "none"


def test_diff_id_is_hash_of_uncompressed_stream() -> None:
    layer = TarBuilder().file("a", b"hello").bytes()
    want = "sha256:" + hashlib.sha256(layer).hexdigest()
    assert diff_id_of(io.BytesIO(layer)) == (want, len(layer))
    assert diff_id_of(io.BytesIO(gzip.compress(layer))) == (want, len(layer))


def test_zstd_is_refused_with_a_clear_message() -> None:
    with pytest.raises(InvalidParameter, match="zstd"):
        decompressed(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\x00" * 100))


def test_corrupt_gzip_is_invalid_parameter() -> None:
    data = gzip.compress(b"x" * 10000)
    with pytest.raises(InvalidParameter, match="corrupt"):
        diff_id_of(io.BytesIO(data[: len(data) // 2]))


def test_short_reads_are_handled() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            n = min(1, len(self.data))
            b[:n] = self.data[:n]
            self.data = self.data[n:]
            return n

    layer = TarBuilder().file("a", b"hello").bytes()
    want = "sha256:" + hashlib.sha256(layer).hexdigest()
    assert diff_id_of(Trickle(gzip.compress(layer)))[0] == want  # type: ignore[arg-type]


def test_busybox_available() -> None:
    assert shutil.which("busybox") or BUSYBOX.exists()
