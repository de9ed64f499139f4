"""The Debian package: the one-dir build staged as /opt/dockyard, packed by dpkg-deb.

Why /opt: the bundle is a self-contained tree (its own Python, Qt and libraries) that
must stay together, which is what /opt is for; /usr/bin gets symlinks to its two
executables (the bootloader finds `_internal/` through /proc/self/exe, so a symlink works).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tomllib
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ASSETS = REPO / "packaging" / "assets"
BRAND = REPO / "app" / "gui" / "brand"  # the SVG rendered by packaging/assets/render.py
PREFIX = "opt/dockyard"
EXECUTABLES = ("dockyard", "dockyard-desktop")
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# What the bundle runs but does not carry: QEMU for VM machines, a firewall backend for
# the native engine's bridges, and the X libraries Qt's xcb platform loads at run time.
DEPENDS = (
    "qemu-system-x86",
    "qemu-utils",
    "nftables | iptables",
    "e2fsprogs",
    "ca-certificates",
    "libegl1",
    "libfontconfig1",
    "libxkbcommon-x11-0",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-keysyms1",
    "libxcb-shape0",
)
RECOMMENDS = ("libvirt-daemon-system", "docker.io | docker-ce-cli")


def version() -> str:
    doc = tomllib.loads((REPO / "pyproject.toml").read_text())
    return str(doc["project"]["version"])


def control(ver: str, installed_kib: int) -> str:
    return (
        "Package: dockyard\n"
        f"Version: {ver}\n"
        "Architecture: amd64\n"
        "Maintainer: Dockyard developers <dockyard@localhost>\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(DEPENDS)}\n"
        f"Recommends: {', '.join(RECOMMENDS)}\n"
        "Section: admin\n"
        "Priority: optional\n"
        "Homepage: https://dockyard.invalid\n"
        "Description: desktop container manager with its own Docker-compatible engine\n"
        " Dockyard runs containers in a small Linux VM (QEMU) or natively on Linux, behind\n"
        " the Docker Engine API, so the docker CLI, its SDKs and compose work with it.\n"
        " Includes the desktop app, the `dockyard` CLI and the prebuilt guest image.\n"
    )


def png(size: int) -> bytes:
    """A placeholder icon (a blue rounded square with a white band), for a size the
    brand renderings lack; drawn here so no binary is committed for it."""

    def pixel(x: int, y: int) -> bytes:
        r = size * 0.18
        cx = min(max(x, r), size - 1 - r)
        cy = min(max(y, r), size - 1 - r)
        if (x - cx) ** 2 + (y - cy) ** 2 > r * r:
            return b"\0\0\0\0"
        if size * 0.45 <= y <= size * 0.62 and size * 0.2 <= x <= size * 0.8:
            return b"\xff\xff\xff\xff"
        return b"\x1d\x63\xed\xff"

    raw = b"".join(b"\0" + b"".join(pixel(x, y) for x in range(size)) for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def install_icons(root: Path) -> None:
    """The brand icon (packaging/assets/dockyard.svg and its renderings), with a drawn
    placeholder for any size not rendered."""
    hicolor = root / "usr/share/icons/hicolor"
    svg = ASSETS / "dockyard.svg"
    if svg.is_file():
        (hicolor / "scalable/apps").mkdir(parents=True)
        shutil.copy(svg, hicolor / "scalable/apps/dockyard.svg")
    for n in ICON_SIZES:
        dest = hicolor / f"{n}x{n}/apps/dockyard.png"
        dest.parent.mkdir(parents=True)
        rendered = BRAND / f"dockyard-{n}.png"
        if rendered.is_file():
            shutil.copy(rendered, dest)
        else:
            dest.write_bytes(png(n))


def stage(tree: Path, root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    (root / "usr/bin").mkdir(parents=True)
    shutil.copytree(tree, root / PREFIX, symlinks=True, ignore=shutil.ignore_patterns(".inputs"))
    for name in EXECUTABLES:
        (root / "usr/bin" / name).symlink_to(f"/{PREFIX}/{name}")
    apps = root / "usr/share/applications"
    apps.mkdir(parents=True)
    shutil.copy(HERE / "dockyard.desktop", apps / "dockyard.desktop")
    install_icons(root)
    size_kib = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024
    meta = root / "DEBIAN"
    meta.mkdir()
    (meta / "control").write_text(control(version(), size_kib))
    for script in ("postinst", "prerm"):
        shutil.copy(HERE / script, meta / script)
        os.chmod(meta / script, 0o755)


def build(tree: Path, staging: Path, out_dir: Path) -> Path:
    """Stage `tree` and pack it (zstd: on two cores, xz takes minutes for the guest and
    Qt; dpkg reads zstd since Debian 12 and Ubuntu 21.10)."""
    stage(tree, staging)
    out = out_dir / f"dockyard_{version()}_amd64.deb"
    cmd = ["dpkg-deb", "--root-owner-group", "-Zzstd", "-z3", "--build", str(staging), str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out
