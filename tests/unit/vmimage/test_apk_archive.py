"""Signed APKINDEX and .apk checks, and unpacking, on fixtures signed with a test key."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from tests.apkfixture import FakePackage, SigningKey, build_apk, build_index, signature, tar_gz
from vmimage.apk import (
    ApkError,
    TrustedKeys,
    check_package,
    checksum,
    install,
    read_index,
    segments,
)
from vmimage.apkindex import parse_index

KEY = SigningKey("test-builder-1.rsa.pub")
OTHER = SigningKey("someone-else.rsa.pub")
RECORD = "C:Q1x\nP:hello\nV:1.0-r0\n"


def trusted(tmp_path: Path, *keys: SigningKey) -> TrustedKeys:
    return TrustedKeys.load([k.write_public(tmp_path / "keys") for k in keys])


def test_segments_split_gzip_members() -> None:
    parts = [gzip.compress(b"a" * 5000, mtime=0), gzip.compress(b"b", mtime=0)]
    assert segments(b"".join(parts), "x") == parts
    assert segments(b"", "x") == []


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (gzip.compress(b"a" * 100, mtime=0)[:-12], "truncated"),
        (gzip.compress(b"a", mtime=0) + b"garbage!", "member 2 is corrupt"),
    ],
)
def test_segments_refuse_broken_gzip(blob: bytes, message: str) -> None:
    with pytest.raises(ApkError, match=message):
        segments(blob, "x")


@pytest.mark.parametrize("kind", ["RSA", "RSA256"])
def test_read_index_verifies_and_returns_text(tmp_path: Path, kind: str) -> None:
    text = read_index(build_index([RECORD], KEY, kind), trusted(tmp_path, KEY))
    assert [p.name for p in parse_index(text)] == ["hello"]


def test_index_signed_by_an_untrusted_key(tmp_path: Path) -> None:
    blob = build_index([RECORD], OTHER)
    with pytest.raises(ApkError, match=r"'someone-else\.rsa\.pub', which is not trusted"):
        read_index(blob, trusted(tmp_path, KEY))


def test_tampered_index(tmp_path: Path) -> None:
    good = build_index([RECORD], KEY)
    sig = segments(good, "x")[0]
    evil = tar_gz({"DESCRIPTION": b"x", "APKINDEX": RECORD.replace("1.0", "6.6").encode()})
    with pytest.raises(ApkError, match="does not match the content"):
        read_index(sig + evil, trusted(tmp_path, KEY))


def test_bad_signature_bytes(tmp_path: Path) -> None:
    body = segments(build_index([RECORD], KEY), "x")[1]
    forged = tar_gz({f".SIGN.RSA256.{KEY.name}": b"\x00" * 256}, cut=True)
    with pytest.raises(ApkError, match="does not match the content"):
        read_index(forged + body, trusted(tmp_path, KEY))


def test_unsigned_and_extra_members(tmp_path: Path) -> None:
    body = segments(build_index([RECORD], KEY), "x")[1]
    keys = trusted(tmp_path, KEY)
    with pytest.raises(ApkError, match="found 1 members"):
        read_index(body, keys)
    with pytest.raises(ApkError, match="unsigned"):
        read_index(tar_gz({"README": b"hi"}, cut=True) + body, keys)
    with pytest.raises(ApkError, match="found 3 members"):
        read_index(build_index([RECORD], KEY) + gzip.compress(b"more", mtime=0), keys)
    with pytest.raises(ApkError, match="unknown signature type 'DSA'"):
        read_index(signature(KEY, body, "DSA") + body, keys)


def test_trusted_keys_must_be_rsa_pem(tmp_path: Path) -> None:
    bad = tmp_path / "junk.rsa.pub"
    bad.write_text("not a key")
    with pytest.raises(ApkError, match=r"junk\.rsa\.pub: not a PEM public key"):
        TrustedKeys.load([bad])


def test_alpine_keys_ship_with_vmimage() -> None:
    names = sorted(TrustedKeys.alpine().keys)
    assert len(names) == 3
    assert all(n.startswith("alpine-devel@") and n.endswith(".rsa.pub") for n in names)


HELLO = FakePackage(
    "hello",
    "1.0-r0",
    {"usr/bin/hello": b"#!/bin/sh\necho hello\n", "etc/hello.conf": b"greeting=hi\n"},
    depends=("musl",),
    links={"usr/bin/hi": "hello"},
)


def test_check_package_and_install(tmp_path: Path) -> None:
    blob, record = build_apk(HELLO, KEY)
    (pkg,) = parse_index(record, "main")
    checked = check_package(blob, pkg, trusted(tmp_path, KEY))
    assert checked.info["pkgname"] == ["hello"]
    assert checked.info["depend"] == ["musl"]
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/other").write_text("kept")
    install(checked, root)
    assert (root / "usr/bin/hello").read_bytes() == HELLO.files["usr/bin/hello"]
    assert os.readlink(root / "usr/bin/hi") == "hello"
    assert (root / "usr/bin/other").read_text() == "kept"
    assert sorted(os.listdir(tmp_path)) == ["keys", "root"]  # no staging dir left


def test_package_checksum_mismatch(tmp_path: Path) -> None:
    _, record = build_apk(HELLO, KEY)
    other, _ = build_apk(FakePackage("hello", "1.0-r0", {"usr/bin/hello": b"evil"}), KEY)
    (pkg,) = parse_index(record, "main")
    with pytest.raises(ApkError, match=r"hello-1.0-r0.apk: checksum mismatch \(index says Q1"):
        check_package(other, pkg, trusted(tmp_path, KEY))


def test_package_data_swapped(tmp_path: Path) -> None:
    blob, record = build_apk(HELLO, KEY)
    sig, control, _data = segments(blob, "x")
    (pkg,) = parse_index(record, "main")
    evil = sig + control + tar_gz({"usr/bin/hello": b"evil"})
    with pytest.raises(ApkError, match="does not match the datahash"):
        check_package(evil, pkg, trusted(tmp_path, KEY))


def test_package_signed_by_an_untrusted_key(tmp_path: Path) -> None:
    blob, record = build_apk(HELLO, OTHER)
    (pkg,) = parse_index(record, "main")
    with pytest.raises(ApkError, match="not trusted"):
        check_package(blob, pkg, trusted(tmp_path, KEY))
    assert check_package(blob, pkg, None).package == pkg


def test_checksum_kinds() -> None:
    assert checksum(b"x").startswith("Q1")
    assert checksum(b"x", "Q2").startswith("Q2")
    with pytest.raises(ApkError, match="unknown apk checksum kind"):
        checksum(b"x", "Q9")


def test_install_refuses_escapes_and_conflicts(tmp_path: Path) -> None:
    keys = trusted(tmp_path, KEY)
    evil = FakePackage("evil", "1-r0", {"../../outside": b"x"})
    blob, record = build_apk(evil, KEY)
    (pkg,) = parse_index(record, "main")
    root = tmp_path / "root"
    with pytest.raises(ApkError, match=r"evil-1-r0\.apk: cannot unpack"):
        install(check_package(blob, pkg, keys), root)
    assert not (tmp_path / "outside").exists()
    assert os.listdir(root) == []
    blob, record = build_apk(HELLO, KEY)
    (pkg,) = parse_index(record, "main")
    install(check_package(blob, pkg, keys), root)
    with pytest.raises(ApkError, match="already provided by another package"):
        install(check_package(blob, pkg, keys), root)
    assert sorted(os.listdir(tmp_path)) == ["keys", "root"]


def test_install_folds_into_merged_usr(tmp_path: Path) -> None:
    pkg_def = FakePackage(
        "busybox",
        "1.37.0-r30",
        {"bin/busybox": b"\x7fELF", "sbin/mke2fs": b"\x7fELF", "usr/bin/env": b"#!"},
        links={"bin/sh": "busybox", "lib/up": "../usr/bin/env"},
    )
    blob, record = build_apk(pkg_def, KEY)
    (pkg,) = parse_index(record, "main")
    root = tmp_path / "root"
    install(check_package(blob, pkg, trusted(tmp_path, KEY)), root, fold=("bin", "sbin", "lib"))
    assert sorted(os.listdir(root)) == ["usr"]
    assert sorted(os.listdir(root / "usr")) == ["bin", "lib", "sbin"]
    assert sorted(os.listdir(root / "usr/bin")) == ["busybox", "env", "sh"]
    assert os.readlink(root / "usr/bin/sh") == "busybox"
    assert os.readlink(root / "usr/lib/up") == "/usr/bin/env"
    assert (root / "usr/sbin/mke2fs").read_bytes() == b"\x7fELF"


def test_apk_v3_format_is_named() -> None:
    with pytest.raises(ApkError, match=r"apk v3 \(ADB\) format"):
        segments(b"ADB.pckg" + b"\0" * 32, "x.apk")
