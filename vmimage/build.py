"""Build a guest image directory: vmlinux, initramfs.img, manifest.json.

One pass: the recipe fetches and unpacks its inputs, the shared layout turns
them into the guest tree, and the tree is packed into a newc cpio compressed
deterministically. Outputs are written under a temporary name and renamed, so
a failed build never leaves a half image where a good one was.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vmimage import cpio, layout, manifest
from vmimage.recipes import get_recipe

DEFAULT_EPOCH = 1700000000  # used when SOURCE_DATE_EPOCH is unset, so builds still repeat
KERNEL_FILE = "vmlinux"
INITRD_FILE = "initramfs.img"
CMDLINE = "console=ttyS0 quiet panic=-1 reboot=t"
# Device nodes the kernel needs before init mounts devtmpfs (init's stdio is /dev/console).
EARLY_NODES = (cpio.Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),)


@dataclass(frozen=True)
class BuildOptions:
    recipe: str
    arch: str
    out: Path
    cache: Path
    epoch: int
    compression: str = "none"  # gzip | zstd | none: see BOOT_FORMAT_NOTE


def default_cache(repo: Path) -> Path:
    return repo / ".cache" / "vmimage" / "downloads"


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_EPOCH


def build(opts: BuildOptions) -> dict[str, str]:
    """Build the image into opts.out; returns {output file: sha256}."""
    recipe = get_recipe(opts.recipe)
    opts.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=opts.out, prefix=".work-") as tmp:
        work = Path(tmp)
        result = recipe.build(opts.arch, opts.cache, work)
        order = layout.apply(result)
        initrd = compress(pack(result.rootfs, opts.epoch), opts.compression)
        outputs = {KERNEL_FILE: result.vmlinux, INITRD_FILE: initrd}
        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in outputs.items()}
        boot = manifest.Boot(
            kernel=KERNEL_FILE,
            initrd=INITRD_FILE,
            rootfs="",
            cmdline=CMDLINE,
            pvh=kernel_has_pvh(result.vmlinux),
            modules=order,
        )
        text = manifest.render(
            opts.recipe,
            opts.arch,
            opts.epoch,
            result.inputs,
            hashes,
            boot,
            compressed_size(outputs),
        )
        for name, data in (*outputs.items(), ("manifest.json", text.encode())):
            _write_atomic(opts.out / name, data)
    return hashes


def kernel_has_pvh(vmlinux: bytes) -> bool:
    from vmimage.kernel import has_pvh_note

    return has_pvh_note(vmlinux)


def pack(root: Path, epoch: int) -> bytes:
    buf = io.BytesIO()
    entries = sorted([*cpio.tree_entries(root), *EARLY_NODES], key=lambda e: e.path)
    cpio.write(buf, entries, epoch)
    return buf.getvalue()


def compress(data: bytes, how: str) -> bytes:
    """Deterministic compression: gzip with mtime 0, or zstd (which stores no timestamp)."""
    if how == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if how == "zstd":
        return subprocess.run(
            ["zstd", "-q", "-c", "-19", "--no-progress"],
            input=data,
            capture_output=True,
            check=True,
        ).stdout
    if how == "none":
        return data
    raise ValueError(f"unknown compression {how!r}: use gzip, zstd or none")


def compressed_size(outputs: dict[str, bytes]) -> int:
    """Bytes to download: each output as shipped compressed (the kernel is stored raw for PVH)."""
    return sum(
        len(gzip.compress(data, 9, mtime=0)) if _raw(data) else len(data)
        for data in outputs.values()
    )


def _raw(data: bytes) -> bool:
    return data[:4] == b"\x7fELF" or data[:6] == b"070701"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def clean_stale(out: Path) -> None:
    """Remove work directories a killed build left behind."""
    for stale in out.glob(".work-*"):
        shutil.rmtree(stale, ignore_errors=True)
