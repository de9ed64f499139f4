"""Pure conversions of each controller module, and validation with Docker's messages."""

from __future__ import annotations

import pytest

from engine.cgroups import cpu, memory, pids
from engine.cgroups.validate import validate
from engine.errors import InvalidParameter
from engine.runtime.spec import Resources

MiB = 1 << 20


@pytest.mark.parametrize(
    ("res", "v1", "v2"),
    [
        (Resources(), (-1, -1), ("max", "max")),
        (Resources(memory=64 * MiB), (64 * MiB, 64 * MiB), (str(64 * MiB), "0")),
        (Resources(memory=64 * MiB, memory_swap=-1), (64 * MiB, -1), (str(64 * MiB), "max")),
        (
            Resources(memory=64 * MiB, memory_swap=100 * MiB),
            (64 * MiB, 100 * MiB),
            (str(64 * MiB), str(36 * MiB)),
        ),
    ],
)
def test_memory_limits(res: Resources, v1: tuple[int, int], v2: tuple[str, str]) -> None:
    assert memory.v1_limits(res) == v1
    assert memory.v2_limits(res) == v2


@pytest.mark.parametrize(
    ("nano", "quota", "v2max"),
    [
        (0, -1, "max 100000"),
        (1_500_000_000, 150_000, "150000 100000"),
        (10_000_000, 1000, "1000 100000"),
    ],
)
def test_cpu_quota(nano: int, quota: int, v2max: str) -> None:
    res = Resources(nano_cpus=nano)
    assert cpu.quota_us(res) == quota
    assert cpu.v2_max(res) == v2max


@pytest.mark.parametrize(
    ("shares", "v1", "weight"),
    [
        (0, 1024, 100),
        (2, 2, 1),
        (1024, 1024, 39),
        (262144, 262144, 10000),
        (1, 2, 1),
        (-5, 2, 1),
        (10**6, 262144, 10000),
    ],
)
def test_cpu_shares_and_weight(shares: int, v1: int, weight: int) -> None:
    res = Resources(cpu_shares=shares)
    assert cpu.shares(res) == v1
    assert cpu.weight(res) == weight


@pytest.mark.parametrize(("limit", "value"), [(0, "max"), (-1, "max"), (1, "1"), (100, "100")])
def test_pids_value(limit: int, value: str) -> None:
    assert pids.limit_value(Resources(pids_limit=limit)) == value


@pytest.mark.parametrize(
    ("res", "message"),
    [
        (Resources(memory=-1), "Minimum memory limit allowed is 6MB"),
        (Resources(memory=(6 * MiB) - 1), "Minimum memory limit allowed is 6MB"),
        (
            Resources(memory=64 * MiB, memory_swap=32 * MiB),
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            Resources(memory_swap=64 * MiB),
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (Resources(memory=64 * MiB, memory_swap=-2), "invalid memory swap limit -2"),
        (Resources(nano_cpus=-1), "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs"),
        (Resources(nano_cpus=3_000_000_000), "range of CPUs is from 0.01 to 2.00"),
        (Resources(nano_cpus=9_999_999), "range of CPUs is from 0.01 to 2.00"),
        (Resources(pids_limit=-2), "invalid PIDs limit -2"),
    ],
)
def test_validate_refuses_with_dockers_message(res: Resources, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message) as info:
        validate(res, ncpu=2)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "res",
    [
        Resources(),
        Resources(memory=6 * MiB),
        Resources(memory=64 * MiB, memory_swap=64 * MiB, nano_cpus=2_000_000_000),
        Resources(pids_limit=-1, cpu_shares=512, nano_cpus=10_000_000),
    ],
)
def test_validate_accepts(res: Resources) -> None:
    validate(res, ncpu=2)
