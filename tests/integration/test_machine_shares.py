"""Shared folders in a booted machine (issue 6), one machine for the module, one share per
mode (virtiofs, 9p, sync), each at its host path in the guest so `-v $D:$D` just works.

Acceptance 1: a container reads a file written on the host, and its write appears on the
host (sync: within 1 s of `docker run` returning, the latency printed).
Acceptance 2: host-side create, modify and delete reach an inotify watch in a container
bind-mounting the folder (printed latencies; the letters allowed per change are what each
mode produces, see machine/replay_agent.py: 9p and virtiofs replay a create as IN_MODIFY
and a delete as IN_CREATE+IN_DELETE of a placeholder; sync writes by temp-then-rename).
Debian's busybox-static has no `inotifyd` applet, so a stand-in with its letters is built
static from tools/inotifyd.c and shared read-only into the guest and the container.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from machine import sharehost
from machine.backend import MachineSpec, ShareSpec
from machine.qemu_backend import QemuBackend
from tests.integration.test_machine_qemu import IMAGE, qemu_pids, stop_quietly

MODES = ("virtiofs", "9p", "sync")
TOOL = Path(__file__).with_name("tools") / "inotifyd.c"

pytestmark = pytest.mark.skipif(
    not (IMAGE / "manifest.json").is_file()
    or shutil.which("qemu-system-x86_64") is None
    or shutil.which("gcc") is None,
    reason="needs qemu-system-x86_64, gcc (static) and the debian guest image (make images)",
)


@dataclass
class Vm:
    backend: QemuBackend
    dirs: dict[str, Path]
    tool: Path

    def docker(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env.pop("DOCKER_CONTEXT", None)
        env["DOCKER_HOST"] = f"unix://{self.backend.socket_path()}"
        return subprocess.run(
            ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="module")
def vm(registry_with_images: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm]:
    base = tmp_path_factory.mktemp("shares")
    dirs = {mode: base / mode for mode in MODES}
    for mode, d in dirs.items():
        d.mkdir()
        (d / "f").write_text(f"from the host, {mode}\n")
    tools = base / "tools"  # the engine has no `docker cp` into a container: a share
    tools.mkdir()
    tool = tools / "inotifyd"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(tool), str(TOOL)], check=True)
    port = registry_with_images.rsplit(":", 1)[1]
    spec = MachineSpec(
        name="shares",
        directory=base / "m",
        cpus=2,
        memory_mb=1024,
        disk_gb=4,
        image_dir=IMAGE,
        engine_args=["--insecure-registry", f"10.0.2.2:{port}"],
        shares=[
            *(ShareSpec(d, str(d), mode) for mode, d in dirs.items()),
            ShareSpec(tools, str(tools), "9p", readonly=True),
        ],
    )
    backend = QemuBackend(spec)
    try:
        backend.start()
        machine = Vm(backend, dirs, tool)
        pull = machine.docker("pull", f"10.0.2.2:{port}/busybox")
        assert pull.returncode == 0, pull.stderr
        assert machine.docker("tag", f"10.0.2.2:{port}/busybox", "busybox").returncode == 0
        yield machine
    finally:
        stop_quietly(backend)
    assert qemu_pids(spec.directory) == []
    assert sharehost.running_pid(spec.directory) is None


def waited(check: Callable[[], bool], timeout: float, step: float = 0.02) -> float | None:
    """Seconds until `check()` held, or None if it did not within `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(step)
    return None


@pytest.mark.parametrize("mode", MODES)
def test_a_container_reads_host_files_and_its_writes_reach_the_host(vm: Vm, mode: str) -> None:
    d = vm.dirs[mode]

    def reads() -> bool:
        out = vm.docker("run", "--rm", "-v", f"{d}:{d}", "busybox", "cat", f"{d}/f")
        return out.stdout == f"from the host, {mode}\n"

    assert waited(reads, 120, step=1) is not None  # sync: its first pass may still run
    write = vm.docker("run", "--rm", "-v", f"{d}:{d}", "busybox", "sh", "-c", f"echo hi >{d}/out")
    assert write.returncode == 0, write.stderr
    out = d / "out"
    latency = waited(lambda: out.is_file() and out.read_text() == "hi\n", 30)
    print(f"{mode}: a container's write on the host after {latency} s")
    assert latency is not None


EXPECTED = {  # busybox inotifyd letters each change may arrive as, per mode
    "virtiofs": {"create": "c", "modify": "c", "delete": "d"},
    "9p": {"create": "c", "modify": "c", "delete": "d"},
    "sync": {"create": "ny", "modify": "cyw", "delete": "dm"},
}


@pytest.mark.parametrize("mode", MODES)
def test_host_changes_are_inotify_events_in_a_container(vm: Vm, mode: str) -> None:
    d = vm.dirs[mode]
    name = f"ev-{mode}"
    tools = f"{vm.tool.parent}:/tools:ro"
    started = vm.docker(
        "run", "-d", "--name", name, "-v", f"{d}:{d}", "-v", tools, "busybox",
        "/tools/inotifyd", "-", str(d),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:

        def lines() -> list[str]:
            return vm.docker("logs", name).stdout.splitlines()

        assert waited(lambda: any(x.startswith("watching") for x in lines()), 60, 0.5)
        target = d / "events.txt"
        changes = {
            "create": lambda: target.write_text("one\n"),
            "modify": lambda: target.write_text("one two\n"),
            "delete": target.unlink,
        }
        for change, act in changes.items():
            seen = len(lines())
            act()
            letters = EXPECTED[mode][change]

            def arrived(seen: int = seen, letters: str = letters) -> bool:
                new = [x.split("\t") for x in lines()[seen:]]
                return any(p[0] in letters and p[-1] == target.name for p in new)

            latency = waited(arrived, 20, 0.1)
            print(f"{mode} {change}: seen in the container after {latency} s (logs polled)")
            assert latency is not None, (change, lines()[seen:])
            time.sleep(0.5)  # the next change is a separate burst
    finally:
        vm.docker("rm", "-f", name)
