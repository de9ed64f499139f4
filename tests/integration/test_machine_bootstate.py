"""The saved boot, for real under QEMU: the first start saves the guest parked at its
boot checkpoint, later starts load it, and whatever is wrong with a saved state (damaged,
made for another seed) costs one fresh boot, never the machine's data.

Each start checks what a user relies on after it: the data disk's contents, a 9p share
mounted after the wake-up, and a guest clock set from the host's.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from machine import bootstate, filenames
from machine.backend import MachineSpec, ShareSpec, StageStatus
from machine.qemu_backend import QemuBackend
from tests.integration.test_machine_qemu import IMAGE, pytestmark, qemu_pids, stop_quietly

__all__ = ["pytestmark"]  # the same skip as the other guest tests

FRESH = ["accel", "qemu", "kernel", "init", "network", "checkpoint", "sshd", "engine"]


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QemuBackend]:
    base = tmp_path_factory.mktemp("bootstate")
    share = base / "share"
    share.mkdir()
    (share / "hello").write_text("from the host\n")
    spec = MachineSpec(
        name="bs",
        directory=base / "m",
        memory_mb=1024,
        disk_gb=2,
        image_dir=IMAGE,
        shares=[ShareSpec(share, "/mnt/share", "9p")],
    )
    backend = QemuBackend(spec)
    try:
        yield backend
    finally:
        stop_quietly(backend)
    assert qemu_pids(spec.directory) == []


def names(stages: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(s.name, str(s.status)) for s in stages]


def guest(backend: QemuBackend, command: str) -> str:
    out = subprocess.run(
        backend.ssh_argv(["sh", "-c", f"'{command}'"]), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def docker(backend: QemuBackend, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONTEXT"}
    env["DOCKER_HOST"] = f"unix://{backend.socket_path()}"
    out = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def check_running(backend: QemuBackend) -> None:
    """The data disk, the share and the clock, as a user would find them."""
    assert "keep" in docker(backend, "volume", "ls", "-q").split()
    assert guest(backend, "cat /mnt/share/hello") == "from the host"
    assert abs(int(guest(backend, "date +%s")) - time.time()) < 2
    assert int(guest(backend, 'grep -c " /var/lib/dockyard ext4 " /proc/mounts')) == 1


def test_the_first_start_boots_and_saves_the_parked_guest(machine: QemuBackend) -> None:
    stages = machine.start()
    assert [n for n, _ in names(stages)] == FRESH
    assert "boot state saved" in stages[5].detail
    state = machine.path(filenames.BOOT_STATE)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    meta = bootstate.read_meta(machine.dir)
    assert meta is not None and meta.saved and meta.size == state.stat().st_size
    docker(machine, "volume", "create", "keep")
    check_running(machine)
    machine.stop()


def test_the_next_start_loads_the_saved_state(machine: QemuBackend) -> None:
    saved = machine.path(filenames.BOOT_STATE).stat().st_mtime_ns
    stages = machine.start()
    assert names(stages) == [
        (n, str(StageStatus.DONE)) for n in ("accel", "restore", "sshd", "engine")
    ]
    check_running(machine)
    # A second restore from the same state: the guest is woken afresh each time.
    (machine.dir.parent / "share" / "second").write_text("2\n")
    machine.stop()
    assert [s.name for s in machine.start()][1] == "restore"
    assert guest(machine, "cat /mnt/share/second") == "2"
    check_running(machine)
    machine.stop()
    assert machine.path(filenames.BOOT_STATE).stat().st_mtime_ns == saved


def test_a_damaged_state_costs_one_fresh_boot_and_is_replaced(machine: QemuBackend) -> None:
    state = machine.path(filenames.BOOT_STATE)
    with state.open("r+b") as f:
        f.seek(4096)
        f.write(b"\xff" * 4096)
    stages = machine.start()
    assert names(stages)[:2] == [
        ("accel", str(StageStatus.DONE)),
        ("restore", str(StageStatus.FAILED)),
    ]
    assert [n for n, _ in names(stages)[2:]] == FRESH[1:]
    assert "QEMU could not load the saved boot state" in stages[1].detail
    assert "boot state saved" in stages[6].detail
    check_running(machine)
    machine.stop()


def test_another_seed_boots_afresh_and_saves_its_own_state(machine: QemuBackend) -> None:
    before = bootstate.read_meta(machine.dir)
    machine.spec.engine_args = ["--log-level", "debug"]
    try:
        stages = machine.start()
        assert [n for n, _ in names(stages)] == FRESH
        check_running(machine)
        machine.stop()
        meta = bootstate.read_meta(machine.dir)
        assert before is not None and meta is not None and meta.key != before.key
    finally:
        machine.spec.engine_args = []


def test_start_fresh_discards_the_state(machine: QemuBackend) -> None:
    bootstate.discard(machine.dir)
    assert [n for n, _ in names(machine.start())] == FRESH
    machine.stop()
    assert machine.path(filenames.BOOT_STATE).exists()


def test_no_saved_boot_never_writes_one(machine: QemuBackend) -> None:
    bootstate.discard(machine.dir)
    machine.spec.saved_boot = False
    try:
        stages = machine.start()
        assert [n for n, _ in names(stages)] == FRESH
        assert stages[5].detail == "saved boot off"
        machine.stop()
        assert not machine.path(filenames.BOOT_STATE).exists()
    finally:
        machine.spec.saved_boot = True


def test_a_full_disk_while_saving_leaves_the_boot_going(tmp_path: Path) -> None:
    """The machine directory on a filesystem too small for the state: the start succeeds,
    says why nothing was saved, leaves no partial file, and the next start tries again."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "dockyard-test", str(mnt)], check=True
    )
    spec = MachineSpec(name="full", directory=mnt / "m", memory_mb=512, disk_gb=1, image_dir=IMAGE)
    backend = QemuBackend(spec)
    try:
        stages = backend.start()
        assert [s.name for s in stages] == FRESH
        assert "boot state not saved" in stages[5].detail, stages[5].detail
        assert not backend.path(filenames.BOOT_STATE).exists()
        assert not backend.path(filenames.BOOT_STATE + ".part").exists()
        assert bootstate.should_save(backend.dir, backend._state_key)
        docker(backend, "ps")  # the engine answers
    finally:
        stop_quietly(backend)
        subprocess.run(["umount", str(mnt)], check=False)
    assert qemu_pids(spec.directory) == []
