"""The first-run checks' pure parts: version parsing, the firmware flags, the qemu check
against a real (stand-in) binary's output, and the rendered lines with their fixes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.firstrun import checks
from app.firstrun.cli import render
from machine import accel


def test_parse_qemu_version() -> None:
    assert checks.parse_qemu_version("QEMU emulator version 7.2.22 (Debian 1:7.2)") == (7, 2, 22)
    assert checks.parse_qemu_version("QEMU emulator version 9.1\n") == (9, 1, 0)
    assert checks.parse_qemu_version("qemu-img version 8.0.0") is None


def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str) -> None:
    binary = tmp_path / "qemu-system-x86_64"
    binary.write_text(f"#!/bin/sh\necho '{output}'\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_qemu_too_old_names_the_required_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_qemu(tmp_path, monkeypatch, "QEMU emulator version 5.2.0")
    r = checks.qemu(system="linux")
    assert r.status == checks.Status.FAIL
    assert "QEMU 5.2.0" in r.message and "needs 6.2 or newer" in r.message
    assert "upgrade QEMU to 6.2 or newer" in r.hint


def test_qemu_recent_is_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_qemu(tmp_path, monkeypatch, "QEMU emulator version 9.2.1")
    assert checks.qemu(system="linux").status == checks.Status.OK


@pytest.mark.parametrize(
    ("system", "hint"),
    [
        ("linux", "apt install qemu-system-x86"),
        ("darwin", "brew install qemu"),
        ("win32", "reinstall Dockyard"),
    ],
)
def test_qemu_missing_says_how_to_install_it_per_os(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, system: str, hint: str
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    r = checks.qemu(system=system)
    assert r.status == checks.Status.FAIL and "not installed" in r.message
    assert hint in r.hint


def sysroot(tmp_path: Path, flags: str, pvm: bool = False) -> Path:
    (tmp_path / "proc").mkdir(parents=True)
    (tmp_path / "proc/cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    if pvm:
        (tmp_path / "sys/module/kvm_pvm").mkdir(parents=True)
    return tmp_path


def test_firmware_flags(tmp_path: Path) -> None:
    ok = checks.firmware("linux", sysroot(tmp_path / "a", "fpu vmx sse"))
    assert ok.status == checks.Status.OK
    off = checks.firmware("linux", sysroot(tmp_path / "b", "fpu sse"))
    assert off.status == checks.Status.WARN and "disabled in the firmware" in off.message
    assert "VT-x or AMD-V" in off.hint
    vm = checks.firmware("linux", sysroot(tmp_path / "c", "fpu sse hypervisor"))
    assert "enable nested virtualization" in vm.hint
    pvm = checks.firmware("linux", sysroot(tmp_path / "d", "fpu hypervisor", pvm=True))
    assert pvm.status == checks.Status.SKIPPED
    assert checks.firmware("darwin").status == checks.Status.SKIPPED


def test_accelerator_on_macos_and_windows_through_the_probes() -> None:
    bad = accel.HostProbes(hvf=lambda: "HVF not usable: no — do this", whpx=lambda: "")
    r = checks.accelerator("darwin", probes=bad)
    assert r.status == checks.Status.WARN and r.hint == "do this" and "TCG" in r.message
    assert checks.accelerator("win32", probes=bad).status == checks.Status.OK


def test_accelerator_missing_device(tmp_path: Path) -> None:
    r = checks.accelerator("linux", tmp_path / "kvm", sysroot(tmp_path / "root", "vmx"))
    assert r.status == checks.Status.WARN and "does not exist" in r.message
    assert "kvm_intel or kvm_amd" in r.hint


def test_ports_free_and_taken() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        r = checks.ports([port])
    assert r.status == checks.Status.FAIL and f"port {port}" in r.message
    assert checks.ports([]).status == checks.Status.SKIPPED


def test_render_shows_the_fix_of_warnings_and_failures_only() -> None:
    lines = render(
        [
            checks.CheckResult("qemu", checks.Status.OK, "QEMU 7.2", "unused"),
            checks.CheckResult("disk", checks.Status.FAIL, "full", "free some"),
        ]
    )
    assert lines[0].startswith("ok") and "unused" not in "\n".join(lines)
    assert lines[1].startswith("FAIL") and lines[2].strip() == "fix: free some"
