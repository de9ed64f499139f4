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

from vmimage import cpio, enginesrc, kernel, layout, manifest, stage1
from vmimage.recipes import get_recipe
from vmimage.recipes.base import Input, RecipeOutput

DEFAULT_EPOCH = 1700000000  # used when SOURCE_DATE_EPOCH is unset, so builds still repeat
KERNEL_FILE = "vmlinux"
INITRD_FILE = "initramfs.img"
ROOTFS_FILE = "rootfs.erofs"
ALL_OUTPUTS = (KERNEL_FILE, INITRD_FILE, ROOTFS_FILE, "manifest.json")
ROOTFS_UUID = "d0c4ad00-0000-4000-8000-000000000001"  # fixed, so the erofs image repeats
# erofs (the default): a small stage-1 cpio plus a read-only erofs root disk under a
#   tmpfs overlay. Containers need it: pivot_root refuses to move an initramfs root
#   (EINVAL), and the engine pivots into every container. It also boots faster under
#   TCG here (uptime at init 2.8 s vs 3.5 s; engine ready 8.6 s vs 8.9 s), since only
#   the pages the guest reads leave the disk.
# initramfs: the whole guest in one cpio the kernel unpacks into RAM; for a kernel or
#   host that cannot attach the root disk (containers then fail to start).
FORMATS = ("erofs", "initramfs")
REPO = Path(__file__).resolve().parent.parent
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
    compression: str = "none"  # gzip | zstd | none: see FORMATS
    format: str = "erofs"  # erofs | initramfs: see FORMATS
    engine_source: str = "head"  # head | worktree: see enginesrc


def default_cache(repo: Path) -> Path:
    return repo / ".cache" / "vmimage" / "downloads"


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_EPOCH


def build(opts: BuildOptions) -> dict[str, str]:
    """Build the image into opts.out; returns {output file: sha256}."""
    if opts.format not in FORMATS:
        raise ValueError(f"unknown format {opts.format!r}: use {' or '.join(FORMATS)}")
    recipe = get_recipe(opts.recipe)
    opts.out.mkdir(parents=True, exist_ok=True)
    clean_stale(opts.out)
    with tempfile.TemporaryDirectory(dir=opts.out, prefix=".work-") as tmp:
        work = Path(tmp)
        engine, engine_version = enginesrc.engine_files(REPO, opts.engine_source)
        result = recipe.build(opts.arch, opts.cache, work)
        kernel.ensure_modules_dep(result.modules_dir)
        outputs, rootfs, order = _pack_format(opts, result, engine, work)
        outputs[KERNEL_FILE] = result.vmlinux
        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in outputs.items()}
        boot = manifest.Boot(
            kernel=KERNEL_FILE,
            initrd=INITRD_FILE,
            rootfs=rootfs,
            cmdline=CMDLINE,
            pvh=kernel.has_pvh_note(result.vmlinux),
            modules=order,
            rootfs_serial=stage1.ROOT_SERIAL if rootfs else "",
        )
        engine_in = Input("engine", engine_version, enginesrc.digest(engine), "repo:engine/")
        inputs = [*result.inputs, engine_in]
        text = manifest.render(
            opts.recipe, opts.arch, opts.epoch, inputs, hashes, boot, compressed_size(outputs)
        )
        for name in ALL_OUTPUTS:
            (opts.out / name).unlink(missing_ok=True)
        for name, data in (*outputs.items(), ("manifest.json", text.encode())):
            _write_atomic(opts.out / name, data)
    return hashes


def _pack_format(
    opts: BuildOptions, result: RecipeOutput, engine: dict[str, bytes], work: Path
) -> tuple[dict[str, bytes], str, list[str]]:
    """({file: bytes}, rootfs file name or "", module order) for the chosen format."""
    if opts.format == "initramfs":
        order = layout.apply(result, engine)
        entries = sorted([*cpio.tree_entries(result.rootfs), *EARLY_NODES], key=lambda e: e.path)
        return {INITRD_FILE: compress(_cpio(entries, opts.epoch), opts.compression)}, "", order
    preloaded = stage1.root_module_order(result)
    order = layout.apply(result, engine, tuple(preloaded))
    tree = work / "stage1"
    stage1.build_tree(result, tree)
    initrd = compress(_cpio(stage1.entries(tree), opts.epoch), opts.compression)
    erofs = make_erofs(result.rootfs, work / ROOTFS_FILE, opts.epoch)
    return {INITRD_FILE: initrd, ROOTFS_FILE: erofs}, ROOTFS_FILE, order


def make_erofs(tree: Path, dest: Path, epoch: int) -> bytes:
    """An uncompressed erofs image of `tree`: fixed timestamp, owner and UUID."""
    proc = subprocess.run(
        [
            "mkfs.erofs",
            "--quiet",
            f"-T{epoch}",
            "--all-root",
            f"-U{ROOTFS_UUID}",
            "-x-1",
            str(dest),
            str(tree),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"mkfs.erofs failed: {proc.stderr.strip()} (install erofs-utils)")
    return dest.read_bytes()


def _cpio(entries: list[cpio.Entry], epoch: int) -> bytes:
    buf = io.BytesIO()
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
    """Bytes to download: each output gzip-compressed unless it already is.

    The kernel (raw ELF for PVH), an uncompressed initramfs and the erofs root
    are stored raw because they boot faster that way; they ship compressed.
    """
    return sum(
        len(data) if _compressed(data) else len(gzip.compress(data, 9, mtime=0))
        for data in outputs.values()
    )


def _compressed(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b" or data[:4] == b"\x28\xb5\x2f\xfd"


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
