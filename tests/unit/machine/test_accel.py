"""Accelerator choice: the Linux probe runs for real on this host; macOS's sysctl and
Windows' hypervisor platform are stood in for by fakes named for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from machine import accel
from machine.backend import StageFailed


def fake_sysctl(hv_support: str) -> accel.Sysctl:
    """Stands in for `sysctl -n` on a Mac."""
    return lambda name: hv_support if name == "kern.hv_support" else ""


def fake_winhvplatform(problem: str) -> accel.WhpxPresent:
    """Stands in for WinHvPlatform.dll's WHvGetCapability."""
    return lambda: problem


def test_hvf_used_when_the_mac_supports_it() -> None:
    probes = accel.HostProbes(hvf=lambda: accel.hvf_problem(fake_sysctl("1")))
    assert accel.choose("auto", "darwin", probes) == accel.AccelChoice("hvf")


def test_hvf_missing_falls_back_to_tcg_with_reason() -> None:
    probes = accel.HostProbes(hvf=lambda: accel.hvf_problem(fake_sysctl("0")))
    choice = accel.choose("auto", "darwin", probes)
    assert choice.name == "tcg"
    assert "kern.hv_support" in choice.reason
    assert choice.warning.startswith("WARNING: no hardware acceleration, using TCG")


def test_whpx_used_when_the_platform_answers() -> None:
    probes = accel.HostProbes(whpx=fake_winhvplatform(""))
    assert accel.choose("auto", "win32", probes).name == "whpx"


def test_whpx_forced_but_missing_fails_in_the_accel_stage_with_hint() -> None:
    probes = accel.HostProbes(whpx=fake_winhvplatform("WHPX not usable: off — turn it on"))
    with pytest.raises(StageFailed) as err:
        accel.choose("whpx", "win32", probes)
    assert err.value.stage == "accel"
    assert err.value.hint == "turn it on"


def test_unknown_and_foreign_accelerators_are_refused() -> None:
    with pytest.raises(StageFailed, match="unknown accelerator"):
        accel.choose("xen", "linux")
    with pytest.raises(StageFailed, match="hvf is not available on linux"):
        accel.choose("hvf", "linux")


def test_tcg_forced_is_taken_without_probing() -> None:
    def never() -> str:
        raise AssertionError("probed")

    assert accel.choose("tcg", "linux", accel.HostProbes(kvm=never)).name == "tcg"


def test_this_host_kvm_is_judged_for_real() -> None:
    """Here /dev/kvm is kvm_pvm: the probe must say so; on a host with working KVM it
    must pick kvm."""
    problem = accel.kvm_problem()
    choice = accel.choose("auto", "linux")
    if Path("/sys/module/kvm_pvm").exists():
        assert "kvm_pvm" in problem
        assert choice.name == "tcg" and "kvm_pvm" in choice.reason
    else:
        assert choice.name == ("kvm" if not problem else "tcg")


def test_missing_kvm_device_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("flags\t\t: fpu vmx sse\n")
    problem = accel.kvm_problem(tmp_path / "kvm", tmp_path)
    assert "does not exist" in problem and "kvm_intel" in problem


def test_cpu_without_vmx_or_svm_is_named(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("flags\t\t: fpu sse\n")
    assert "no vmx/svm" in accel.kvm_problem(tmp_path / "kvm", tmp_path)
