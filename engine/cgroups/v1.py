"""cgroup v1 (and the v1 side of a hybrid layout): one hierarchy per controller.

Where containers go: <root>/<ctrl>/<parent>/<cid>, directly under each
hierarchy's root, as Docker's cgroupfs driver does -- NOT under the cgroup the
engine itself runs in. On this host the engine's memory cgroup is
/process_api/<x>, a cgroup owned by whatever started us: nesting there would
charge containers to a budget we do not control, put our directories in a
tree we do not own, and move every container's path whenever the daemon is
restarted into a different cgroup (containers from before a restart could no
longer be found). The root is stable and root may mkdir there.

Controllers: memory, cpu, pids carry limits; cpuacct gives CPU usage;
freezer gives pause; devices holds the device allow-list. Others (cpuset,
blkio, name=systemd) are left alone, so a container sits in its hierarchy's
root for those.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.cgroups import cpu, devices, freezer, fs, memory, pids
from engine.cgroups.base import BaseManager
from engine.cgroups.stats import CgroupStats, effective_limit, online_cpus, system_cpu_usage_ns
from engine.errors import EngineError, NotFound
from engine.runtime.spec import Resources

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices")


class V1Manager(BaseManager):
    version = "1"

    def mounted(self) -> list[str]:
        """Controllers present, one per hierarchy (cpu,cpuacct may be co-mounted)."""
        seen: set[tuple[int, int]] = set()
        names: list[str] = []
        for ctrl in CONTROLLERS:
            try:  # one stat per controller: this runs on every cgroup operation
                st = os.stat(self.root / ctrl)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                names.append(ctrl)
        return names

    def dir(self, ctrl: str, cid: str) -> Path:
        return self.root / ctrl / self.parent / cid

    def dirs(self, cid: str) -> list[Path]:
        return [self.dir(c, cid) for c in self.mounted()]

    def parent_dirs(self) -> list[Path]:
        return [
            self.root / c / "/".join(self.parts[:n])
            for c in self.mounted()
            for n in range(len(self.parts), 0, -1)
        ]

    def make(self, cid: str) -> None:
        for d in self.dirs(cid):
            fs.mkdir(d)

    def apply(self, cid: str, res: Resources) -> None:
        memory.apply_v1(res, self.dir("memory", cid))
        cpu.apply_v1(res, self.dir("cpu", cid))
        pids.apply(res, self.dir("pids", cid))
        devices.apply_v1(res, self.dir("devices", cid))

    def can_freeze(self, cid: str) -> bool:
        return (self.dir("freezer", cid) / "freezer.state").exists()

    def freezer_dir(self, cid: str) -> Path:
        self.require(cid)
        if not self.can_freeze(cid):
            raise EngineError("the v1 freezer controller is not mounted; cannot pause containers")
        return self.dir("freezer", cid)

    def freeze(self, cid: str) -> None:
        freezer.freeze_v1(self.freezer_dir(cid))

    def thaw(self, cid: str) -> None:
        """A container whose cgroup is gone has ended: nothing of it is frozen."""
        try:
            cgroup_dir = self.freezer_dir(cid)
        except NotFound:
            return
        freezer.thaw_v1(cgroup_dir)

    def is_frozen(self, cid: str) -> bool:
        return self.can_freeze(cid) and freezer.is_frozen_v1(self.dir("freezer", cid))

    def oom_killed(self, cid: str) -> bool:
        return memory.oom_killed_v1(self.dir("memory", cid))

    def stats(self, cid: str) -> CgroupStats:
        self.require(cid)
        usage, limit, peak = memory.usage_v1(self.dir("memory", cid))
        return CgroupStats(
            memory_usage=usage,
            memory_limit=effective_limit(limit),
            memory_max_usage=peak,
            cpu_usage_ns=cpu.usage_ns_v1(self.dir("cpuacct", cid)),
            system_cpu_usage_ns=system_cpu_usage_ns(),
            pids_current=pids.current(self.dir("pids", cid)),
            pids_limit=pids.limit(self.dir("pids", cid)),
            online_cpus=online_cpus(),
        )
