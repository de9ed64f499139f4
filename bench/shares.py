#!/usr/bin/env python3
"""Shared folders: host-native disk vs virtiofs vs 9p vs a sync share's guest-local folder,
in one run, on one booted machine (issue 6, acceptance 6).

The same stdlib workload (bench/shares_workload.py) runs natively in a host folder and,
over SSH, in the guest on each share: sequential write and read of 256 MiB (fsync after
the write; the guest's page cache dropped before each read, so reads cross the transport),
untar of a 10,000-file tree and a stat of those 10,000 files (caches dropped first). Each
figure is the median of --runs. The same 256 MiB are also moved the way the issue's probe
did, `dd bs=1M` from /dev/zero (no fsync) and back to /dev/null (guest cache dropped). The
host's page cache is never dropped, natively or behind a share (it is shared with other
work), so native reads and the host side of share reads come from memory. The table
shows seconds and the time ratio to native (1.0 = native, 2.0 = twice as slow), and MB/s
of the sequential figures; the targets of the issue are read as: virtiofs read time <= 2x
native, sync <= 1.11x, stat <= 3x.

Knobs: 9p is measured once per mount variant (remounted in the guest between runs:
msize and cache mode); virtiofs once per virtiofsd option set (a boot each). The sync
share ignores the workload's folder, so the figure is the guest-local disk alone, not the
sync copying 256 MiB to the host under the same emulated CPU. The share keeper is stopped
after boot: its event replay would turn each file the workload makes into a guest event.
The untar uses the tar program on both sides (python's tarfile under TCG measures the
emulated interpreter, not the share).

Usage: .venv/bin/python bench/shares.py [--runs 3] [--files 10000] [--image DIR]
Writes bench/results/shares.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import sigterm_as_interrupt, table, write_result

from machine import qemu_backend, sharehost, ssh
from machine.backend import MachineSpec, ShareSpec
from machine.qemu_backend import DEFAULT_IMAGE, QemuBackend

WORKLOAD = Path(__file__).with_name("shares_workload.py")
METRICS = ("write_256m", "read_256m", "dd_write_256m", "dd_read_256m", "untar_tree", "stat_tree")
SEQUENTIAL = METRICS[:4]  # 256 MiB each: also shown as MB/s
MB_MOVED = 256 * 2**20 / 1e6
NINEP_VARIANTS = {  # name: mount options (the first is the guest init's own)
    "9p msize=512k cache=mmap": "trans=virtio,version=9p2000.L,msize=524288,cache=mmap",
    "9p msize=128k cache=mmap": "trans=virtio,version=9p2000.L,msize=131072,cache=mmap",
    "9p msize=512k cache=loose": "trans=virtio,version=9p2000.L,msize=524288,cache=loose",
}
VIRTIOFSD_VARIANTS = {  # name: extra virtiofsd options (one boot each; the first is ours)
    "virtiofs cache=auto": (),
    "virtiofs cache=none": ("-o", "cache=none"),
    "virtiofs cache=always writeback": ("-o", "cache=always", "-o", "writeback"),
}
GUEST_TAR = "/tmp/bench-tree.tar"
GUEST_WORKLOAD = "/tmp/bench-workload.py"


def make_tree_tar(path: Path, files: int) -> None:
    """`files` files of 512 bytes, 100 to a folder."""
    per_dir = 100
    dirs = max(1, files // per_dir)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        for d in range(dirs):
            sub = root / f"d{d:03}"
            sub.mkdir(parents=True)
            for f in range(per_dir):
                (sub / f"f{f:03}.txt").write_bytes(os.urandom(256).hex().encode())
        with tarfile.open(path, "w") as tar:
            tar.add(root, arcname="tree")


def median_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    return {m: statistics.median(r[m] for r in runs) for m in METRICS}


def native(directory: Path, tarball: Path, runs: int) -> dict[str, float]:
    out = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, str(WORKLOAD), str(directory), str(tarball)],
            check=True,
            capture_output=True,
            text=True,
        )
        out.append(json.loads(proc.stdout))
    return median_runs(out)


def guest(client: Any, directory: str, runs: int) -> dict[str, float]:
    out = []
    for _ in range(runs):
        cmd = f"python3 {GUEST_WORKLOAD} {shlex.quote(directory)} {GUEST_TAR} --drop-caches"
        code, text = ssh.run(client, cmd, timeout=1800)
        if code != 0:
            raise RuntimeError(f"workload in {directory} failed: {text}")
        out.append(json.loads(text.strip().splitlines()[-1]))
    return median_runs(out)


def remount_9p(client: Any, tag: str, path: str, options: str) -> None:
    q = shlex.quote(path)
    code, text = ssh.run(client, f"umount {q} && mount -t 9p -o {options} {tag} {q}")
    if code != 0:
        raise RuntimeError(f"remount of 9p with {options} failed: {text}")


@contextlib.contextmanager
def booted(spec: MachineSpec) -> Iterator[Any]:
    """The machine started, and an SSH session with the workload and tarball uploaded."""
    backend = QemuBackend(spec)
    try:
        backend.start()
        port = int((spec.directory / "ssh.port").read_text())
        client = ssh.connect(spec.directory, port, time.monotonic() + 60)
        try:
            yield client
        finally:
            client.close()
    finally:
        backend.stop(timeout=60)


def upload(client: Any, tarball: Path) -> None:
    sftp = client.open_sftp()
    sftp.put(str(tarball), GUEST_TAR)
    sftp.put(str(WORKLOAD), GUEST_WORKLOAD)
    sftp.close()


def fs_type(client: Any, path: str) -> str:
    """The type of the guest mount holding `path`, from /proc/mounts (busybox's `stat -f`
    names neither virtiofs nor overlay)."""
    mounts = str(ssh.run(client, "cat /proc/mounts")[1])
    best, kind = "", "?"
    for fields in (line.split() for line in mounts.splitlines()):
        inside = len(fields) > 2 and (path + "/").startswith(fields[1].rstrip("/") + "/")
        if inside and len(fields[1]) >= len(best):
            best, kind = fields[1], fields[2]
    return kind


def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="dy-bench-shares-", dir="/var/tmp"))
    results: dict[str, dict[str, float]] = {}
    fs_types: dict[str, str] = {}
    try:
        dirs = {m: base / m for m in ("native", "virtiofs", "9p", "sync")}
        for d in dirs.values():
            d.mkdir()
        tarball = base / "tree.tar"
        make_tree_tar(tarball, args.files)
        results["native"] = native(dirs["native"], tarball, args.runs)
        print("native:", results["native"], flush=True)
        spec = MachineSpec(
            name="bench-shares",
            directory=base / "m",
            cpus=2,
            memory_mb=2048,
            disk_gb=4,
            image_dir=Path(args.image),
            shares=[
                ShareSpec(dirs["virtiofs"], str(dirs["virtiofs"]), "virtiofs"),
                ShareSpec(dirs["9p"], str(dirs["9p"]), "9p"),
                ShareSpec(dirs["sync"], "/srv/bench-sync", "sync", ignore=("bench-work/",)),
            ],
        )
        for n, (name, extra) in enumerate(VIRTIOFSD_VARIANTS.items()):
            qemu_backend.VIRTIOFSD_ARGS = extra
            with booted(spec if n == 0 else replace(spec, shares=spec.shares[:1])) as client:
                # The share keeper would replay every file the workload makes back into the
                # guest as an event (it cannot tell the guest's own changes from the host's).
                sharehost.terminate(spec.directory)
                upload(client, tarball)
                fs_types["virtiofs"] = fs_type(client, str(dirs["virtiofs"]))
                results[name] = guest(client, str(dirs["virtiofs"]), args.runs)
                print(f"{name}:", results[name], flush=True)
                if n:
                    continue
                ssh.run(client, "mkdir -p /srv/bench-sync")
                fs_types["sync"] = fs_type(client, "/srv/bench-sync")
                results["sync (guest-local)"] = guest(client, "/srv/bench-sync", args.runs)
                print("sync:", results["sync (guest-local)"], flush=True)
                for variant, options in NINEP_VARIANTS.items():
                    remount_9p(client, "share1", str(dirs["9p"]), options)
                    results[variant] = guest(client, str(dirs["9p"]), args.runs)
                    print(f"{variant}:", results[variant], flush=True)
    finally:
        qemu_backend.VIRTIOFSD_ARGS = ()
        subprocess.run(["rm", "-rf", str(base)], check=False)
    ratios = {
        mode: {m: round(r[m] / results["native"][m], 2) for m in METRICS}
        for mode, r in results.items()
    }
    rates = {
        mode: {m: round(MB_MOVED / r[m], 1) for m in SEQUENTIAL} for mode, r in results.items()
    }
    rows = [
        [mode, *(f"{r[m]:.2f}s ({ratios[mode][m]:.2f}x)" for m in METRICS)]
        for mode, r in results.items()
    ]
    print(table(["where", *METRICS], rows))
    print(
        table(["MB/s", *SEQUENTIAL], [[mode, *map(str, r.values())] for mode, r in rates.items()])
    )
    return {
        "seconds": results,
        "time_ratio_to_native": ratios,
        "mb_per_s": rates,
        "guest_fs": fs_types,
        "runs": args.runs,
        "files": args.files,
        "virtiofsd_variants": {k: list(v) for k, v in VIRTIOFSD_VARIANTS.items()},
        "ninep_variants": NINEP_VARIANTS,
        "note": "guest page cache dropped before reads and stat; host cache not dropped; "
        "dd_* as the issue's probe (dd bs=1M from /dev/zero, no fsync; to /dev/null)",
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--files",
        type=int,
        default=10_000,
        help="files in the untar/stat tree (under TCG, virtiofs creates about 50 a second)",
    )
    parser.add_argument("--image", default=str(DEFAULT_IMAGE))
    args = parser.parse_args()
    sigterm_as_interrupt()
    data = run(args)
    print(f"wrote {write_result('shares', data)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
