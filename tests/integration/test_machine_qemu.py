"""The qemu machine backend, booted for real (TCG here: stage timeouts are TCG-sized).

Acceptance 1: the debian image boots; through the forwarded socket the real docker CLI
lists, pulls from the host's local registry (the guest reaches the host's 127.0.0.1 as
10.0.2.2 through user-mode networking), runs, follows logs and execs on a pty; after a stop
and a start the pulled image is still on the data disk.
Acceptance 3: a missing or wrong kernel, a busy SSH port, an unusable KVM (forced) and a
guest that never reaches sshd each fail in their stage, with the stage's hint, within its
timeout, and leave no QEMU process behind.
Acceptance 4 (a changed host key) runs against a real sshd in test_machine_forward.py and
here against the guest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from machine import accel, bootstate, filenames, keys, ssh
from machine.backend import MachineSpec, MachineState, ShareSpec, StageFailed, StageStatus
from machine.qemu_backend import DEFAULT_IMAGE, QemuBackend
from tests.ptyio import pty_session

# DOCKYARD_VMIMAGE: boot another image directory than the default build.
IMAGE = Path(os.environ.get("DOCKYARD_VMIMAGE", str(DEFAULT_IMAGE)))

pytestmark = pytest.mark.skipif(
    not (IMAGE / "manifest.json").is_file() or shutil.which("qemu-system-x86_64") is None,
    reason="needs qemu-system-x86_64 and the debian guest image (make images)",
)


def qemu_pids(directory: Path) -> list[int]:
    """QEMU processes whose command line names `directory` (ours, and only ours)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and argv[0].startswith(b"qemu-system")
            and str(directory).encode() in b" ".join(argv)
        ):
            found.append(int(proc.name))
    return found


@dataclass
class Booted:
    backend: QemuBackend
    registry: str  # the registry as the guest sees it: 10.0.2.2:PORT
    config_dir: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DOCKER_CONTEXT", None)
        env["DOCKER_HOST"] = f"unix://{self.backend.socket_path()}"
        env["DOCKER_CONFIG"] = str(self.config_dir)
        return env

    def docker(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        return out


def stop_quietly(backend: QemuBackend) -> None:
    try:
        backend.stop(timeout=30)
    finally:
        for pid in qemu_pids(backend.dir):
            os.kill(pid, 9)


@pytest.fixture(scope="module")
def booted(registry_with_images: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    base = tmp_path_factory.mktemp("vm")
    port = registry_with_images.rsplit(":", 1)[1]
    share = base / "share"
    share.mkdir()
    (share / "hello.txt").write_text("hello from the host\n")
    spec = MachineSpec(
        name="acc",
        directory=base / "m",
        cpus=2,
        memory_mb=1024,
        disk_gb=4,
        image_dir=IMAGE,
        engine_args=["--insecure-registry", f"10.0.2.2:{port}"],
        shares=[
            ShareSpec(share, "/mnt/vfs", "virtiofs"),
            ShareSpec(share, "/mnt/9p", "9p", readonly=True),
        ],
    )
    backend = QemuBackend(spec)
    try:
        backend.start()
        yield Booted(backend, f"10.0.2.2:{port}", base / "docker-config")
    finally:
        stop_quietly(backend)
    assert qemu_pids(spec.directory) == []


def test_start_reports_every_stage_and_serves_a_private_socket(booted: Booted) -> None:
    doc = json.loads(booted.backend.path(filenames.STAGES).read_text())
    assert [s["name"] for s in doc] == [
        "accel",
        "qemu",
        "kernel",
        "init",
        "network",
        "checkpoint",
        "sshd",
        "engine",
    ]
    assert all(s["status"] == "done" for s in doc)
    # QEMU 7.2 cannot migrate a vhost-user-fs device: with a virtiofs share every start
    # boots afresh, and the reason is recorded once instead of retried.
    meta = bootstate.read_meta(booted.backend.dir)
    assert meta is not None and not meta.saved and meta.reason
    assert "boot state not saved" in doc[5]["detail"]
    assert not booted.backend.path(filenames.BOOT_STATE).exists()
    assert stat.S_IMODE(booted.backend.socket_path().stat().st_mode) == 0o600
    status = booted.backend.status()
    assert status.state == MachineState.RUNNING
    assert status.accel == accel.choose().name


def test_docker_ps_pull_run_logs_exec(booted: Booted) -> None:
    ps = booted.docker("ps")
    assert ps.returncode == 0 and ps.stdout.startswith("CONTAINER ID"), ps.stderr
    pull = booted.docker("pull", f"{booted.registry}/busybox")
    assert pull.returncode == 0, pull.stderr
    assert booted.docker("tag", f"{booted.registry}/busybox", "busybox").returncode == 0

    run = booted.docker("run", "--rm", "busybox", "echo", "hi")
    assert (run.returncode, run.stdout) == (0, "hi\n"), run.stderr

    cid = booted.docker("run", "-d", "busybox", "sh", "-c", "echo one; sleep 1; echo two")
    assert cid.returncode == 0, cid.stderr
    logs = booted.docker("logs", "-f", cid.stdout.strip())
    assert (logs.returncode, logs.stdout) == (0, "one\ntwo\n"), logs.stderr

    assert booted.docker("run", "-d", "--name", "sh1", "busybox", "sleep", "1000").returncode == 0
    code, out = pty_session(
        booted.env,
        ["docker", "exec", "-it", "sh1", "sh"],
        b"tty; echo marker-$((6*7)); exit 7\n",
        timeout=60,
    )
    assert b"/dev/pts/" in out and b"marker-42" in out, out
    assert code == 7
    assert booted.docker("rm", "-f", "sh1").returncode == 0


def test_a_changed_guest_host_key_is_refused(booted: Booted, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    keys.ensure(other)
    for name in (filenames.SSH_KEY, filenames.SSH_KEY_PUB):
        (other / name).write_bytes(booted.backend.path(name).read_bytes())
    port = int(booted.backend.path(filenames.SSH_PORT).read_text())
    with pytest.raises(ssh.HostKeyChanged, match="refusing to connect"):
        ssh.connect(other, port, time.monotonic() + 30)


def test_ssh_runs_a_command_with_the_pinned_key(booted: Booted) -> None:
    out = subprocess.run(
        booted.backend.ssh_argv(["cat", "/proc/sys/kernel/hostname"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stdout.strip()) == (0, "dockyard"), out.stderr


def test_virtiofs_and_9p_shares_show_the_host_directory(booted: Booted) -> None:
    out = subprocess.run(
        booted.backend.ssh_argv(["cat", "/mnt/vfs/hello.txt", "/mnt/9p/hello.txt"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stdout) == (0, "hello from the host\n" * 2), out.stderr


def test_stop_then_start_keeps_the_pulled_image(booted: Booted) -> None:
    """Runs last in this module: it restarts the shared machine."""
    booted.backend.stop(timeout=60)
    assert qemu_pids(booted.backend.dir) == []
    assert booted.backend.status().state == MachineState.STOPPED
    assert not booted.backend.socket_path().exists()
    booted.backend.start()
    images = booted.docker("images", "--format", "{{.Repository}}")
    assert images.returncode == 0, images.stderr
    assert "busybox" in images.stdout.split()


# -- acceptance 3: failures in their stage, nothing left behind ---------------------------


def fake_image(
    base: Path, kernel: bytes | None, initrd: bytes | None = None, checkpoint: bool = True
) -> Path:
    """An image dir with the real image's files except the ones given; `checkpoint` False
    for an init of its own that does not hold our boot checkpoint."""
    image = base / "image"
    image.mkdir()
    manifest = json.loads((IMAGE / "manifest.json").read_text())
    boot = manifest["boot"]
    boot["checkpoint"] = checkpoint
    for key, data in (("kernel", kernel), ("initrd", initrd)):
        target = image / boot[key]
        if data is None:
            target.symlink_to(IMAGE / boot[key])
        elif data != b"<missing>":
            target.write_bytes(data)
    if boot.get("rootfs"):
        (image / boot["rootfs"]).symlink_to(IMAGE / boot["rootfs"])
    (image / "manifest.json").write_text(json.dumps(manifest))
    return image


def failing_start(
    tmp_path: Path, timeouts: dict[str, float] | None = None, **spec_kw: object
) -> StageFailed:
    spec_kw.setdefault("image_dir", IMAGE)
    spec = MachineSpec(name="bad", directory=tmp_path / "m", memory_mb=512, disk_gb=1, **spec_kw)  # type: ignore[arg-type]
    backend = QemuBackend(spec, timeouts=timeouts)
    try:
        with pytest.raises(StageFailed) as err:
            backend.start()
    finally:
        leftovers = qemu_pids(spec.directory)
        stop_quietly(backend)
    assert leftovers == []
    assert backend.status().state == MachineState.STOPPED
    assert err.value.hint
    return err.value


def test_missing_kernel_fails_in_the_qemu_stage(tmp_path: Path) -> None:
    err = failing_start(tmp_path, image_dir=fake_image(tmp_path, b"<missing>"))
    assert err.stage == "qemu" and "does not exist" in err.message
    assert "make images" in err.hint


def test_wrong_kernel_fails_in_the_qemu_stage(tmp_path: Path) -> None:
    err = failing_start(tmp_path, image_dir=fake_image(tmp_path, b"not a kernel\n" * 100))
    assert err.stage == "qemu", err
    assert "make images" in err.hint


def test_busy_ssh_port_fails_in_the_qemu_stage(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        err = failing_start(tmp_path, ssh_port=port)
    assert err.stage == "qemu"
    assert f"127.0.0.1:{port} is already in use" in err.message
    assert "ssh_port" in err.hint


def test_forced_kvm_without_dev_kvm_fails_in_the_accel_stage(tmp_path: Path) -> None:
    sysroot = tmp_path / "sysroot"
    (sysroot / "proc").mkdir(parents=True)
    (sysroot / "proc/cpuinfo").write_text("flags\t\t: fpu vmx\n")
    probes = accel.HostProbes(kvm=lambda: accel.kvm_problem(sysroot / "dev/kvm", sysroot))
    spec = MachineSpec(name="nokvm", directory=tmp_path / "m", accel="kvm")
    backend = QemuBackend(spec, probes=probes)
    with pytest.raises(StageFailed) as err:
        backend.start()
    assert err.value.stage == "accel"
    assert "does not exist" in err.value.message and "kvm_intel" in err.value.hint
    assert qemu_pids(spec.directory) == []


def test_forced_kvm_on_this_host_names_the_reason(tmp_path: Path) -> None:
    problem = accel.kvm_problem()
    if not problem:
        pytest.skip("KVM works here")
    backend = QemuBackend(MachineSpec(name="k", directory=tmp_path / "m", accel="kvm"))
    with pytest.raises(StageFailed) as err:
        backend.start()
    assert err.value.stage == "accel"
    assert err.value.message in problem
    assert qemu_pids(backend.dir) == []


def never_sshd_initramfs(path: Path) -> None:
    """A guest whose init reports init and network, then never starts sshd."""
    init = (
        b"#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n"
        b"echo dockyard-stage init 0.1 >/dev/console\n"
        b"echo dockyard-stage network 0.2 >/dev/console\n"
        b"while :; do /bin/busybox sleep 3600; done\n"
    )
    entries = [
        ("bin", 0o040755, b"", 0),
        ("proc", 0o040755, b"", 0),
        ("dev", 0o040755, b"", 0),
        ("dev/console", 0o020600, b"", 1),  # char 5:1, so init has its stdio and echo works
        ("bin/busybox", 0o100755, Path("/bin/busybox").read_bytes(), 0),
        ("init", 0o100755, init, 0),
    ]
    out = bytearray()
    for ino, (name, mode, data, console) in enumerate([*entries, ("TRAILER!!!", 0, b"", 0)], 1):
        rdev = [5, 1] if console else [0, 0]
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(name) + 1, 0]
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    path.write_bytes(bytes(out))


def test_a_guest_that_never_reaches_sshd_fails_in_the_sshd_stage(tmp_path: Path) -> None:
    initrd = tmp_path / "never.cpio"
    never_sshd_initramfs(initrd)
    image = fake_image(tmp_path, None, initrd.read_bytes(), checkpoint=False)
    err = failing_start(tmp_path, timeouts={"sshd": 20.0}, image_dir=image)
    assert err.stage == "sshd", err
    assert "no SSH answer" in err.message
    assert "dockyard-stage network" in err.log_tail


def test_status_of_a_stage_list_is_recorded_even_on_failure(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        failing_start(tmp_path, ssh_port=holder.getsockname()[1])
    doc = json.loads((tmp_path / "m" / filenames.STAGES).read_text())
    assert [(s["name"], s["status"]) for s in doc] == [
        ("accel", str(StageStatus.DONE)),
        ("qemu", str(StageStatus.FAILED)),
    ]


def test_a_killed_qemu_is_reported_crashed_with_its_log(booted: Booted) -> None:
    """Runs after the restart: QEMU killed -9 leaves its pidfile; status says crashed, the
    serial log is kept, and the forwarder notices and removes the socket."""
    pid = booted.backend.qemu_pid()
    assert pid is not None
    fwd = booted.backend.forward_pid()
    os.kill(pid, 9)
    deadline = time.monotonic() + 30
    while booted.backend.qemu_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    status = booted.backend.status()
    assert status.state == MachineState.CRASHED
    assert "the serial log is kept" in status.detail
    assert "dockyard-stage engine" in booted.backend.logs()
    while fwd is not None and booted.backend.forward_pid() is not None:
        assert time.monotonic() < deadline, "the forwarder outlived QEMU"
        time.sleep(0.1)
    assert not booted.backend.socket_path().exists()
    booted.backend.stop()
    assert booted.backend.status().state == MachineState.STOPPED


def test_a_start_whose_guest_offers_another_host_key_fails_in_sshd(tmp_path: Path) -> None:
    """Acceptance 4 through start: the guest gets the machine's host key from the seed, but
    the host now pins another one (as if something else answered): refused, clearly."""
    spec = MachineSpec(name="hk", directory=tmp_path / "m", memory_mb=512, disk_gb=1)
    spec.image_dir = IMAGE
    backend = QemuBackend(spec)
    backend.create()
    other = tmp_path / "other"
    other.mkdir()
    keys.ensure(other)
    (spec.directory / filenames.HOST_KEY_PUB).write_bytes(
        (other / filenames.HOST_KEY_PUB).read_bytes()
    )
    try:
        with pytest.raises(StageFailed) as err:
            backend.start()
    finally:
        leftovers = qemu_pids(spec.directory)
        stop_quietly(backend)
    assert leftovers == []
    assert err.value.stage == "sshd"
    assert "refusing to connect" in err.value.message
    assert keys.pinned_host_key(other) in err.value.message
    assert "dockyard machine rm" in err.value.hint
