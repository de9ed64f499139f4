"""The guest kernel: an uncompressed vmlinux for PVH boot, and the modules the guest loads.

QEMU boots an ELF vmlinux directly through its Xen PVH entry note; under TCG
that skips seconds of in-guest decompression that a bzImage costs. Module
dependencies come from the kernel's own modules.dep; modules built into the
kernel (modules.builtin) need no file.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

XEN_ELFNOTE_PHYS32_ENTRY = 18  # the note QEMU looks for to PVH-boot an ELF kernel


class KernelError(RuntimeError):
    """The kernel or its modules do not fit the guest's needs."""


def vmlinux_from_vmlinuz(data: bytes) -> bytes:
    """The ELF kernel inside a bzImage (xz, gzip or zstd payload; zstd needs the zstd tool)."""
    xz = data.find(b"\xfd7zXZ\x00")
    if xz >= 0:
        return lzma.LZMADecompressor().decompress(data[xz:])
    gz = data.find(b"\x1f\x8b\x08\x00")
    if gz >= 0:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[gz:])
    raise KernelError("no xz or gzip payload found in the kernel image")


def has_pvh_note(elf: bytes) -> bool:
    """True when a 64-bit little-endian ELF carries the Xen PVH entry note."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset = struct.unpack_from("<IIQ", elf, phoff + i * phentsize)
        (p_filesz,) = struct.unpack_from("<Q", elf, phoff + i * phentsize + 0x20)
        if p_type == 4 and _notes_have(elf[p_offset : p_offset + p_filesz], b"Xen"):
            return True
    return False


def _notes_have(notes: bytes, owner: bytes) -> bool:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
        name = notes[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
        if name == owner and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
            return True
        pos += 12 + _align4(namesz) + _align4(descsz)
    return False


def _align4(n: int) -> int:
    return (n + 3) & ~3


@dataclass(frozen=True)
class ModuleIndex:
    """modules.dep and modules.builtin of one kernel release."""

    deps: dict[str, list[str]]  # module name -> its direct dependencies' names
    paths: dict[str, str]  # module name -> path relative to lib/modules/<release>
    builtin: frozenset[str]


def mod_name(path: str) -> str:
    """kernel/fs/9p/9p.ko(.xz) -> 9p; dashes and underscores are the same to the kernel."""
    base = path.rsplit("/", 1)[-1].split(".ko", 1)[0]
    return base.replace("-", "_")


def parse_index(dep_text: str, builtin_text: str) -> ModuleIndex:
    deps: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for line in dep_text.splitlines():
        head, sep, rest = line.partition(":")
        if not sep:
            continue
        name = mod_name(head)
        paths[name] = head.strip()
        deps[name] = [mod_name(d) for d in rest.split()]
    builtin = frozenset(mod_name(p) for p in builtin_text.split())
    return ModuleIndex(deps, paths, builtin)


def load_index(moddir: Path) -> ModuleIndex:
    builtin = moddir / "modules.builtin"
    return parse_index(
        (moddir / "modules.dep").read_text(), builtin.read_text() if builtin.exists() else ""
    )


def load_order(index: ModuleIndex, wanted: Iterable[str]) -> list[str]:
    """`wanted` and their dependencies, each after all it depends on; built-ins dropped."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen or name in index.builtin:
            return
        if name not in index.deps:
            needed_by = " <- ".join((name, *reversed(chain)))
            raise KernelError(f"module {name} is neither in modules.dep nor built in ({needed_by})")
        seen.add(name)
        for dep in index.deps[name]:
            visit(dep, (*chain, name))
        order.append(name)

    for name in wanted:
        visit(name.replace("-", "_"), ())
    return order


def ensure_modules_dep(moddir: Path) -> None:
    """Run depmod on an unpacked kernel whose package ships no modules.dep (Debian's)."""
    if (moddir / "modules.dep").exists():
        return
    import subprocess

    base = moddir.parent.parent.parent  # <base>/lib/modules/<release>
    proc = subprocess.run(
        ["depmod", "-b", str(base), moddir.name], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise KernelError(f"depmod failed: {proc.stderr.strip()} (install kmod)")
