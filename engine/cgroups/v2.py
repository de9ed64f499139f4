"""Pure cgroup v2 (the guest VM): one hierarchy, <root>/<parent>/<cid>.

The "no internal processes" rule: a non-root cgroup that enables controllers
for its children (cgroup.subtree_control) may not hold processes itself. So
processes only ever go into the leaf <cid>; <parent> only delegates. Controllers
are enabled top-down, root -> parent, because a cgroup can only enable what
its own parent enabled for it.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

from engine.cgroups import cpu, freezer, fs, memory, pids
from engine.cgroups.base import BaseManager
from engine.cgroups.stats import CgroupStats, effective_limit, online_cpus, system_cpu_usage_ns
from engine.errors import EngineError, NotFound
from engine.runtime.spec import Resources

WANTED = ("cpu", "memory", "pids", "io")


def write_subtree(node: Path, ctrls: list[str]) -> OSError | None:
    """One write of "+a +b": the kernel enables them together or not at all."""
    fd = os.open(node / "cgroup.subtree_control", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, " ".join(f"+{c}" for c in ctrls).encode())
    except OSError as e:
        return e
    finally:
        os.close(fd)
    return None


def enable_controllers(node: Path) -> None:
    """Delegate the wanted controllers that `node` has to its children.

    EBUSY means `node` holds processes itself, which we must report. Other
    refusals (e.g. cpu while realtime tasks exist) leave just that controller
    off; a limit that needs it then fails with a clear message.
    """
    available = fs.read_words(node / "cgroup.controllers")
    enabled = fs.read_words(node / "cgroup.subtree_control")
    wanted = [c for c in WANTED if c in available and c not in enabled]
    error = write_subtree(node, wanted) if wanted else None
    if error is not None and error.errno == errno.EBUSY:
        raise EngineError(
            f"cannot enable {' '.join(wanted)} below {node}: it holds processes itself, and "
            "cgroup v2 allows controllers only for cgroups without their own processes; "
            "use a cgroup parent that holds no processes"
        ) from error
    if error is not None:
        for ctrl in wanted:
            write_subtree(node, [ctrl])


class V2Manager(BaseManager):
    version = "2"

    def dir(self, cid: str) -> Path:
        return self.root / self.parent / cid

    def dirs(self, cid: str) -> list[Path]:
        return [self.dir(cid)]

    def parent_dirs(self) -> list[Path]:
        return [self.root / "/".join(self.parts[:n]) for n in range(len(self.parts), 0, -1)]

    def make(self, cid: str) -> None:
        node = self.root
        for part in self.parts:
            enable_controllers(node)
            node = node / part
            fs.mkdir(node)
        enable_controllers(node)
        fs.mkdir(self.dir(cid))

    def apply(self, cid: str, res: Resources) -> None:
        d = self.dir(cid)
        memory.apply_v2(res, d)
        cpu.apply_v2(res, d)
        pids.apply(res, d)

    def can_freeze(self, cid: str) -> bool:
        return (self.dir(cid) / "cgroup.freeze").exists()

    def freeze(self, cid: str) -> None:
        self.require(cid)
        freezer.freeze_v2(self.dir(cid))

    def thaw(self, cid: str) -> None:
        """A container whose cgroup is gone has ended: nothing of it is frozen."""
        try:
            self.require(cid)
        except NotFound:
            return
        freezer.thaw_v2(self.dir(cid))

    def is_frozen(self, cid: str) -> bool:
        return freezer.is_frozen_v2(self.dir(cid))

    def oom_killed(self, cid: str) -> bool:
        return memory.oom_killed_v2(self.dir(cid))

    def kill_all(self, cid: str, sig: int) -> None:
        """cgroup.kill (5.14+) kills atomically, forks included; otherwise freeze-kill-thaw."""
        kill_file = self.dir(cid) / "cgroup.kill"
        if sig == signal.SIGKILL and kill_file.exists():
            fs.write(kill_file, 1)
            return
        super().kill_all(cid, sig)

    def stats(self, cid: str) -> CgroupStats:
        self.require(cid)
        d = self.dir(cid)
        usage, limit, peak = memory.usage_v2(d)
        return CgroupStats(
            memory_usage=usage,
            memory_limit=effective_limit(limit),
            memory_max_usage=peak,
            cpu_usage_ns=cpu.usage_ns_v2(d),
            system_cpu_usage_ns=system_cpu_usage_ns(),
            pids_current=pids.current(d),
            pids_limit=pids.limit(d),
            online_cpus=online_cpus(),
        )
