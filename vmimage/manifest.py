"""manifest.json: what went into an image and what came out (the guest contract's format 1).

Written with sorted keys and a fixed layout so that two builds of the same
inputs give byte-identical manifests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmimage.recipes.base import Input

FORMAT = 1
CREATED_BY = "dockyard vmimage"


@dataclass
class Boot:
    """How the host boots the image (the `boot` object)."""

    kernel: str
    initrd: str
    rootfs: str  # "" when everything is in the initramfs
    cmdline: str
    pvh: bool
    modules: list[str] = field(default_factory=list)
    # Added to the contract: the virtio serial the host must give the rootfs disk
    # (attached read-only) when `rootfs` is not empty; "" otherwise.
    rootfs_serial: str = ""
    # The guest parks at its boot checkpoint when QEMU offers the control port
    # (guest/wakeup.py); the host may then save it and later start from that state.
    checkpoint: bool = True


def render(
    recipe: str,
    arch: str,
    epoch: int,
    inputs: list[Input],
    outputs: dict[str, str],
    boot: Boot,
    compressed_bytes: int,
) -> str:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "recipe": recipe,
        "arch": arch,
        "created_by": CREATED_BY,
        "source_date_epoch": epoch,
        "inputs": [i.as_json() for i in sorted(inputs, key=lambda i: (i.name, i.version))],
        "outputs": dict(sorted(outputs.items())),
        "boot": boot.__dict__,
        "size": {"compressed_bytes": compressed_bytes},
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def load(path: Path) -> dict[str, Any]:
    """A manifest as a dict, after checking its format number."""
    doc: dict[str, Any] = json.loads(path.read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: manifest format {doc.get('format')!r}, expected {FORMAT}")
    return doc
