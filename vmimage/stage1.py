"""The small first-stage initramfs for an image whose root is a read-only erofs disk.

It holds static busybox, the modules that mount the root disk (virtio, erofs,
overlay) and guest/stage1.sh as /init. The modules it loads are left out of the
root's own early list, since they are already loaded when the real init runs.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

from vmimage import cpio, kernel
from vmimage.layout import OPTIONAL_MODULES
from vmimage.recipes.base import RecipeOutput

GUEST = Path(__file__).resolve().parent / "guest"
# crc32c_generic first: libcrc32c (needed by erofs) asks the crypto API for crc32c as it loads.
ROOT_MODULES = ("crc32c_generic", "virtio_mmio", "virtio_pci", "virtio_blk", "erofs", "overlay")
ROOT_SERIAL = "dockyard-root"  # the virtio serial the host gives the rootfs disk
APPLETS = (
    "sh",
    "mount",
    "umount",
    "insmod",
    "cat",
    "mkdir",
    "basename",
    "dirname",
    "switch_root",
    "poweroff",
    "echo",
)


def root_module_order(out: RecipeOutput) -> list[str]:
    index = kernel.load_index(out.modules_dir)
    known = set(index.deps) | index.builtin
    wanted = [m for m in ROOT_MODULES if m in known or m not in OPTIONAL_MODULES]
    return kernel.load_order(index, wanted)


def build_tree(out: RecipeOutput, dest: Path) -> None:
    """Lay out the stage-1 tree at `dest` from the recipe's busybox and modules."""
    index = kernel.load_index(out.modules_dir)
    (dest / "usr/bin").mkdir(parents=True)
    for rel in ("proc", "sys", "dev", "lib/modules"):
        (dest / rel).mkdir(parents=True, exist_ok=True)
    shutil.copy2(out.rootfs / "usr/bin/busybox", dest / "usr/bin/busybox")
    for applet in APPLETS:
        (dest / "usr/bin" / applet).symlink_to("busybox")
    (dest / "bin").symlink_to("usr/bin")
    lines = []
    for name in root_module_order(out):
        ko = f"lib/modules/{name}.ko"
        shutil.copyfile(out.modules_dir / index.paths[name], dest / ko)
        lines.append(f"/{ko}\n")
    (dest / "modules").write_text("".join(lines))
    shutil.copyfile(GUEST / "stage1.sh", dest / "init")
    (dest / "init").chmod(0o755)


def entries(tree: Path) -> list[cpio.Entry]:
    console = cpio.Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    return sorted([*cpio.tree_entries(tree), console], key=lambda e: e.path)
