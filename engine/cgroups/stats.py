"""The numbers behind /containers/{id}/stats, and the host figures they need.

Docker computes CPU % from two samples of (container usage, system usage), so
system_cpu_usage_ns must come from /proc/stat the way Docker reads it: the
first seven fields of the "cpu" line, in clock ticks, turned into ns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
PROC_MEMINFO = Path("/proc/meminfo")


@dataclass
class CgroupStats:
    memory_usage: int = 0  # bytes
    memory_limit: int = 0  # bytes; the host's memory when the cgroup has no limit
    memory_max_usage: int = 0  # bytes; 0 when the kernel does not track it
    cpu_usage_ns: int = 0  # total CPU time used by the cgroup
    system_cpu_usage_ns: int = 0  # total host CPU time, for Docker's CPU % formula
    pids_current: int = 0
    pids_limit: int = 0  # 0 = unlimited
    online_cpus: int = 0


def system_cpu_usage_ns(proc_stat: Path = PROC_STAT) -> int:
    for line in proc_stat.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = sum(int(v) for v in fields[1:8])
            return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return 0


def online_cpus() -> int:
    return int(os.sysconf("SC_NPROCESSORS_ONLN"))


def host_memory(proc_meminfo: Path = PROC_MEMINFO) -> int:
    """MemTotal in bytes: what Docker shows as the limit of an unlimited container."""
    for line in proc_meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def effective_limit(limit: int) -> int:
    """Cap "unlimited" (0 or the kernel's near-2^63) at the host's memory."""
    total = host_memory()
    return total if limit <= 0 or limit > total else limit
