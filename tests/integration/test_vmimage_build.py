"""The debian guest image: built twice to the same bytes, and booted for real under QEMU.

The boot is a smoke test of the image, not of the machine backend (machine/
owns the real one): a plain qemu command line with the guest contract's seed
(fw_cfg), data disk (serial dockyard-data) and root disk (serial dockyard-root).
It checks the stage markers, sshd with the seeded host key and authorized
key, the engine's /_ping through an SSH-forwarded unix socket, a container
run, ext4 made on first boot and kept across a reboot, and a clean poweroff
from the ACPI power button.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_process import free_port
from vmimage import build, manifest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
QEMU = shutil.which("qemu-system-x86_64")
SIZE_LIMIT = 60 * 1024 * 1024
STAGES = ("init", "modules", "seed", "network", "sshd", "data", "engine")
BOOT_TIMEOUT = 400.0  # TCG on a shared 2-core machine; a quiet machine needs about 10 s

needs_tools = pytest.mark.skipif(
    not (QEMU and shutil.which("ssh") and shutil.which("mkfs.erofs") and os.geteuid() == 0),
    reason="needs root, qemu-system-x86_64, ssh and erofs-utils (make deps)",
)


# Both builds bundle the engine of one commit, whatever others commit meanwhile.
ENGINE_COMMIT = (
    subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    or "worktree"
)


def build_into(out: Path) -> dict[str, str]:
    opts = build.BuildOptions(
        recipe="debian",
        arch="x86_64",
        out=out,
        cache=build.default_cache(REPO),
        epoch=1700000000,
        engine_source=ENGINE_COMMIT,
    )
    return build.build(opts)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("image")
    build_into(out)
    return out


@needs_tools
def test_a_second_build_gives_the_same_bytes(image: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_into(again)
    names = sorted(p.name for p in image.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (image / name).read_bytes() == (again / name).read_bytes(), name


@needs_tools
def test_manifest_records_inputs_outputs_and_size(image: Path) -> None:
    doc = manifest.load(image / "manifest.json")
    assert (doc["recipe"], doc["arch"], doc["source_date_epoch"]) == (
        "debian",
        "x86_64",
        1700000000,
    )
    names = {i["name"] for i in doc["inputs"]}
    for needed in (
        "busybox-static",
        "python3.11-minimal",
        "openssh-server",
        "nftables",
        "e2fsprogs",
        "engine",
    ):
        assert needed in names
    assert any(n.startswith("linux-image-") for n in names)
    for i in doc["inputs"]:
        assert re.fullmatch(r"[0-9a-f]{64}", i["sha256"]) and i["version"] and i["source"]
    for name, digest in doc["outputs"].items():
        assert hashlib.sha256((image / name).read_bytes()).hexdigest() == digest
    boot = doc["boot"]
    assert boot["pvh"] is True and boot["kernel"] == "vmlinux"
    assert (boot["rootfs"], boot["rootfs_serial"]) == ("rootfs.erofs", "dockyard-root")
    assert "console=ttyS0" in boot["cmdline"] and "ext4" in boot["modules"]
    size = doc["size"]["compressed_bytes"]
    print(f"compressed image size: {size / 1e6:.1f} MB")
    assert size < SIZE_LIMIT


class Guest:
    """One qemu process booting the image; always killed by PID on exit."""

    def __init__(self, image: Path, work: Path, seed: Path, data: Path) -> None:
        self.image, self.work, self.seed, self.data = image, work, seed, data
        self.serial = work / "serial.log"
        self.qmp = work / "qmp.sock"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        doc = manifest.load(self.image / "manifest.json")
        mhz = next(
            float(line.split(":")[1])
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("cpu MHz")
        )
        cmdline = f"{doc['boot']['cmdline']} tsc_early_khz={int(mhz * 1000)}"
        assert QEMU
        return [
            QEMU,
            "-M",
            "microvm",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-smp",
            "2",
            "-m",
            "1024",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            f"file:{self.serial}",
            "-qmp",
            f"unix:{self.qmp},server,nowait",
            "-kernel",
            str(self.image / "vmlinux"),
            "-initrd",
            str(self.image / "initramfs.img"),
            "-append",
            cmdline,
            "-fw_cfg",
            f"name=opt/dockyard/seed,file={self.seed}",
            "-drive",
            f"id=root,file={self.image / 'rootfs.erofs'},format=raw,if=none,readonly=on",
            "-device",
            "virtio-blk-device,drive=root,serial=dockyard-root",
            "-drive",
            f"id=data,file={self.data},format=raw,if=none",
            "-device",
            "virtio-blk-device,drive=data,serial=dockyard-data",
            "-netdev",
            f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
            "-device",
            "virtio-net-device,netdev=n0",
        ]

    def __enter__(self) -> Guest:
        self.serial.unlink(missing_ok=True)
        self.qmp.unlink(missing_ok=True)
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def console(self) -> str:
        return self.serial.read_text(errors="replace") if self.serial.exists() else ""

    def wait_stage(self, name: str, timeout: float = BOOT_TIMEOUT) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.console()
            fail = re.search(r"^dockyard-fail .*$", text, re.M)
            assert not fail, f"{fail.group(0)}\n{text}"
            found = re.search(rf"^dockyard-stage {name} ([0-9.]+)$", text, re.M)
            if found:
                return float(found.group(1))
            assert self.proc and self.proc.poll() is None, f"qemu exited\n{text}"
            time.sleep(0.2)
        raise AssertionError(f"no {name} stage within {timeout} s\n{self.console()}")

    def qmp_command(self, command: str) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.qmp))
            f = s.makefile("rw")
            f.readline()
            for cmd in ("qmp_capabilities", command):
                f.write(json.dumps({"execute": cmd}) + "\n")
                f.flush()
                reply = json.loads(f.readline())
                while "event" in reply:  # events may come before the reply
                    reply = json.loads(f.readline())
                assert "return" in reply, reply

    def wait_exit(self, timeout: float) -> int:
        assert self.proc
        return self.proc.wait(timeout)


class Keys:
    def __init__(self, work: Path) -> None:
        self.client = work / "client"
        self.host = work / "hostkey"
        for path, comment in ((self.client, "dockyard-host"), (self.host, "dockyard-guest")):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                check=True,
            )

    def seed(self, path: Path) -> Path:
        doc = {
            "version": 1,
            "hostname": "dockyard",
            "authorized_keys": [self.client.with_suffix(".pub").read_text().strip()],
            "host_key": self.host.read_text(),
            "engine_args": [],
            "shares": [],
            "time": int(time.time()),
            "data_device_serial": "dockyard-data",
        }
        path.write_text(json.dumps(doc))
        return path

    def ssh_argv(self, port: int, known_hosts: Path) -> list[str]:
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "ConnectTimeout=30",
            "-i",
            str(self.client),
            "-p",
            str(port),
            "root@127.0.0.1",
        ]

    def known_hosts(self, port: int, path: Path, key: Path | None = None) -> Path:
        pub = (key or self.host).with_suffix(".pub").read_text().split()[:2]
        path.write_text(f"[127.0.0.1]:{port} {' '.join(pub)}\n")
        return path


def ssh(keys: Keys, guest: Guest, command: str, known: Path) -> subprocess.CompletedProcess[str]:
    argv = [*keys.ssh_argv(guest.port, known), command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@contextlib.contextmanager
def forwarded_socket(keys: Keys, guest: Guest, known: Path, local: Path) -> Iterator[Path]:
    """The guest engine's socket on a local path, carried by ssh -L (direct-streamlocal)."""
    argv = [*keys.ssh_argv(guest.port, known), "-N", "-L", f"{local}:/run/dockyard/docker.sock"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not local.exists():
            assert proc.poll() is None, "ssh -L exited"
            assert time.monotonic() < deadline, "ssh -L made no socket"
            time.sleep(0.1)
        yield local
    finally:
        proc.terminate()
        proc.wait()


def http_get(sock: Path, path: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(str(sock))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: engine\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@needs_tools
def test_boot_seed_ssh_engine_container_and_data_disk(image: Path, tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    seed = keys.seed(tmp_path / "seed.json")
    data = tmp_path / "data.img"
    with data.open("wb") as f:
        f.truncate(1 << 30)
    with Guest(image, tmp_path, seed, data) as guest:
        times = [guest.wait_stage(name) for name in STAGES]
        assert times == sorted(times), guest.console()
        known = keys.known_hosts(guest.port, tmp_path / "known_hosts")
        out = ssh(
            keys, guest, "echo ok; hostname; mount; cat /sys/fs/cgroup/cgroup.controllers", known
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[:2] == ["ok", "dockyard"]
        assert any(" /var/lib/dockyard type ext4 " in line for line in lines), out.stdout
        assert "memory" in lines[-1] and "pids" in lines[-1]
        # A host key other than the seeded one is refused: the key is pinned, not learned.
        other = tmp_path / "other"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True
        )
        wrong = keys.known_hosts(guest.port, tmp_path / "wrong_hosts", other)
        refused = ssh(keys, guest, "true", wrong)
        assert refused.returncode != 0 and "HOST IDENTIFICATION HAS CHANGED" in refused.stderr
        with forwarded_socket(keys, guest, known, tmp_path / "docker.sock") as sock:
            reply = http_get(sock, "/_ping")
            assert reply.startswith("HTTP/1.") and reply.endswith("OK"), reply
            run_container(sock)
        assert (
            ssh(keys, guest, "echo kept > /var/lib/dockyard/marker && sync", known).returncode == 0
        )
        guest.qmp_command("system_powerdown")
        assert guest.wait_exit(120) == 0
        assert "dockyard-stage shutdown" in guest.console()
    fsck = subprocess.run(["e2fsck", "-fn", str(data)], capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr  # unmounted cleanly at power-off
    with Guest(image, tmp_path, seed, data) as guest:
        guest.wait_stage("data")
        known = keys.known_hosts(guest.port, tmp_path / "known_hosts")
        out = ssh(keys, guest, "cat /var/lib/dockyard/marker; ls /var/lib/dockyard", known)
        assert out.stdout.splitlines()[0] == "kept", out.stdout + out.stderr
        assert "images" in out.stdout  # the engine's state from the first boot is there
        guest.wait_stage("engine")
        assert ssh(keys, guest, "poweroff", known).returncode in (0, 255)
        assert guest.wait_exit(120) == 0


def run_container(sock: Path) -> None:
    """Load the busybox test image through the forwarded socket and run it."""
    images = REPO / ".cache" / "test-images" / "busybox"
    if not images.exists():
        subprocess.run(
            ["python3", "scripts/build_test_images.py", "--out", str(images.parent)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
    tar = subprocess.run(["tar", "-C", str(images), "-c", "."], capture_output=True, check=True)
    load = subprocess.run(
        ["docker", "load"], input=tar.stdout, env=env, capture_output=True, check=True
    )
    image_id = load.stdout.decode().split()[-1]
    run = subprocess.run(
        ["docker", "run", "--rm", image_id, "echo", "hi from the guest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0 and run.stdout == "hi from the guest\n", run.stderr
