"""The exact QEMU argv for each of the five host/arch/accel combinations, pinned."""

from __future__ import annotations

from pathlib import Path

import pytest

from machine import qemu_argv
from machine.backend import ShareSpec

D = Path("/m")


def cfg(host: str, arch: str, accel: str, **kw: object) -> qemu_argv.VmConfig:
    kernel = "Image" if arch == "arm64" else "vmlinux"
    base: dict[str, object] = {
        "host": host,
        "arch": arch,
        "accel": accel,
        "cpus": 2,
        "memory_mb": 2048,
        "kernel": Path(f"/img/{kernel}"),
        "initrd": Path("/img/initramfs.img"),
        "cmdline": "console=ttyS0 quiet panic=-1",
        "data_disk": D / "data.qcow2",
        "seed": D / "seed.json",
        "serial_log": D / "serial.log",
        "qmp_socket": D / "qmp.sock",
        "pid_file": D / "qemu.pid",
        "ssh_port": 2222,
        "tsc_khz": 2445406,
    }
    base.update(kw)
    return qemu_argv.VmConfig(**base)  # type: ignore[arg-type]


def common(kernel: str, append: str) -> list[str]:
    return [
        *["-smp", "2", "-m", "2048", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot"],
        *["-kernel", f"/img/{kernel}", "-initrd", "/img/initramfs.img", "-append", append],
        *["-chardev", "file,id=serial0,path=/m/serial.log", "-serial", "chardev:serial0"],
        *["-qmp", "unix:/m/qmp.sock,server=on,wait=off", "-pidfile", "/m/qemu.pid"],
        *["-fw_cfg", "name=opt/dockyard/seed,file=/m/seed.json"],
        *["-drive", "id=data,file=/m/data.qcow2,format=qcow2,if=none,discard=unmap"],
    ]


def tail(bus: str) -> list[str]:
    return [
        *["-device", f"virtio-blk-{bus},drive=data,serial=dockyard-data"],
        *["-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22"],
        *["-device", f"virtio-net-{bus},netdev=net0", "-device", f"virtio-rng-{bus}"],
    ]


CMD = "console=ttyS0 quiet panic=-1"


def test_linux_x86_64_kvm() -> None:
    assert qemu_argv.build(cfg("linux", "x86_64", "kvm")) == [
        "qemu-system-x86_64",
        *["-M", "microvm", "-accel", "kvm", "-cpu", "host"],
        *common("vmlinux", CMD),
        *tail("device"),
    ]


def test_linux_x86_64_tcg_adds_tsc_early_khz() -> None:
    assert qemu_argv.build(cfg("linux", "x86_64", "tcg")) == [
        "qemu-system-x86_64",
        *["-M", "microvm", "-accel", "tcg", "-cpu", "max"],
        *common("vmlinux", CMD + " tsc_early_khz=2445406"),
        *tail("device"),
    ]


def test_macos_x86_64_hvf() -> None:
    assert qemu_argv.build(cfg("macos", "x86_64", "hvf")) == [
        "qemu-system-x86_64",
        *["-M", "microvm", "-accel", "hvf", "-cpu", "host"],
        *common("vmlinux", CMD),
        *tail("device"),
    ]


def test_macos_arm64_hvf_uses_virt() -> None:
    assert qemu_argv.build(cfg("macos", "arm64", "hvf")) == [
        "qemu-system-aarch64",
        *["-M", "virt,highmem=on", "-accel", "hvf", "-cpu", "host"],
        *common("Image", CMD),
        *tail("pci"),
    ]


def test_windows_x86_64_whpx_uses_q35() -> None:
    assert qemu_argv.build(cfg("windows", "x86_64", "whpx")) == [
        "qemu-system-x86_64",
        *["-M", "q35", "-accel", "whpx,kernel-irqchip=off", "-cpu", "max"],
        *common("vmlinux", CMD),
        *tail("pci"),
    ]


def test_rootfs_and_9p_shares() -> None:
    argv = qemu_argv.build(
        cfg(
            "linux",
            "x86_64",
            "kvm",
            rootfs=Path("/img/rootfs.erofs"),
            shares=(ShareSpec(Path("/home/u"), "/home/u", "9p", readonly=True),),
        )
    )
    assert argv[argv.index("id=root,file=/img/rootfs.erofs,format=raw,if=none,readonly=on") + 1 :][
        :2
    ] == ["-device", "virtio-blk-device,drive=root,serial=dockyard-root"]
    assert "local,id=fs0,path=/home/u,security_model=none,readonly=on" in argv
    assert "virtio-9p-device,fsdev=fs0,mount_tag=share0" in argv


def test_unknown_combination_is_refused() -> None:
    with pytest.raises(ValueError, match="no QEMU recipe for linux/arm64/kvm"):
        qemu_argv.build(cfg("linux", "arm64", "kvm"))


def test_virtiofs_share_shares_guest_memory_and_uses_vhost_user() -> None:
    share = ShareSpec(Path("/home/u"), "/home/u", "virtiofs")
    argv = qemu_argv.build(cfg("linux", "x86_64", "tcg", shares=(share,)))
    assert argv[1:3] == ["-M", "microvm,memory-backend=mem"]
    at = argv.index("-object")
    assert argv[at : at + 4] == [
        *["-object", "memory-backend-memfd,id=mem,size=2048M,share=on"],
        *["-global", "virtio-mmio.force-legacy=false"],
    ]
    assert argv[-4:] == [
        *["-chardev", "socket,id=vfs0,path=/m/vfs0.sock"],
        *["-device", "vhost-user-fs-device,chardev=vfs0,tag=share0"],
    ]


def test_virtiofs_is_refused_off_linux() -> None:
    share = ShareSpec(Path("/Users/u"), "/Users/u", "virtiofs")
    with pytest.raises(ValueError, match="virtiofs shares need a Linux host"):
        qemu_argv.build(cfg("macos", "arm64", "hvf", shares=(share,)))


@pytest.mark.parametrize(
    ("host", "arch", "accel", "bus"),
    [
        ("linux", "x86_64", "tcg", "device"),
        ("macos", "arm64", "hvf", "pci"),
    ],
)
def test_control_port_is_a_named_virtio_serial_port(
    host: str, arch: str, accel: str, bus: str
) -> None:
    argv = qemu_argv.build(cfg(host, arch, accel, control_socket=D / "ctl.sock"))
    at = argv.index("socket,id=ctl,path=/m/ctl.sock,server=on,wait=off")
    assert argv[at + 1 : at + 5] == [
        *["-device", f"virtio-serial-{bus}"],
        *["-device", "virtserialport,chardev=ctl,name=org.dockyard.ctl"],
    ]
