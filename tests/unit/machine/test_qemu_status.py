"""What status() concludes from the machine directory alone (no VM needed)."""

from __future__ import annotations

from pathlib import Path

from machine import filenames
from machine.backend import MachineSpec, MachineState
from machine.procs import owned_pid
from machine.qemu_backend import QemuBackend


def backend(tmp_path: Path) -> QemuBackend:
    return QemuBackend(MachineSpec(name="s", directory=tmp_path / "m"))


def test_not_created_then_stopped(tmp_path: Path) -> None:
    b = backend(tmp_path)
    assert b.status().state == MachineState.NOT_CREATED
    (tmp_path / "m").mkdir()
    assert b.status().state == MachineState.STOPPED


def test_a_leftover_pidfile_of_a_dead_qemu_is_a_crash_with_the_serial_tail(
    tmp_path: Path,
) -> None:
    b = backend(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / filenames.QEMU_PID).write_text("999999999\n")
    (tmp_path / "m" / filenames.SERIAL_LOG).write_text("dockyard-stage init 1.0\nOops\n")
    status = b.status()
    assert status.state == MachineState.CRASHED
    assert status.detail.endswith("dockyard-stage init 1.0\nOops")


def test_a_recycled_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    pidfile = tmp_path / "qemu.pid"
    pidfile.write_text("1\n")  # alive, but its command line does not name our directory
    assert owned_pid(pidfile, str(tmp_path)) is None
