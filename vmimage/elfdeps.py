"""Which shared libraries a guest's ELF files need that the guest lacks.

A package list written by hand misses a library sooner or later, and the guest
would only say so at boot, under a slow emulator. Reading DT_NEEDED from every
ELF file at build time turns that into a build error naming the file.
"""

from __future__ import annotations

import struct
from pathlib import Path

LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/lib", "usr/lib64")
_DT_NEEDED, _DT_STRTAB = 1, 5


def needed(data: bytes) -> list[str]:
    """DT_NEEDED names of a 64-bit little-endian ELF ([] for anything else or static)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        p_type, _f, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    entries = [struct.unpack_from("<qQ", data, dynamic[0] + i) for i in range(0, dynamic[1], 16)]
    strtab = next((v for t, v in entries if t == _DT_STRTAB), None)
    if strtab is None:
        return []
    base = _file_offset(loads, strtab)
    return [_cstr(data, base + v) for t, v in entries if t == _DT_NEEDED]


def _file_offset(loads: list[tuple[int, int, int]], vaddr: int) -> int:
    for start, offset, size in loads:
        if start <= vaddr < start + size:
            return vaddr - start + offset
    return vaddr


def _cstr(data: bytes, pos: int) -> str:
    return data[pos : data.index(b"\0", pos)].decode()


def missing_libraries(root: Path) -> dict[str, list[str]]:
    """{guest path of an ELF file: [needed libraries found in no library dir]}."""
    have = {p.name for d in LIB_DIRS if (root / d).is_dir() for p in (root / d).iterdir()}
    problems: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or not _looks_elf(path):
            continue
        lacks = [n for n in needed(path.read_bytes()) if n not in have]
        if lacks:
            problems[str(path.relative_to(root))] = lacks
    return problems


def _looks_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"
