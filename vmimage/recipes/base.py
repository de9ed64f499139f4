"""What a recipe gives the shared image builder, and the protocol it implements.

A recipe knows where one distribution keeps its kernel and userland and how to
fetch and verify them. Everything else (guest layout, init, the bundled
engine, module selection, packing, manifest) is shared, so every recipe's
guest behaves the same. A recipe fills `RecipeOutput.rootfs` with a userland
that provides the programs in `REQUIRED_PROGRAMS` and returns the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# Guest paths the shared init relies on; the builder checks them after the recipe ran.
REQUIRED_PROGRAMS = (
    "usr/bin/busybox",  # static: the init's shell and its small tools (applets linked in /usr/bin)
    "usr/bin/python3",  # runs the engine and the seed helper
    "usr/sbin/sshd",  # OpenSSH: the host reaches the engine socket with direct-streamlocal
    "usr/sbin/mke2fs",  # formats the data disk on first boot
    "usr/sbin/nft",  # the engine's firewall backend
)


@dataclass(frozen=True)
class Input:
    """One fetched input, recorded in manifest.json."""

    name: str
    version: str
    sha256: str
    source: str  # where it came from: "apt:pool/main/...", a URL, "pypi:wheel!member"

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "source": self.source,
        }


@dataclass
class RecipeOutput:
    """A recipe's result: a userland tree, a kernel and its modules."""

    rootfs: Path  # the userland, merged /usr (bin, sbin, lib are links into usr/)
    vmlinux: bytes  # uncompressed ELF kernel (PVH entry on x86_64)
    kernel_release: str  # e.g. 6.1.0-56-amd64
    modules_dir: Path  # lib/modules/<release> with modules.dep and modules.builtin
    inputs: list[Input] = field(default_factory=list)
    python_version: str = "3.11"  # the guest's python3 X.Y, for precompiling the engine


class Recipe(Protocol):
    """A distribution recipe: fetch, verify and unpack inputs for one architecture."""

    name: str

    def build(self, arch: str, cache: Path, work: Path) -> RecipeOutput:
        """Fetch into `cache` (reused across builds), unpack under `work` (fresh)."""
        ...
