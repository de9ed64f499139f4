"""Alpine's signed archives (APKINDEX.tar.gz and .apk v2): check them, then unpack them.

Both are concatenated gzip members. The first member is a tar holding one file,
`.SIGN.RSA<bits>.<key name>`: an RSA PKCS#1 v1.5 signature (SHA-1 for `RSA`,
else SHA-256/512) over the *compressed bytes* of the second member. In an index
the second member holds DESCRIPTION and APKINDEX. In a package it is the control
tar (.PKGINFO, scripts), and a third member, the data tar, is bound to it by the
`datahash` (sha256 of its compressed bytes) in .PKGINFO. The index's `C:` field
is `Q1` + base64(sha1) of the control member, so an index we trust pins every
package it lists, whatever mirror served it.

Nothing is trusted before its check passes: signatures against keys the caller
names (Alpine's own, shipped in vmimage/keys/alpine, or a test's), checksums
against the verified index. Every failure is an ApkError that says what was
wrong and what to do.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from vmimage.apkindex import Package

ALPINE_KEYS = Path(__file__).parent / "keys" / "alpine"
_SIGN_PREFIX = ".SIGN."
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "RSA": hashes.SHA1,
    "RSA256": hashes.SHA256,
    "RSA512": hashes.SHA512,
}
_ADB_MAGIC = b"ADB"  # apk-tools 3's own format, not gzip members
# Signature, control and index members hold small files; a larger one is not Alpine's.
_MAX_MEMBER_FILE = 64 << 20


class ApkError(Exception):
    """An Alpine archive failed a check, or could not be read or fetched."""


@dataclass(frozen=True)
class TrustedKeys:
    """RSA public keys by file name (apk names the signing key by its file name)."""

    keys: dict[str, rsa.RSAPublicKey]
    digests: dict[str, str]  # sha256 of each key file, for the image manifest

    @classmethod
    def load(cls, paths: Iterable[Path]) -> TrustedKeys:
        """Read PEM public keys (`*.rsa.pub`); a file that is not one raises ApkError."""
        keys, digests = {}, {}
        for path in paths:
            try:
                pem = Path(path).read_bytes()
                key = serialization.load_pem_public_key(pem)
            except (OSError, ValueError) as e:
                raise ApkError(f"trusted key {path}: not a PEM public key ({e})") from None
            if not isinstance(key, rsa.RSAPublicKey):
                raise ApkError(f"trusted key {path}: not an RSA key, which apk signs with")
            keys[Path(path).name] = key
            digests[Path(path).name] = hashlib.sha256(pem).hexdigest()
        return cls(keys, digests)

    @classmethod
    def alpine(cls) -> TrustedKeys:
        """Alpine's signing keys for x86_64, as shipped in vmimage/keys/alpine."""
        return cls.load(sorted(ALPINE_KEYS.glob("*.rsa.pub")))


@dataclass(frozen=True)
class CheckedPackage:
    """A package whose checksum, signature and data hash all passed."""

    package: Package
    info: dict[str, list[str]]  # .PKGINFO, each key to its values in order
    data: bytes  # compressed data member, ready for install()
    sha256: str  # of the whole .apk file, for the image manifest


def segments(blob: bytes, what: str) -> list[bytes]:
    """Split `blob` into its gzip members, each as its compressed bytes."""
    if blob.startswith(_ADB_MAGIC):
        raise ApkError(
            f"{what}: apk v3 (ADB) format, which this reader does not handle; "
            "use a branch whose mirror publishes v2 indexes and packages"
        )
    out: list[bytes] = []
    rest = blob
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = rest
        try:
            while not inflater.eof:
                produced = inflater.decompress(pending, 1 << 20)
                pending = inflater.unconsumed_tail
                if not pending and not produced and not inflater.eof:
                    raise ApkError(f"{what}: gzip member {len(out) + 1} is truncated")
        except zlib.error as e:
            raise ApkError(f"{what}: gzip member {len(out) + 1} is corrupt ({e})") from None
        used = len(rest) - len(inflater.unused_data)
        out.append(rest[:used])
        rest = inflater.unused_data
    return out


def read_index(blob: bytes, keys: TrustedKeys, what: str = "APKINDEX") -> str:
    """Verify a signed APKINDEX.tar.gz and return its APKINDEX text."""
    parts = segments(blob, what)
    if len(parts) != 2:
        raise ApkError(
            f"{what}: expected a signature and one signed gzip member, found {len(parts)} members"
        )
    verify(parts[0], parts[1], keys, what)
    files = _tar_files(parts[1], what)
    if "APKINDEX" not in files:
        raise ApkError(f"{what}: the signed part has no APKINDEX file")
    try:
        return files["APKINDEX"].decode()
    except UnicodeDecodeError as e:
        raise ApkError(f"{what}: APKINDEX is not UTF-8 text ({e})") from None


def verify(signature_member: bytes, signed: bytes, keys: TrustedKeys, what: str) -> str:
    """Check the signature member over `signed`; return the name of the key that signed."""
    files = _tar_files(signature_member, what)
    sigs = {n: d for n, d in files.items() if n.startswith(_SIGN_PREFIX)}
    if not sigs:
        raise ApkError(f"{what}: unsigned (no {_SIGN_PREFIX}* file in its first member)")
    problems = []
    for name, sig in sorted(sigs.items()):
        kind, _, key_name = name.removeprefix(_SIGN_PREFIX).partition(".")
        if kind not in _DIGESTS:
            problems.append(f"{name}: unknown signature type {kind!r}")
            continue
        key = keys.keys.get(key_name)
        if key is None:
            trusted = ", ".join(sorted(keys.keys)) or "none"
            problems.append(
                f"signed with key {key_name!r}, which is not trusted (trusted: {trusted}); "
                "add that key's .rsa.pub to the trusted keys only if you trust its owner"
            )
            continue
        try:
            key.verify(sig, signed, padding.PKCS1v15(), _DIGESTS[kind]())
        except InvalidSignature:
            problems.append(f"the signature by {key_name!r} does not match the content")
            continue
        return key_name
    raise ApkError(f"{what}: signature check failed: {'; '.join(problems)}")


def check_package(blob: bytes, pkg: Package, keys: TrustedKeys | None) -> CheckedPackage:
    """Check a downloaded .apk against its (verified) index record.

    The control member must hash to the index's `C:` and, when `keys` is given,
    carry a trusted signature; the data member must hash to .PKGINFO's datahash.
    """
    what = pkg.filename
    parts = segments(blob, what)
    if len(parts) not in (2, 3):
        raise ApkError(f"{what}: expected 2 or 3 gzip members, found {len(parts)}")
    has_sig = len(parts) == 3
    control = parts[1] if has_sig else parts[0]
    actual = checksum(control, pkg.checksum[:2])
    if actual != pkg.checksum:
        raise ApkError(
            f"{what}: checksum mismatch (index says {pkg.checksum}, file has {actual}); "
            "the mirror served another file than its signed index lists: try again later "
            "or use another mirror"
        )
    if keys is not None:
        if not has_sig:
            raise ApkError(f"{what}: unsigned package")
        verify(parts[0], control, keys, what)
    info = _pkginfo(_tar_files(control, what).get(".PKGINFO", b""), what)
    data = parts[-1] if has_sig else parts[1]
    want = info.get("datahash", [""])[0]
    if hashlib.sha256(data).hexdigest() != want:
        raise ApkError(f"{what}: data does not match the datahash of its .PKGINFO")
    return CheckedPackage(pkg, info, data, hashlib.sha256(blob).hexdigest())


def checksum(control: bytes, kind: str = "Q1") -> str:
    """apk's identity of a package: `Q1`+b64(sha1) or `Q2`+b64(sha256) of its control member."""
    if kind == "Q1":
        return "Q1" + base64.b64encode(hashlib.sha1(control).digest()).decode()
    if kind == "Q2":
        return "Q2" + base64.b64encode(hashlib.sha256(control).digest()).decode()
    raise ApkError(f"unknown apk checksum kind {kind!r} (expected Q1 or Q2)")


def install(checked: CheckedPackage, root: Path, fold: Iterable[str] = ()) -> None:
    """Unpack a checked package's files into `root`, merging with what is there.

    The data tar is hostile input until unpacked: the engine's layer extractor
    confines it to a fresh directory beside `root`, which is then merged in.
    A file another package already put there is a conflict, as in apk.
    Top-level directories named in `fold` (bin, lib, ...) go under usr/ for a
    merged-/usr root; relative links climbing out of them become absolute.
    """
    from engine.errors import EngineError
    from engine.images.unpack import extract_layer

    what = checked.package.filename
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{checked.package.name}.", dir=root.parent))
    try:
        tree = stage / "tree"
        try:
            extract_layer(io.BytesIO(checked.data), tree, whiteouts=False)
        except EngineError as e:
            raise ApkError(f"{what}: cannot unpack: {e.message}") from None
        for name in fold:
            if (tree / name).is_dir() and not (tree / name).is_symlink():
                _absolute_climbing_links(tree / name, tree)
                (root / "usr" / name).mkdir(parents=True, exist_ok=True)
                _merge(tree / name, root / "usr" / name, what)
                os.rmdir(tree / name)
        _merge(tree, root, what)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _absolute_climbing_links(top: Path, tree: Path) -> None:
    """Rewrite `../` symlinks under `top` to the absolute path they meant before folding."""
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            link = Path(dirpath, name)
            target = os.readlink(link) if link.is_symlink() else ""
            if target and not target.startswith("/") and ".." in target.split("/"):
                where = "/" + str(link.parent.relative_to(tree))
                link.unlink()
                link.symlink_to(os.path.normpath(os.path.join(where, target)))


def _merge(src: Path, dst: Path, what: str) -> None:
    for entry in sorted(os.listdir(src)):
        s, d = src / entry, dst / entry
        if not os.path.lexists(d):
            os.rename(s, d)
        elif d.is_dir() and not d.is_symlink() and s.is_dir() and not s.is_symlink():
            _merge(s, d, what)
        else:
            raise ApkError(f"{what}: {d} is already provided by another package")


def _tar_files(member: bytes, what: str) -> dict[str, bytes]:
    """Regular files of one gzip'd tar member (signature and control members end uncut)."""
    try:
        raw = zlib.decompress(member, wbits=16 + zlib.MAX_WBITS)
        files = {}
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for info in tar:
                if info.isfile() and info.size <= _MAX_MEMBER_FILE:
                    fileobj = tar.extractfile(info)
                    if fileobj is not None:
                        files[info.name] = fileobj.read()
        return files
    except (zlib.error, tarfile.TarError) as e:
        raise ApkError(f"{what}: unreadable tar member ({e})") from None


def _pkginfo(raw: bytes, what: str) -> dict[str, list[str]]:
    if not raw:
        raise ApkError(f"{what}: no .PKGINFO in its control member")
    info: dict[str, list[str]] = {}
    for line in raw.decode(errors="replace").splitlines():
        if line and not line.startswith("#"):
            key, sep, value = line.partition(" = ")
            if sep:
                info.setdefault(key, []).append(value)
    return info
