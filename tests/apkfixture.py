"""Builds Alpine-format fixtures (signed APKINDEX.tar.gz, .apk v2) with a test RSA key.

The bytes follow abuild's layout: a gzip'd signature tar, a gzip'd control tar
cut before its end-of-archive blocks, then the gzip'd data tar, so the code
under test reads them exactly as it would read Alpine's own.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.httpserve import BackgroundHTTPServer


@dataclass
class SigningKey:
    """A throwaway RSA key; `name` is what apk calls it (the public key's file name)."""

    name: str
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def write_public(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.name
        path.write_bytes(self.public_pem())
        return path


def tar_gz(
    files: dict[str, bytes], *, cut: bool = False, links: dict[str, str] | None = None
) -> bytes:
    """A gzip'd tar of regular files (and symlinks); `cut` drops the end-of-archive blocks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if "bin/" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            tar.addfile(info)
        members_only = buf.getvalue()
    return gzip.compress(members_only if cut else buf.getvalue(), mtime=0)


def signature(key: SigningKey, signed: bytes, kind: str = "RSA256") -> bytes:
    """abuild-sign's first member: `.SIGN.<kind>.<key name>` over the signed member."""
    digest = hashes.SHA1() if kind == "RSA" else hashes.SHA256()
    sig = key.private.sign(signed, padding.PKCS1v15(), digest)
    return tar_gz({f".SIGN.{kind}.{key.name}": sig}, cut=True)


@dataclass
class FakePackage:
    name: str
    version: str
    files: dict[str, bytes]
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.apk"


def build_apk(pkg: FakePackage, key: SigningKey) -> tuple[bytes, str]:
    """(the .apk bytes, its APKINDEX record)."""
    data = tar_gz(pkg.files, links=pkg.links)
    pkginfo = (
        f"pkgname = {pkg.name}\npkgver = {pkg.version}\narch = x86_64\nlicense = MIT\n"
        + "".join(f"depend = {d}\n" for d in pkg.depends)
        + "".join(f"provides = {p}\n" for p in pkg.provides)
        + f"datahash = {hashlib.sha256(data).hexdigest()}\n"
    )
    control = tar_gz({".PKGINFO": pkginfo.encode()}, cut=True)
    blob = signature(key, control) + control + data
    checksum = "Q1" + base64.b64encode(hashlib.sha1(control).digest()).decode()
    record = [f"C:{checksum}", f"P:{pkg.name}", f"V:{pkg.version}", "A:x86_64"]
    record += [f"S:{len(blob)}", "L:MIT", f"o:{pkg.name}"]
    if pkg.depends:
        record.append("D:" + " ".join(pkg.depends))
    if pkg.provides:
        record.append("p:" + " ".join(pkg.provides))
    return blob, "\n".join(record) + "\n"


def build_index(records: list[str], key: SigningKey, kind: str = "RSA256") -> bytes:
    """A signed APKINDEX.tar.gz holding DESCRIPTION and the records."""
    body = tar_gz({"DESCRIPTION": b"test repository", "APKINDEX": "\n".join(records).encode()})
    return signature(key, body, kind) + body


def write_repo(
    directory: Path,
    packages: list[FakePackage],
    key: SigningKey,
    index_key: SigningKey | None = None,
) -> dict[str, bytes]:
    """Write <directory>/APKINDEX.tar.gz and the .apk files; returns the bytes by file name."""
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, bytes] = {}
    records = []
    for pkg in packages:
        blob, record = build_apk(pkg, key)
        out[pkg.filename] = blob
        records.append(record)
    out["APKINDEX.tar.gz"] = build_index(records, index_key or key)
    for name, data in out.items():
        (directory / name).write_bytes(data)
    return out


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class StaticMirror(BackgroundHTTPServer):
    """A mirror: static files under `www` on 127.0.0.1 (a free port); `url` is its alpine/."""

    def __init__(self, www: Path) -> None:
        self.serve(functools.partial(_QuietFiles, directory=str(www)))  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"http://{self.host}/alpine"
