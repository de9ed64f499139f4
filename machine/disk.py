"""Data disk hygiene: trim in the guest before power-off, compact the qcow2 after it.

Why: a qcow2 grows as the guest writes (pulls, builds, logs) and never shrinks by
itself; deleted images leave the host file as large as the guest's peak. `fstrim` in the
guest turns freed blocks into discards, which QEMU (`discard=unmap`) punches out of the
file where it can; `qemu-img convert` then rewrites only the allocated clusters, which
also undoes fragmentation. The convert goes to a temp file next to the disk and replaces
it with an atomic rename only once it succeeded and has the same virtual size: a failure
(disk full, QEMU tools missing, a kill) leaves the original disk as it was.

What `dockyard machine status` shows: the file's size on the host, the bytes the guest's
filesystem used when last measured (at the last stop), and the difference as reclaimable.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from machine import atomic, filenames, ssh

GUEST_MOUNT = "/var/lib/dockyard"

# One session for both (each SSH exec costs a guest process start); busybox's df -P prints
# one line per filesystem whatever its name's length.
TRIM_CMD = f"df -Pk {GUEST_MOUNT} && fstrim {GUEST_MOUNT}"
TRIM_BUDGET_S = 30.0  # a stop never waits longer on a guest too busy to answer


@dataclass(frozen=True)
class DiskUsage:
    file_bytes: int  # allocated on the host
    virtual_bytes: int  # the guest's view of the disk's size
    guest_used_bytes: int  # -1 when never measured
    measured_at: float

    @property
    def reclaimable_bytes(self) -> int:
        if self.guest_used_bytes < 0:
            return 0
        return max(0, self.file_bytes - self.guest_used_bytes)


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def virtual_size(path: Path) -> int:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-U", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(json.loads(out.stdout)["virtual-size"])


def trim(client: paramiko.SSHClient, directory: Path) -> None:
    """Record what the guest uses, then discard its free blocks (best effort, bounded)."""
    _, out = ssh.run(client, TRIM_CMD, timeout=TRIM_BUDGET_S)
    used = df_used_bytes(out)
    if used is not None:
        _record(directory, {"guest_used_bytes": used, "measured_at": time.time()})


def df_used_bytes(text: str) -> int | None:
    """The Used column of `df -Pk` (KiB) in bytes; None when absent."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[-1] == GUEST_MOUNT and fields[2].isdigit():
            return int(fields[2]) * 1024
    return None


def compact(disk: Path) -> tuple[int, int]:
    """Rewrite `disk` (QEMU not running) keeping only allocated clusters; (before, after)
    allocated bytes. The original stays untouched unless the copy is complete."""
    before = allocated(disk)
    tmp = disk.with_name(f".{disk.name}.compact")
    try:
        subprocess.run(
            ["qemu-img", "convert", "-O", "qcow2", str(disk), str(tmp)],
            capture_output=True,
            check=True,
            timeout=1800,
        )
        if virtual_size(tmp) != virtual_size(disk):
            raise OSError(f"the compacted copy of {disk} has another virtual size")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if allocated(tmp) >= before:
            return before, before  # nothing to gain; keep the original
        os.chmod(tmp, os.stat(disk).st_mode & 0o777)
        os.replace(tmp, disk)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    after = allocated(disk)
    _record(disk.parent, {"compacted_at": time.time(), "compacted_from": before})
    return before, after


def usage(disk: Path) -> DiskUsage | None:
    """The disk's sizes now and the guest's use as last measured (None: no disk)."""
    try:
        file_bytes = allocated(disk)
    except OSError:
        return None
    try:
        virtual = virtual_size(disk)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        virtual = 0
    doc = _read(disk.parent)
    return DiskUsage(
        file_bytes,
        virtual,
        int(doc.get("guest_used_bytes", -1)),
        float(doc.get("measured_at", 0.0)),
    )


def _read(directory: Path) -> dict[str, float]:
    try:
        doc = json.loads((directory / filenames.DISK_USAGE).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _record(directory: Path, fields: dict[str, float]) -> None:
    doc = {**_read(directory), **fields}
    atomic.write_text(directory / filenames.DISK_USAGE, json.dumps(doc) + "\n", 0o600)
