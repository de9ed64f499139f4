"""Stage lines from the guest's console, and the stage clock."""

from __future__ import annotations

import pytest

from machine import stages
from machine.backend import Stage, StageFailed, StageStatus

CONSOLE = """\
[    0.000000] Linux version 6.1.0
dockyard-stage init 1.52
dockyard-stage modules 1.90\r
noise dockyard-stage network 2.01
dockyard-stage bogus 2.2
dockyard-stage sshd notanumber
dockyard-fail data mkfs.ext4 failed: no space
"""


def test_parse_serial_finds_stage_and_fail_lines() -> None:
    assert stages.parse_serial(CONSOLE) == [
        stages.SerialEvent("init", 1.52),
        stages.SerialEvent("modules", 1.90),
        stages.SerialEvent("network", 2.01),
        stages.SerialEvent("data", 0.0, True, "mkfs.ext4 failed: no space"),
    ]


def test_every_stage_has_a_timeout_and_a_hint() -> None:
    names = [s.name for s in stages.STAGES]
    assert names == [
        *["accel", "qemu", "kernel", "init", "network", "checkpoint", "restore"],
        *["sshd", "engine"],
    ]
    assert all(s.timeout > 0 and s.hint for s in stages.STAGES)


def test_clock_records_done_and_failed_stages_with_hint() -> None:
    seen: list[tuple[str, StageStatus]] = []

    def progress(stage: Stage) -> None:
        seen.append((stage.name, stage.status))

    clock = stages.StageClock(progress)
    with clock.stage("qemu") as st:
        st.detail = "pid 1"
    with pytest.raises(StageFailed) as err, clock.stage("kernel"):
        raise OSError("boom")
    assert err.value.stage == "kernel"
    assert err.value.hint == stages.BY_NAME["kernel"].hint
    assert seen == [
        ("qemu", StageStatus.RUNNING),
        ("qemu", StageStatus.DONE),
        ("kernel", StageStatus.RUNNING),
        ("kernel", StageStatus.FAILED),
    ]
    assert clock.stages[0].detail == "pid 1"
    assert all(s.duration is not None and s.duration >= 0 for s in clock.stages)


def test_a_stage_failure_keeps_its_own_hint() -> None:
    clock = stages.StageClock()
    with pytest.raises(StageFailed) as err, clock.stage("qemu"):
        raise StageFailed("port busy", "qemu", "free the port")
    assert err.value.hint == "free the port"


def test_a_guest_failure_gets_the_hint_of_its_own_step() -> None:
    assert "data disk" in stages.guest_fail_hint("data", "engine")
    assert stages.guest_fail_hint("unknown", "sshd") == stages.BY_NAME["sshd"].hint
