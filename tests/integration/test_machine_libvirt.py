"""`dockyard machine` with `--backend libvirt`: a transient domain of a libvirtd the tests
start themselves. The acceptance scenario needs the debian guest image (`make images`);
the failure cases need only libvirt and QEMU, and must leave no domain and no QEMU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from machine import config
from tests.engine_process import wait_for
from tests.libvirtd import URI, missing, running_libvirtd
from tests.machine_harness import MachineHarness, acceptance, machine_harness

IMAGE = config.REPO / ".cache" / "vmimage" / f"debian-{config.host_arch()}"
pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "libvirt is here")


@pytest.fixture(scope="module")
def libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with running_libvirtd(tmp_path_factory.mktemp("libvirtd")):
        yield


@pytest.fixture
def h(libvirtd: None) -> Iterator[MachineHarness]:
    with machine_harness() as harness:
        yield harness


def domains() -> list[str]:
    out = subprocess.run(
        ["virsh", "-c", URI, "list", "--all", "--name"], capture_output=True, text=True
    ).stdout
    return [d for d in out.split() if d]


def fake_image(tmp_path: Path, kernel: bytes | None) -> Path:
    image = tmp_path / "image"
    image.mkdir()
    boot = {"kernel": "vmlinux", "initrd": "initramfs.img", "rootfs": "", "cmdline": "quiet"}
    (image / "manifest.json").write_text(json.dumps({"format": 1, "boot": boot}))
    if kernel is not None:
        (image / "vmlinux").write_bytes(kernel)
    (image / "initramfs.img").write_bytes(b"\0" * 512)
    return image


def start_failing(h: MachineHarness, image: Path) -> subprocess.CompletedProcess[str]:
    res = h.dockyard("start", "--backend", "libvirt", "--image", str(image), check=False)
    assert res.returncode == 1, res.stdout
    return res


def test_a_missing_kernel_fails_stage_qemu_with_its_hint(h: MachineHarness, tmp_path: Path) -> None:
    res = start_failing(h, fake_image(tmp_path, None))
    assert "error: qemu: the image's kernel" in res.stderr and "does not exist" in res.stderr
    assert "hint: rebuild" in res.stderr
    assert h.processes() == []
    assert not any(d.startswith("dockyard-default-") for d in domains())


def test_an_unbootable_kernel_fails_stage_qemu_and_leaves_no_domain(
    h: MachineHarness, tmp_path: Path
) -> None:
    res = start_failing(h, fake_image(tmp_path, b"not a kernel\n" * 64))
    assert "error: qemu: " in res.stderr and "hint: " in res.stderr
    assert "qemu" in h.dockyard("status", "--json").stdout
    status = json.loads(h.dockyard("status", "--json").stdout)
    assert status["state"] == "stopped"
    assert [s["status"] for s in status["stages"]][-1] == "failed"
    assert h.processes() == []
    assert not any(d.startswith("dockyard-default-") for d in domains())


@pytest.mark.skipif(
    not (IMAGE / "manifest.json").is_file(), reason=f"no guest image at {IMAGE} (make images)"
)
def test_acceptance_libvirt(h: MachineHarness, registry_with_images: str) -> None:
    port = registry_with_images.rsplit(":", 1)[1]
    guest_registry = f"10.0.2.2:{port}"  # the host, seen from QEMU's user-mode network
    acceptance(
        h,
        [
            *["--backend", "libvirt", "--cpus", "1", "--memory", "1GiB", "--disk", "4"],
            f"--engine-arg=--insecure-registry={guest_registry}",
        ],
        guest_registry,
    )
    status = json.loads(h.dockyard("status", "--json").stdout)
    assert status["state"] == "running" and status["backend"] == "libvirt"
    assert any(d.startswith("dockyard-default-") for d in domains())
    # QEMU dies under the machine: status says so and keeps the serial log; rm cleans up.
    os.kill(status["pid"], signal.SIGKILL)
    assert wait_for(lambda: not any(d.startswith("dockyard-default-") for d in domains()))
    crashed = json.loads(h.dockyard("status", "--json").stdout)
    assert crashed["state"] == "crashed", crashed
    assert "dockyard-stage" in crashed["detail"]
    h.dockyard("rm")
    assert h.processes() == []
    assert not any(d.startswith("dockyard-default-") for d in domains())
