"""Refuse impossible resources before anything is written, with Docker's words.

Checking first keeps a refused create from leaving a half-configured cgroup
behind, and using Docker's messages keeps scripts that match on them working.
"""

from __future__ import annotations

import os

from engine.errors import InvalidParameter
from engine.runtime.spec import Resources

MIN_MEMORY = 6 * 1024 * 1024  # Docker's linuxMinMemory
MIN_NANO_CPUS = 10_000_000  # 0.01 CPU: a 1 ms quota in a 100 ms period, the kernel's floor


def host_cpus() -> int:
    """The CPUs this process may run on, as Docker's sysinfo.NumCPU() counts them."""
    return len(os.sched_getaffinity(0))


def validate(res: Resources, ncpu: int | None = None) -> None:
    check_memory(res)
    check_cpus(res, host_cpus() if ncpu is None else ncpu)
    check_pids(res)


def check_memory(res: Resources) -> None:
    if res.memory != 0 and res.memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if res.memory_swap < -1:
        raise InvalidParameter(
            f"invalid memory swap limit {res.memory_swap}: use -1 for unlimited swap, "
            "0 for no swap, or a total (memory + swap) in bytes"
        )
    if res.memory_swap > 0 and res.memory == 0:
        raise InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if res.memory_swap > 0 and res.memory_swap < res.memory:
        raise InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )


def check_cpus(res: Resources, ncpu: int) -> None:
    if (
        res.nano_cpus < 0
        or res.nano_cpus > ncpu * 1_000_000_000
        or (0 < res.nano_cpus < MIN_NANO_CPUS)
    ):
        raise InvalidParameter(
            f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )


def check_pids(res: Resources) -> None:
    if res.pids_limit < -1:
        raise InvalidParameter(
            f"invalid PIDs limit {res.pids_limit}: use -1 or 0 for unlimited, "
            "or a positive number of processes"
        )
