"""The pure parts of the image build: cpio, module order, kernel notes, packages, manifest."""

from __future__ import annotations

import io
import json
import lzma
import stat
import struct
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from vmimage import cpio, debs, elfdeps, kernel, manifest
from vmimage.recipes.base import Input


def read_newc(data: bytes) -> list[tuple[str, int, int, bytes]]:
    """(name, mode, mtime, data) of every member, trailer included."""
    out, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_end = pos + 110 + namesize
        name = data[pos + 110 : name_end - 1].decode()
        start = name_end + (-name_end % 4)
        body = data[start : start + filesize]
        out.append((name, fields[1], fields[5], body))
        pos = start + filesize + (-(start + filesize) % 4)
        if name == cpio.TRAILER:
            break
    return out


def test_cpio_is_sorted_fixed_and_readable(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_bytes(b"hello")
    (tmp_path / "a").symlink_to("b/f")
    entries = list(cpio.tree_entries(tmp_path))
    assert [e.path for e in entries] == ["a", "b", "b/f"]
    buf = io.BytesIO()
    cpio.write(buf, entries, 1234)
    members = read_newc(buf.getvalue())
    assert [m[0] for m in members] == ["a", "b", "b/f", cpio.TRAILER]
    assert stat.S_ISLNK(members[0][1]) and members[0][3] == b"b/f"
    assert members[2][3] == b"hello" and {m[2] for m in members[:3]} == {1234}
    again = io.BytesIO()
    cpio.write(again, cpio.tree_entries(tmp_path), 1234)
    assert again.getvalue() == buf.getvalue()


def test_cpio_refuses_special_files(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="only files, directories and symlinks"):
        list(cpio.tree_entries(tmp_path))


DEP = """kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko kernel/fs/mbcache.ko
kernel/fs/jbd2/jbd2.ko:
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
kernel/net/9p/9pnet-virtio.ko: kernel/drivers/virtio/virtio.ko
"""


def test_module_order_puts_dependencies_first_and_skips_builtins() -> None:
    index = kernel.parse_index(DEP, "kernel/drivers/virtio/virtio.ko\n")
    order = kernel.load_order(index, ["ext4", "virtio_blk", "9pnet-virtio", "jbd2"])
    assert order == ["jbd2", "crc16", "mbcache", "ext4", "virtio_blk", "9pnet_virtio"]
    assert index.paths["9pnet_virtio"] == "kernel/net/9p/9pnet-virtio.ko"


def test_module_order_names_a_missing_module() -> None:
    index = kernel.parse_index("kernel/a.ko: kernel/b.ko\n", "")
    with pytest.raises(kernel.KernelError, match=r"module b .* \(b <- a\)"):
        kernel.load_order(index, ["a"])


def elf_with_note(owner: bytes, ntype: int) -> bytes:
    name = owner + b"\0"
    note = struct.pack("<III", len(name), 4, ntype) + name.ljust(4 * ((len(name) + 3) // 4), b"\0")
    note += b"\0" * 4
    ehdr = bytearray(64)
    ehdr[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", ehdr, 0x20, 64)
    struct.pack_into("<HH", ehdr, 0x36, 56, 1)
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 64 + 56, 0, 0, len(note), len(note), 4)
    return bytes(ehdr) + phdr + note


def test_pvh_note_is_found_only_when_present() -> None:
    assert kernel.has_pvh_note(elf_with_note(b"Xen", kernel.XEN_ELFNOTE_PHYS32_ENTRY))
    assert not kernel.has_pvh_note(elf_with_note(b"Xen", 1))
    assert not kernel.has_pvh_note(elf_with_note(b"GNU", kernel.XEN_ELFNOTE_PHYS32_ENTRY))
    assert not kernel.has_pvh_note(b"MZ not an elf")


def test_vmlinux_comes_out_of_an_xz_payload() -> None:
    elf = elf_with_note(b"Xen", 18)
    image = b"\x00" * 512 + b"HdrS" + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"\x00" * 16
    assert kernel.vmlinux_from_vmlinuz(image) == elf
    with pytest.raises(kernel.KernelError):
        kernel.vmlinux_from_vmlinuz(b"\x00" * 64)


SHOW = """Package: busybox-static
Version: 1:1.35.0-4+b1
Architecture: amd64
Filename: pool/main/b/busybox/busybox-static_1.35.0-4+b1_amd64.deb
SHA256: abc
Description: x
 continued: not a field

Package: libc6
Version: 2.36-9
Architecture: amd64
Filename: pool/main/g/glibc/libc6_2.36-9_amd64.deb
SHA256: def
"""


def test_apt_show_parses_every_stanza() -> None:
    first, second = debs.parse_show(SHOW)
    assert (first.name, first.version, first.sha256) == ("busybox-static", "1:1.35.0-4+b1", "abc")
    assert first.cache_name == "busybox-static_1%3a1.35.0-4+b1_amd64.deb"
    assert second.filename.endswith("libc6_2.36-9_amd64.deb")
    with pytest.raises(debs.DebError, match="SHA256"):
        debs.parse_show("Package: x\nVersion: 1\nArchitecture: all\nFilename: f\n")


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("./bin/sh", "usr/bin/sh"),
        ("./lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libc.so.6"),
        ("./usr/bin/python3", "usr/bin/python3"),
        ("./etc/ssh/moduli", "etc/ssh/moduli"),
        ("./libexec", "libexec"),
    ],
)
def test_package_paths_fold_into_merged_usr(member: str, expected: str) -> None:
    assert debs.guest_path(member) == PurePosixPath(expected)


def test_package_root_and_hostile_paths() -> None:
    assert debs.guest_path("./") is None
    with pytest.raises(debs.DebError):
        debs.guest_path("./usr/../../etc/passwd")


def test_relative_link_stays_right_after_folding() -> None:
    moved = tarfile.TarInfo("./lib/x86_64-linux-gnu/libfoo.so")
    moved.linkname = "../../usr/lib/libbar.so"
    assert debs.link_target(moved, PurePosixPath("usr/lib/x86_64-linux-gnu/libfoo.so")) == (
        "/usr/lib/libbar.so"
    )
    kept = tarfile.TarInfo("./usr/lib/libfoo.so")
    kept.linkname = "libfoo.so.1"
    assert debs.link_target(kept, PurePosixPath("usr/lib/libfoo.so")) == "libfoo.so.1"


def test_elf_needed_of_a_real_program() -> None:
    data = Path("/usr/bin/env").read_bytes()
    assert "libc.so.6" in elfdeps.needed(data)
    assert elfdeps.needed(b"#!/bin/sh\n") == []


def test_missing_libraries_are_named(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/env").write_bytes(Path("/usr/bin/env").read_bytes())
    assert elfdeps.missing_libraries(tmp_path) == {"usr/bin/env": ["libc.so.6"]}
    (tmp_path / "usr/lib").mkdir()
    (tmp_path / "usr/lib/libc.so.6").write_bytes(b"")
    assert elfdeps.missing_libraries(tmp_path) == {}


def test_manifest_is_stable_and_complete() -> None:
    boot = manifest.Boot("vmlinux", "initramfs.img", "rootfs.erofs", "console=ttyS0", True, ["a"])
    args = (
        "debian",
        "x86_64",
        1700000000,
        [Input("b", "2", "ff", "apt:b"), Input("a", "1", "ee", "apt:a")],
        {"vmlinux": "11", "initramfs.img": "22"},
        boot,
        123,
    )
    text = manifest.render(*args)
    assert text == manifest.render(*args)
    doc = json.loads(text)
    assert doc["format"] == 1 and doc["recipe"] == "debian" and doc["arch"] == "x86_64"
    assert [i["name"] for i in doc["inputs"]] == ["a", "b"]
    assert set(doc["inputs"][0]) == {"name", "version", "sha256", "source"}
    assert doc["boot"]["rootfs"] == "rootfs.erofs" and doc["boot"]["pvh"] is True
    assert doc["size"] == {"compressed_bytes": 123}
