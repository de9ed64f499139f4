"""The memory controller: limit, swap, usage and OOM kills.

Swap follows the spec's contract (not Docker's 2x default): memory_swap 0
means "memory only, no swap", -1 means unlimited swap, and a positive value is
memory + swap together, as v1's memsw counts it.
"""

from __future__ import annotations

from pathlib import Path

from engine.cgroups import fs
from engine.runtime.spec import Resources

V1_UNLIMITED = -1
V2_UNLIMITED = "max"


def v1_limits(res: Resources) -> tuple[int, int]:
    """(memory.limit_in_bytes, memory.memsw.limit_in_bytes) for v1; -1 is unlimited."""
    if res.memory <= 0:
        return V1_UNLIMITED, V1_UNLIMITED
    if res.memory_swap == -1:
        return res.memory, V1_UNLIMITED
    return res.memory, res.memory_swap if res.memory_swap > 0 else res.memory


def v2_limits(res: Resources) -> tuple[str, str]:
    """(memory.max, memory.swap.max) for v2; v2 counts swap alone, not memory + swap."""
    if res.memory <= 0:
        return V2_UNLIMITED, V2_UNLIMITED
    if res.memory_swap == -1:
        return str(res.memory), V2_UNLIMITED
    swap = res.memory_swap - res.memory if res.memory_swap > 0 else 0
    return str(res.memory), str(swap)


def apply_v1(res: Resources, cgroup_dir: Path) -> None:
    """Write both limits in the order the kernel accepts (memory <= memsw always).

    Raising both means memsw first; lowering both means memory first. The
    current limit tells which case this is (runc does the same).
    """
    mem, memsw = v1_limits(res)
    limit = cgroup_dir / "memory.limit_in_bytes"
    swap = cgroup_dir / "memory.memsw.limit_in_bytes"
    if not swap.exists():  # kernel without swap accounting: nothing to order
        fs.write_limit(limit, mem, V1_UNLIMITED)
        return
    if memsw == V1_UNLIMITED or fs.read_int(limit) < memsw:
        fs.write(swap, memsw)
        fs.write(limit, mem)
    else:
        fs.write(limit, mem)
        fs.write(swap, memsw)


def apply_v2(res: Resources, cgroup_dir: Path) -> None:
    mem, swap = v2_limits(res)
    fs.write_limit(cgroup_dir / "memory.max", mem, V2_UNLIMITED)
    swap_file = cgroup_dir / "memory.swap.max"
    if swap_file.exists():  # absent without swap accounting; then there is no swap to allow
        fs.write(swap_file, swap)


def usage_v1(cgroup_dir: Path) -> tuple[int, int, int]:
    """(usage, limit, max usage) in bytes; limit is the kernel's huge number when unlimited."""
    return (
        fs.read_int(cgroup_dir / "memory.usage_in_bytes"),
        fs.read_int(cgroup_dir / "memory.limit_in_bytes"),
        fs.read_int(cgroup_dir / "memory.max_usage_in_bytes"),
    )


def usage_v2(cgroup_dir: Path) -> tuple[int, int, int]:
    """(usage, limit, peak) in bytes; limit 0 when "max", peak 0 on kernels before 5.19."""
    return (
        fs.read_int(cgroup_dir / "memory.current"),
        fs.read_int(cgroup_dir / "memory.max"),
        fs.read_int(cgroup_dir / "memory.peak"),
    )


def oom_killed_v1(cgroup_dir: Path) -> bool:
    return fs.read_keyed(cgroup_dir / "memory.oom_control").get("oom_kill", 0) > 0


def oom_killed_v2(cgroup_dir: Path) -> bool:
    return fs.read_keyed(cgroup_dir / "memory.events").get("oom_kill", 0) > 0
