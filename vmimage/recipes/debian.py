"""The debian recipe: Debian bookworm packages through the machine's apt sources.

This is the recipe that builds and boots on this project's CI machine, where
Debian's mirror is reachable. Packages are named explicitly (no dependency
solver: Debian's dependencies pull in debconf, perl and PAM, which a guest
without a package manager never uses); the builder's ELF check fails the
build if a listed program needs a library no package here provides.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from vmimage import debs, kernel
from vmimage.recipes.base import Input, RecipeOutput

DEBIAN_ARCH = {"x86_64": "amd64"}
KERNEL_META = "linux-image-{arch}"  # the generic flavour: the cloud one lacks 9p

USERLAND = (
    # init, shell and small tools
    "busybox-static",
    "libc6",
    "libgcc-s1",  # glibc loads it for thread cancellation
    # python3 for the engine
    "python3.11-minimal",
    "python3-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libexpat1",
    "zlib1g",
    "libffi8",
    "libssl3",
    "libbz2-1.0",
    "liblzma5",
    "libuuid1",
    "libcrypt1",
    # sshd
    "openssh-server",
    "libwrap0",
    "libaudit1",
    "libcap-ng0",
    "libpam0g",
    "libselinux1",
    "libpcre2-8-0",
    "libgssapi-krb5-2",
    "libkrb5-3",
    "libk5crypto3",
    "libkrb5support0",
    "libcom-err2",
    "libkeyutils1",
    "libsystemd0",
    "libcap2",
    "libgcrypt20",
    "libgpg-error0",
    "liblz4-1",
    "libzstd1",
    "libnsl2",
    "libtirpc3",
    # the engine's firewall
    "nftables",
    "libnftables1",
    "libmnl0",
    "libnftnl11",
    "libxtables12",
    "libjansson4",
    "libgmp10",
    "libedit2",
    "libbsd0",
    "libmd0",
    "libtinfo6",
    # the data disk's filesystem
    "e2fsprogs",
    "libext2fs2",
    "libblkid1",
)


class DebianRecipe:
    """Debian bookworm: generic kernel, busybox-static, python3-minimal, OpenSSH, nftables."""

    name = "debian"

    def build(self, arch: str, cache: Path, work: Path) -> RecipeOutput:
        if arch not in DEBIAN_ARCH:
            raise debs.DebError(f"the debian recipe builds {', '.join(DEBIAN_ARCH)}; not {arch}")
        darch = DEBIAN_ARCH[arch]
        kpkg = _kernel_package(KERNEL_META.format(arch=darch), darch)
        kdeb, *pkgs = debs.resolve([kpkg, *USERLAND], darch)
        rootfs = work / "rootfs"
        rootfs.mkdir(parents=True)
        _merged_usr(rootfs)
        for deb in pkgs:
            debs.unpack(debs.fetch(deb, cache), rootfs, lambda _p: True)
        kroot = work / "kernel"
        debs.unpack(debs.fetch(kdeb, cache), kroot, _kernel_files)
        release = kpkg.removeprefix("linux-image-")
        vmlinuz = (kroot / "boot" / f"vmlinuz-{release}").read_bytes()
        inputs = [Input(d.name, d.version, d.sha256, f"apt:{d.filename}") for d in [kdeb, *pkgs]]
        python = next(d.version for d in pkgs if d.name == "python3.11-minimal")
        return RecipeOutput(
            rootfs=rootfs,
            vmlinux=kernel.vmlinux_from_vmlinuz(vmlinuz),
            kernel_release=release,
            modules_dir=kroot / "usr/lib/modules" / release,
            inputs=sorted(inputs, key=lambda i: i.name),
            python_version=".".join(python.split(".")[:2]),
        )


def _kernel_package(meta: str, darch: str) -> str:
    """The versioned image package the meta package points at (linux-image-6.1.0-N-amd64)."""
    import subprocess

    out = subprocess.run(
        ["apt-cache", "depends", "--no-recommends", "--no-suggests", meta],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        dep = line.strip().removeprefix("Depends: ")
        if dep.startswith("linux-image-") and dep.endswith(f"-{darch}") and dep != meta:
            return dep
    raise debs.DebError(f"{meta} depends on no linux-image package")


def _kernel_files(path: PurePosixPath) -> bool:
    return path.parts[:1] == ("boot",) or path.parts[:3] == ("usr", "lib", "modules")


def _merged_usr(root: Path) -> None:
    for name in debs.MERGED_DIRS:
        (root / "usr" / name).mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(f"usr/{name}")
