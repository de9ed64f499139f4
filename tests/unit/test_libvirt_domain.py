"""The libvirt backend's domain XML (pure): libvirt's own elements for what it models, and
the qemu backend's own argv pieces passed through for the devices it cannot."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from machine import qemu_argv
from machine.backend import MachineSpec, ShareSpec
from machine.libvirt_backend import QEMU_NS, domain_name, domain_xml, passthrough_args

D = Path("/m")


def vm(accel: str = "tcg", shares: tuple[ShareSpec, ...] = ()) -> qemu_argv.VmConfig:
    return qemu_argv.VmConfig(
        host="linux",
        arch="x86_64",
        accel=accel,
        cpus=2,
        memory_mb=1536,
        kernel=Path("/img/vmlinux"),
        initrd=Path("/img/initramfs.img"),
        cmdline="console=ttyS0 quiet panic=-1",
        data_disk=D / "data.qcow2",
        seed=D / "seed.json",
        serial_log=D / "serial.log",
        qmp_socket=D / "qmp.sock",
        pid_file=D / "qemu.pid",
        ssh_port=2222,
        tsc_khz=2400000,
        shares=shares,
    )


def parsed(cfg: qemu_argv.VmConfig) -> ET.Element:
    return ET.fromstring(domain_xml("dockyard-m-1", cfg, "/usr/bin/qemu-system-x86_64"))


def test_libvirt_models_sizes_kernel_and_serial() -> None:
    dom = parsed(vm())
    assert dom.get("type") == "qemu"
    assert dom.findtext("name") == "dockyard-m-1"
    assert dom.find("memory").get("unit") == "MiB" and dom.findtext("memory") == "1536"
    assert dom.findtext("vcpu") == "2"
    os_type = dom.find("os/type")
    assert os_type is not None and os_type.attrib == {"arch": "x86_64", "machine": "microvm"}
    assert dom.findtext("os/kernel") == "/img/vmlinux"
    assert dom.findtext("os/initrd") == "/img/initramfs.img"
    assert dom.findtext("os/cmdline") == "console=ttyS0 quiet panic=-1 tsc_early_khz=2400000"
    assert dom.find("features/acpi") is not None  # the power button `stop` presses
    assert dom.find("cpu").get("mode") == "maximum"
    assert dom.find("devices/serial/source").get("path") == "/m/serial.log"
    assert dom.findtext("devices/emulator") == "/usr/bin/qemu-system-x86_64"
    assert dom.findtext("on_reboot") == "destroy"


def test_defaults_microvm_cannot_hold_are_off_and_qemu_runs_as_root() -> None:
    dom = parsed(vm())
    assert dom.find("devices/controller").attrib == {"type": "usb", "model": "none"}
    assert dom.find("devices/memballoon").get("model") == "none"
    label = dom.find("seclabel")
    assert label is not None and label.get("relabel") == "no"
    assert label.findtext("label") == "+0:+0"


def test_kvm_uses_the_kvm_domain_type_and_host_cpu() -> None:
    dom = parsed(vm("kvm"))
    assert dom.get("type") == "kvm"
    assert dom.find("cpu").get("mode") == "host-passthrough"
    assert "tsc_early_khz" not in (dom.findtext("os/cmdline") or "")


def test_passthrough_is_the_qemu_backends_own_devices() -> None:
    cfg = vm(shares=(ShareSpec(Path("/home/u"), "/home/u", "9p", True),))
    dom = parsed(cfg)
    args = [a.get("value") for a in dom.iter(f"{{{QEMU_NS}}}arg")]
    assert args == passthrough_args(cfg)
    full = qemu_argv.build(cfg)
    for piece in (
        qemu_argv.disk_args(cfg),
        qemu_argv.share_args(cfg),
        ["-fw_cfg", "name=opt/dockyard/seed,file=/m/seed.json"],
        ["-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22"],
        ["-qmp", "unix:/m/qmp.sock,server=on,wait=off"],
    ):
        at = args.index(piece[0])
        assert args[at : at + len(piece)] == piece
        assert piece[1] in full


@pytest.mark.parametrize("name", ["default", "dev"])
def test_domain_names_differ_per_machine_directory(name: str) -> None:
    a = domain_name(MachineSpec(name, Path("/home/a/dockyard") / name))
    b = domain_name(MachineSpec(name, Path("/home/b/dockyard") / name))
    assert a != b and a.startswith(f"dockyard-{name}-")
