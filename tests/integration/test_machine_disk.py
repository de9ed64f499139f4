"""Data disk compaction with the real qemu-img: it shrinks a disk whose guest freed space,
keeps every byte the guest still uses, and leaves the original untouched on failure."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from machine import disk, filenames

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None or shutil.which("qemu-io") is None,
    reason="needs qemu-img and qemu-io (qemu-utils)",
)


def qemu_io(path: Path, *commands: str) -> None:
    argv = ["qemu-io", "-f", "qcow2"]
    for c in commands:
        argv += ["-c", c]
    subprocess.run([*argv, str(path)], check=True, capture_output=True)


def guest_view(path: Path) -> str:
    """A hash of the disk as the guest reads it (every virtual byte)."""
    raw = path.with_suffix(".raw")
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(path), str(raw)], check=True)
    try:
        return hashlib.sha256(raw.read_bytes()).hexdigest()
    finally:
        raw.unlink()


def make_disk(tmp_path: Path) -> Path:
    path = tmp_path / filenames.DATA_DISK
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    qemu_io(path, "write -P 0xab 0 24M", "write -P 0xcd 40M 1M")
    return path


def test_compact_gives_back_what_the_guest_freed_and_keeps_the_rest(tmp_path: Path) -> None:
    path = make_disk(tmp_path)
    # The guest deleted files and fstrim discarded them: zeroed clusters, still allocated.
    qemu_io(path, "write -z 0 24M")
    want = guest_view(path)
    before, after = disk.compact(path)
    assert after < before
    assert guest_view(path) == want
    assert disk.virtual_size(path) == 64 * 2**20
    assert not any(p.name.endswith(".compact") for p in tmp_path.iterdir())


def test_a_failed_compaction_leaves_the_disk_as_it_was(tmp_path: Path) -> None:
    path = make_disk(tmp_path)
    want = path.read_bytes()
    blocker = tmp_path / f".{path.name}.compact"
    blocker.mkdir()  # qemu-img cannot create its output there
    with pytest.raises(subprocess.CalledProcessError):
        disk.compact(path)
    assert path.read_bytes() == want


def test_usage_reports_reclaimable_from_the_last_measured_guest_use(tmp_path: Path) -> None:
    path = make_disk(tmp_path)
    usage = disk.usage(path)
    assert usage is not None and usage.guest_used_bytes == -1 and usage.reclaimable_bytes == 0
    disk._record(tmp_path, {"guest_used_bytes": 1 << 20, "measured_at": 1.0})
    usage = disk.usage(path)
    assert usage is not None
    assert usage.reclaimable_bytes == usage.file_bytes - (1 << 20) > 0
    assert disk.usage(tmp_path / "missing.qcow2") is None


def test_the_guests_use_is_read_from_df() -> None:
    out = (
        "Filesystem           1024-blocks    Used Available Capacity Mounted on\n"
        "/dev/vdb                4062912  123456   3713936   3% /var/lib/dockyard\n"
    )
    assert disk.df_used_bytes(out) == 123456 * 1024
    assert disk.df_used_bytes("df: /var/lib/dockyard: No such file or directory") is None
