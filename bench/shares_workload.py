"""The file-system workload of bench/shares.py, run natively on the host and inside the
guest on each share (standard library only: the guest runs it with its own python3).

Usage: python3 shares_workload.py DIR TARBALL [--drop-caches]
Prints one JSON object of seconds: write_256m, read_256m, dd_write_256m, dd_read_256m,
untar_tree, stat_tree (the tarball's files).
`--drop-caches` (the guest, as root) empties the page cache before each read phase, so
reads go through the share's transport instead of the guest's cache.

What the two sequential pairs measure: write_256m/read_256m move 1 MiB blocks from and
into one reused buffer (256 system calls each way, so under TCG the figure is the kernel
and the transport, not the emulated interpreter), the write fsynced. dd_write_256m/
dd_read_256m repeat the issue's probe: `dd bs=1M` from /dev/zero without fsync, and back
to /dev/null; under TCG the guest's clearing of each /dev/zero block is itself emulated
(about 230 MB/s here), so dd writes read slower than the buffer writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

MIB = 1 << 20
SIZE_MIB = 256


def drop_caches(enabled: bool) -> None:
    if enabled:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")


def write(path: str) -> float:
    block = os.urandom(MIB)
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(SIZE_MIB):
        os.write(fd, block)
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - start


def read(path: str) -> float:
    """Into one buffer: a fresh 1 MiB object per block would add page faults, which an
    emulated guest pays dearly for."""
    buf = bytearray(MIB)
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass
    return time.perf_counter() - start


def dd(*operands: str) -> float:
    start = time.perf_counter()
    subprocess.run(["dd", "bs=1M", *operands], check=True, capture_output=True)
    return time.perf_counter() - start


def untar(tarball: str, dest: str) -> float:
    """With the tar program where there is one (the guest's python runs emulated under TCG,
    which would measure the interpreter rather than the share)."""
    os.makedirs(dest)
    tar_program = shutil.which("tar")
    start = time.perf_counter()
    if tar_program:
        subprocess.run([tar_program, "-xf", tarball, "-C", dest], check=True)
        return time.perf_counter() - start
    with tarfile.open(tarball) as tar:
        try:
            tar.extractall(dest, filter="data")
        except TypeError:  # a python3 without extraction filters: our own tarball
            tar.extractall(dest)
    return time.perf_counter() - start


def stat_all(root: str) -> tuple[float, int]:
    start = time.perf_counter()
    count = 0
    for parent, _dirs, files in os.walk(root):
        for name in files:
            os.stat(os.path.join(parent, name))
            count += 1
    return time.perf_counter() - start, count


def main() -> None:
    root, tarball = sys.argv[1], sys.argv[2]
    drop = "--drop-caches" in sys.argv
    work = os.path.join(root, "bench-work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    big = os.path.join(work, "big")
    result = {"write_256m": write(big)}
    drop_caches(drop)
    result["read_256m"] = read(big)
    result["dd_write_256m"] = dd("if=/dev/zero", f"of={big}", f"count={SIZE_MIB}")
    drop_caches(drop)
    result["dd_read_256m"] = dd(f"if={big}", "of=/dev/null")
    os.unlink(big)
    result["untar_tree"] = untar(tarball, os.path.join(work, "tree"))
    drop_caches(drop)
    result["stat_tree"], result["files"] = stat_all(os.path.join(work, "tree"))
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
