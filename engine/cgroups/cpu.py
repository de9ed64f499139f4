"""The cpu controller: CFS quota from NanoCpus, and shares / weight.

Usage (for stats) lives here too: cpuacct.usage on v1, cpu.stat on v2.
"""

from __future__ import annotations

from pathlib import Path

from engine.cgroups import fs
from engine.runtime.spec import Resources

PERIOD_US = 100_000  # Docker's default CFS period
DEFAULT_SHARES = 1024
DEFAULT_WEIGHT = 100
MIN_SHARES, MAX_SHARES = 2, 262_144


def quota_us(res: Resources) -> int:
    """CFS quota per PERIOD_US for NanoCpus; -1 means no quota."""
    if res.nano_cpus <= 0:
        return -1
    return res.nano_cpus * PERIOD_US // 1_000_000_000


def shares(res: Resources) -> int:
    """cpu.shares, clamped to the kernel's range as Docker does (0 keeps the default)."""
    if res.cpu_shares == 0:
        return DEFAULT_SHARES
    return min(max(res.cpu_shares, MIN_SHARES), MAX_SHARES)


def shares_to_weight(value: int) -> int:
    """Docker's (and runc's) mapping of cpu.shares [2, 262144] onto cpu.weight [1, 10000]."""
    return 1 + ((value - 2) * 9999) // 262_142


def weight(res: Resources) -> int:
    return DEFAULT_WEIGHT if res.cpu_shares == 0 else shares_to_weight(shares(res))


def v2_max(res: Resources) -> str:
    quota = quota_us(res)
    return f"{'max' if quota < 0 else quota} {PERIOD_US}"


def apply_v1(res: Resources, cgroup_dir: Path) -> None:
    fs.write_limit(cgroup_dir / "cpu.cfs_period_us", PERIOD_US, PERIOD_US)
    fs.write_limit(cgroup_dir / "cpu.cfs_quota_us", quota_us(res), -1)
    fs.write_limit(cgroup_dir / "cpu.shares", shares(res), DEFAULT_SHARES)


def apply_v2(res: Resources, cgroup_dir: Path) -> None:
    fs.write_limit(cgroup_dir / "cpu.max", v2_max(res), f"max {PERIOD_US}")
    fs.write_limit(cgroup_dir / "cpu.weight", weight(res), DEFAULT_WEIGHT)


def usage_ns_v1(cpuacct_dir: Path) -> int:
    return fs.read_int(cpuacct_dir / "cpuacct.usage")


def usage_ns_v2(cgroup_dir: Path) -> int:
    """cpu.stat exists in every v2 cgroup, even without the cpu controller."""
    return fs.read_keyed(cgroup_dir / "cpu.stat").get("usage_usec", 0) * 1000
