"""QEMU's own error lines (as qemu-system-x86_64 7.2 prints them) become a stage message
and a hint the user can act on."""

from __future__ import annotations

from pathlib import Path

from machine.qemu_backend import diagnose_qemu, tsc_khz

KERNEL = Path("/img/vmlinux")


def test_busy_port() -> None:
    log = (
        "qemu-system-x86_64: -netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22: "
        "Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'"
    )
    message, hint = diagnose_qemu(log, 2222, KERNEL)
    assert message == "the SSH port 127.0.0.1:2222 is already in use"
    assert "ssh_port" in hint


def test_missing_kernel() -> None:
    log = "qemu: could not open kernel file '/img/vmlinux': No such file or directory"
    assert diagnose_qemu(log, 1, KERNEL) == (
        "QEMU could not load the kernel /img/vmlinux",
        "rebuild the image: make images",
    )


def test_wrong_kernel() -> None:
    message, hint = diagnose_qemu("qemu: invalid kernel header", 1, KERNEL)
    assert message == "/img/vmlinux is not a bootable kernel for this machine type"
    assert "PVH vmlinux" in hint


def test_anything_else_shows_qemus_last_line() -> None:
    message, _ = diagnose_qemu("warning: x\nqemu: something odd\n", 1, KERNEL)
    assert message == "QEMU exited: qemu: something odd"


def test_tsc_khz_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu MHz\t\t: 2445.406\n")
    assert tsc_khz(cpuinfo) == 2445406
    assert tsc_khz(tmp_path / "missing") == 0
