"""The qemu and libvirt backends hand the guest the same seed and share list for one spec.

Each backend's own start path writes the files: the qemu backend's `_spawn` (QEMU is
started for real and exits at once on the stand-in kernel), the libvirt backend's
`_libvirt_vm_config` (what it runs before asking libvirtd for the domain).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from machine import filenames
from machine.backend import MachineSpec, ShareSpec
from machine.libvirt_backend import LibvirtBackend
from machine.qemu_backend import GUEST_ENGINE_IP, QemuBackend

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/qemu-system-x86_64").exists(), reason="needs qemu-system-x86"
)


def image(tmp_path: Path) -> Path:
    """An image directory whose kernel QEMU refuses: the spawn ends before any boot."""
    d = tmp_path / "image"
    d.mkdir()
    (d / "vmlinux").write_bytes(b"not a kernel")
    (d / "initramfs.img").write_bytes(b"")
    (d / "manifest.json").write_text(json.dumps({"boot": {"kernel": "vmlinux"}}))
    return d


def spec(directory: Path, image_dir: Path, tmp_path: Path) -> MachineSpec:
    share = ShareSpec(tmp_path, str(tmp_path), "9p", False, ())
    return MachineSpec(
        name="m",
        directory=directory,
        cpus=1,
        memory_mb=256,
        disk_gb=1,
        image_dir=image_dir,
        engine_args=["--insecure-registry", "127.0.0.1:5000"],
        shares=[share],
    )


def qemu_files(directory: Path, image_dir: Path, tmp_path: Path) -> tuple[dict, list]:
    backend = QemuBackend(spec(directory, image_dir, tmp_path))
    backend.create()
    try:
        backend._spawn("tcg")
    finally:
        proc = backend._proc
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return read(directory)


def libvirt_files(directory: Path, image_dir: Path, tmp_path: Path) -> tuple[dict, list]:
    backend = LibvirtBackend(spec(directory, image_dir, tmp_path))
    backend.create()
    backend._libvirt_vm_config("tcg")
    return read(directory)


def read(directory: Path) -> tuple[dict, list]:
    seed = json.loads((directory / filenames.SEED).read_text())
    shares = json.loads((directory / filenames.SHARES).read_text())
    return seed, shares


def test_both_backends_seed_the_guest_engine_args_with_its_publish_address(
    tmp_path: Path,
) -> None:
    img = image(tmp_path)
    q_seed, q_shares = qemu_files(tmp_path / "q", img, tmp_path)
    l_seed, l_shares = libvirt_files(tmp_path / "l", img, tmp_path)
    wanted = ["--insecure-registry", "127.0.0.1:5000", "--ip", GUEST_ENGINE_IP]
    assert q_seed["engine_args"] == wanted
    assert l_seed["engine_args"] == wanted
    assert l_seed["shares"] == q_seed["shares"]
    assert l_shares == q_shares  # what the share keeper reads after the boot
    assert q_shares and q_shares[0]["mode"] == "9p"
