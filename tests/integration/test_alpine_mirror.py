"""The alpine recipe's mirror client against a real local HTTP mirror.

Alpine's mirrors cannot be reached from here or from CI, so each test serves a
small fixture tree from 127.0.0.1 (a port of its own) laid out like a real
mirror, signed with a test RSA key passed in as the only trusted key. It proves
download + verify + resolve + install, and that every kind of bad input fails
with a clear message and leaves nothing half-written in the cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apkfixture import (
    FakePackage,
    SigningKey,
    StaticMirror,
    build_apk,
    build_index,
    tar_gz,
    write_repo,
)
from vmimage.apk import ApkError, TrustedKeys, install, segments
from vmimage.apkindex import resolve
from vmimage.apkmirror import Mirror

KEY = SigningKey("dockyard-test-1.rsa.pub")
STRANGER = SigningKey("stranger-1.rsa.pub")
BRANCH, ARCH = "v3.23", "x86_64"
DEAD = "http://127.0.0.1:9/alpine"  # the discard port: nothing answers there

MUSL = FakePackage(
    "musl",
    "1.2.5-r23",
    {"lib/ld-musl-x86_64.so.1": b"\x7fELF fake loader"},
    provides=("so:libc.musl-x86_64.so.1=1",),
    links={"lib/libc.musl-x86_64.so.1": "ld-musl-x86_64.so.1"},
)
HELLO = FakePackage(
    "hello",
    "2.12-r1",
    {"usr/bin/hello": b"#!/bin/sh\necho hello\n"},
    depends=("so:libc.musl-x86_64.so.1", "!goodbye"),
)


Served = tuple[StaticMirror, Path]  # the running mirror and its repository directory


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    www = tmp_path / "www"
    write_repo(www / "alpine" / BRANCH / "main" / ARCH, [MUSL, HELLO], KEY)
    with StaticMirror(www) as server:
        yield server, www / "alpine" / BRANCH / "main" / ARCH


def mirror(server: StaticMirror, tmp_path: Path, *keys: SigningKey) -> Mirror:
    paths = [k.write_public(tmp_path / "trusted") for k in keys or (KEY,)]
    return Mirror(server.url, BRANCH, ARCH, TrustedKeys.load(paths), tmp_path / "cache")


def cache_files(tmp_path: Path) -> list[str]:
    cache = tmp_path / "cache"
    return sorted(
        str(Path(d, f).relative_to(cache)) for d, _, files in os.walk(cache) for f in files
    )


def test_download_verify_resolve_install(served: Served, tmp_path: Path) -> None:
    server, _ = served
    m = mirror(server, tmp_path)
    wanted = resolve(m.index(), ["hello"])
    assert [(p.name, p.version) for p in wanted] == [("musl", "1.2.5-r23"), ("hello", "2.12-r1")]
    root = tmp_path / "root"
    for checked in m.packages(wanted):
        install(checked, root)
    assert (root / "usr/bin/hello").read_bytes() == HELLO.files["usr/bin/hello"]
    assert os.readlink(root / "lib/libc.musl-x86_64.so.1") == "ld-musl-x86_64.so.1"
    assert cache_files(tmp_path) == [
        f"{BRANCH}/main/{ARCH}/APKINDEX.tar.gz",
        f"{BRANCH}/main/{ARCH}/hello-2.12-r1.apk",
        f"{BRANCH}/main/{ARCH}/musl-1.2.5-r23.apk",
    ]


def test_cached_packages_are_rechecked(served: Served, tmp_path: Path) -> None:
    server, repo = served
    m = mirror(server, tmp_path)
    pkgs = resolve(m.index(), ["hello"])
    m.packages(pkgs)
    cached = tmp_path / "cache" / BRANCH / "main" / ARCH / HELLO.filename
    cached.write_bytes(b"rotten")
    (repo / MUSL.filename).unlink()  # served no more: the cached copy must do
    checked = m.packages(pkgs)
    assert [c.package.name for c in checked] == ["musl", "hello"]
    assert cached.read_bytes() == (repo / HELLO.filename).read_bytes()


def assert_fails_clean(m: Mirror, tmp_path: Path, match: str) -> None:
    """The fetch fails with `match`, and no temp or partial file is left in the cache."""
    with pytest.raises(ApkError, match=match):
        m.packages(resolve(m.index(), ["hello"]))
    assert [f for f in cache_files(tmp_path) if Path(f).name.startswith(".")] == []


def test_tampered_index(served: Served, tmp_path: Path) -> None:
    server, repo = served
    signature = segments((repo / "APKINDEX.tar.gz").read_bytes(), "x")[0]
    _, record = build_apk(HELLO, KEY)
    evil = build_index([record.replace("2.12-r1", "9.99-r0")], KEY)
    (repo / "APKINDEX.tar.gz").write_bytes(signature + segments(evil, "x")[1])
    assert_fails_clean(mirror(server, tmp_path), tmp_path, "does not match the content")
    assert cache_files(tmp_path) == []


def test_bad_signature(served: Served, tmp_path: Path) -> None:
    server, repo = served
    body = segments((repo / "APKINDEX.tar.gz").read_bytes(), "x")[1]
    forged = tar_gz({f".SIGN.RSA256.{KEY.name}": os.urandom(256)}, cut=True)
    (repo / "APKINDEX.tar.gz").write_bytes(forged + body)
    assert_fails_clean(mirror(server, tmp_path), tmp_path, "signature check failed")
    assert cache_files(tmp_path) == []


def test_untrusted_key(served: Served, tmp_path: Path) -> None:
    server, repo = served
    write_repo(repo, [MUSL, HELLO], KEY, index_key=STRANGER)
    m = mirror(server, tmp_path)
    assert_fails_clean(m, tmp_path, r"'stranger-1\.rsa\.pub', which is not trusted")
    assert cache_files(tmp_path) == []


def test_wrong_package_checksum(served: Served, tmp_path: Path) -> None:
    server, repo = served
    impostor, _ = build_apk(FakePackage("hello", "2.12-r1", {"usr/bin/hello": b"rm -rf"}), KEY)
    (repo / HELLO.filename).write_bytes(impostor)
    m = mirror(server, tmp_path)
    assert_fails_clean(m, tmp_path, r"hello-2\.12-r1\.apk: checksum mismatch")
    # The verified index and the good musl stay; the impostor was never stored.
    assert cache_files(tmp_path) == [
        f"{BRANCH}/main/{ARCH}/APKINDEX.tar.gz",
        f"{BRANCH}/main/{ARCH}/musl-1.2.5-r23.apk",
    ]


def test_missing_file_and_unreachable_mirror(served: Served, tmp_path: Path) -> None:
    server, repo = served
    (repo / HELLO.filename).unlink()
    m = mirror(server, tmp_path)
    assert_fails_clean(m, tmp_path, "HTTP 404 .*check the mirror URL")
    dead = Mirror(DEAD, BRANCH, ARCH, m.keys, tmp_path / "empty-cache")
    with pytest.raises(ApkError, match="is the mirror reachable"):
        dead.index()
    assert not (tmp_path / "empty-cache").exists()


def test_offline_rebuild_from_the_cache(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = served
    m = mirror(server, tmp_path)
    m.packages(resolve(m.index(), ["hello"]))
    offline = Mirror(DEAD, BRANCH, ARCH, m.keys, tmp_path / "cache")
    checked = offline.packages(resolve(offline.index(), ["hello"]))
    assert [c.package.name for c in checked] == ["musl", "hello"]
    assert "using the cached index" in capsys.readouterr().err
    # A cached index is verified again: one that no longer verifies is refused.
    cached = tmp_path / "cache" / BRANCH / "main" / ARCH / "APKINDEX.tar.gz"
    stranger = Mirror(DEAD, BRANCH, ARCH, TrustedKeys.load([]), tmp_path / "cache")
    with pytest.raises(ApkError, match="which is not trusted"):
        stranger.index()
    assert cached.is_file()
