"""The pids controller: one file, the same on v1 and v2.

pids.max counts every task in the cgroup, including those forked later by a
process that joined it, because children inherit their parent's cgroup.
"""

from __future__ import annotations

from pathlib import Path

from engine.cgroups import fs
from engine.runtime.spec import Resources

UNLIMITED = "max"


def limit_value(res: Resources) -> str:
    """pids.max for a limit; 0 and -1 both mean unlimited, as in Docker."""
    return str(res.pids_limit) if res.pids_limit > 0 else UNLIMITED


def apply(res: Resources, cgroup_dir: Path) -> None:
    fs.write_limit(cgroup_dir / "pids.max", limit_value(res), UNLIMITED)


def current(cgroup_dir: Path) -> int:
    return fs.read_int(cgroup_dir / "pids.current")


def limit(cgroup_dir: Path) -> int:
    """The limit, 0 when unlimited (what Docker's stats report)."""
    return fs.read_int(cgroup_dir / "pids.max")
