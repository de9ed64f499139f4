"""The cgroup manager the runtime uses: pick v1 or v2, then one interface.

This package is the only code that writes under /sys/fs/cgroup. Each
container gets <parent>/<cid> in every hierarchy it uses (see v1.py for why
that is under the hierarchy root and not under the engine's own cgroup).
Limits are validated before anything is written and raise InvalidParameter
with Docker's messages; kernel refusals raise EngineError naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from engine.cgroups.stats import CgroupStats
from engine.cgroups.v1 import CONTROLLERS, V1Manager
from engine.cgroups.v2 import V2Manager
from engine.errors import EngineError
from engine.runtime.spec import Resources

__all__ = ["CgroupManager", "CgroupStats", "V1Manager", "V2Manager", "detect"]

DEFAULT_ROOT = Path("/sys/fs/cgroup")


class CgroupManager(Protocol):
    version: str  # "1" or "2", as /info reports CgroupVersion

    def create(self, cid: str, res: Resources) -> None: ...
    def update(self, cid: str, res: Resources) -> None: ...
    def join(self, cid: str, pid: int) -> None: ...
    def procs_files(self, cid: str) -> list[Path]: ...
    def freeze(self, cid: str) -> None: ...
    def thaw(self, cid: str) -> None: ...
    def is_frozen(self, cid: str) -> bool: ...
    def oom_killed(self, cid: str) -> bool: ...
    def pids(self, cid: str) -> list[int]: ...
    def stats(self, cid: str) -> CgroupStats: ...
    def kill_all(self, cid: str, sig: int) -> None: ...
    def remove(self, cid: str) -> None: ...


def is_v2(root: Path) -> bool:
    """Pure v2 has cgroup.controllers at the root; a v1/hybrid root is a tmpfs of mounts."""
    return (root / "cgroup.controllers").is_file()


def is_v1(root: Path) -> bool:
    return any((root / c / "cgroup.procs").is_file() for c in CONTROLLERS)


def detect(parent: str = "dockyard", root: Path = DEFAULT_ROOT) -> CgroupManager:
    """V2Manager on a pure v2 root, V1Manager on v1 or hybrid (v2 there has no controllers)."""
    if is_v2(root):
        return V2Manager(parent, root)
    if is_v1(root):
        return V1Manager(parent, root)
    raise EngineError(
        f"no usable cgroup hierarchy at {root}: mount cgroup2 there, "
        f"or the v1 controllers ({', '.join(CONTROLLERS)}) under it"
    )
