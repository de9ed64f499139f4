"""The QEMU command line for one machine, per host OS, architecture and accelerator (pure).

Why these machines: under every x86_64 accelerator that supports it, `microvm` boots
fastest (no PCI enumeration, no firmware: the uncompressed vmlinux is entered through its
PVH note; measured under TCG: init in 2.7 s against 5.7 s for a bzImage on q35). WHPX
lacks what microvm needs (an in-kernel irqchip QEMU can drive there), so Windows uses q35
with virtio-pci. arm64 (Apple silicon) uses `-M virt` with virtio-pci.

Devices, as the guest contract (issue 5) names them: serial ttyS0 to a log file
(stage lines), QMP on a unix socket, the seed through fw_cfg `opt/dockyard/seed`, the data
disk with serial `dockyard-data`, user-mode networking forwarding loopback:<ssh port> to
guest :22, a virtio RNG (sshd would otherwise wait for entropy), the control port (a
virtio-serial port named org.dockyard.ctl on a unix socket: the boot checkpoint's wake-up,
machine/bootstate.py), 9p shares.

Under TCG on microvm the kernel gets `tsc_early_khz=<host MHz*1000>`: without it the PIT
calibration sometimes fails there and about 1 boot in 10 hangs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from machine.backend import ShareSpec

COMBOS = (
    ("linux", "x86_64", "kvm"),
    ("linux", "x86_64", "tcg"),
    ("macos", "x86_64", "hvf"),
    ("macos", "arm64", "hvf"),
    ("windows", "x86_64", "whpx"),
)


@dataclass(frozen=True)
class VmConfig:
    """Everything the argv depends on; paths are used as given."""

    host: str  # linux | macos | windows
    arch: str  # x86_64 | arm64 (the guest's arch is the host's)
    accel: str  # kvm | hvf | whpx | tcg
    cpus: int
    memory_mb: int
    kernel: Path
    initrd: Path
    cmdline: str
    data_disk: Path
    seed: Path
    serial_log: Path
    qmp_socket: Path
    pid_file: Path
    ssh_port: int
    rootfs: Path | None = None
    control_socket: Path | None = None  # the boot checkpoint's control port (bootstate.py)
    tsc_khz: int = 0  # host TSC rate; used only under TCG on microvm
    shares: tuple[ShareSpec, ...] = field(default_factory=tuple)


def binary(arch: str) -> str:
    return "qemu-system-aarch64" if arch == "arm64" else "qemu-system-x86_64"


def machine_type(cfg: VmConfig) -> str:
    if cfg.arch == "arm64":
        return "virt,highmem=on"
    if cfg.accel == "whpx":
        return "q35"
    return "microvm"


def virtiofs_shares(cfg: VmConfig) -> list[int]:
    return [i for i, share in enumerate(cfg.shares) if share.mode == "virtiofs"]


def virtiofs_socket(cfg: VmConfig, index: int) -> Path:
    """Where virtiofsd serves share `index` (beside the seed, in the machine directory)."""
    return cfg.seed.parent / f"vfs{index}.sock"


def machine_option(cfg: VmConfig) -> str:
    """The -M value; with virtiofs shares the guest RAM is the shared memfd below."""
    machine = machine_type(cfg)
    return f"{machine},memory-backend=mem" if virtiofs_shares(cfg) else machine


def shared_memory_args(cfg: VmConfig) -> list[str]:
    """Guest RAM as a shared memfd, which vhost-user (virtiofsd) must map; Linux only."""
    if not virtiofs_shares(cfg):
        return []
    if cfg.host != "linux":
        raise ValueError("virtiofs shares need a Linux host (vhost-user); use 9p")
    return [
        *["-object", f"memory-backend-memfd,id=mem,size={cfg.memory_mb}M,share=on"],
        # microvm's virtio-mmio defaults to legacy virtio, which vhost-user-fs refuses.
        *(["-global", "virtio-mmio.force-legacy=false"] if uses_mmio(cfg) else []),
    ]


def uses_mmio(cfg: VmConfig) -> bool:
    """microvm has virtio-mmio transports only; the others use virtio-pci."""
    return machine_type(cfg).startswith("microvm")


def accel_args(cfg: VmConfig) -> list[str]:
    if cfg.accel == "tcg":
        return ["-accel", "tcg", "-cpu", "max"]
    if cfg.accel == "whpx":
        # QEMU's WHPX cannot emulate the in-kernel irqchip it would otherwise need.
        return ["-accel", "whpx,kernel-irqchip=off", "-cpu", "max"]
    return ["-accel", cfg.accel, "-cpu", "host"]


def kernel_cmdline(cfg: VmConfig) -> str:
    if cfg.accel == "tcg" and uses_mmio(cfg) and cfg.tsc_khz > 0:
        return f"{cfg.cmdline} tsc_early_khz={cfg.tsc_khz}"
    return cfg.cmdline


def device(cfg: VmConfig, kind: str, options: str) -> list[str]:
    """A virtio device on this machine's transport: `virtio-blk-device` on microvm,
    `virtio-blk-pci` elsewhere."""
    suffix = "device" if uses_mmio(cfg) else "pci"
    name = f"virtio-{kind}-{suffix}"
    return ["-device", f"{name},{options}" if options else name]


def disk_args(cfg: VmConfig) -> list[str]:
    fmt = "qcow2" if cfg.data_disk.suffix == ".qcow2" else "raw"
    args = [
        "-drive",
        f"id=data,file={cfg.data_disk},format={fmt},if=none,discard=unmap",
        *device(cfg, "blk", "drive=data,serial=dockyard-data"),
    ]
    if cfg.rootfs is not None:
        args += [
            "-drive",
            f"id=root,file={cfg.rootfs},format=raw,if=none,readonly=on",
            *device(cfg, "blk", "drive=root,serial=dockyard-root"),
        ]
    return args


GUEST_IP = "10.0.2.15"  # the guest's address on QEMU's user network (its default; boot.sh sets it)
CONTROL_PORT = "org.dockyard.ctl"  # the name the guest looks for (vmimage/guest/wakeup.py)


def control_args(cfg: VmConfig) -> list[str]:
    """The control port: QEMU listens on the socket, the host connects when it has a word
    for the guest. Without it the guest boots straight through its checkpoint."""
    if cfg.control_socket is None:
        return []
    return [
        *["-chardev", f"socket,id=ctl,path={cfg.control_socket},server=on,wait=off"],
        *device(cfg, "serial", ""),
        *["-device", f"virtserialport,chardev=ctl,name={CONTROL_PORT}"],
    ]


def share_args(cfg: VmConfig) -> list[str]:
    args: list[str] = []
    for i, share in enumerate(cfg.shares):
        if share.mode == "virtiofs":
            suffix = "device" if uses_mmio(cfg) else "pci"
            args += [
                *["-chardev", f"socket,id=vfs{i},path={virtiofs_socket(cfg, i)}"],
                *["-device", f"vhost-user-fs-{suffix},chardev=vfs{i},tag=share{i}"],
            ]
            continue
        if share.mode == "sync":
            continue  # a guest-local folder kept in sync over SSH: no device (machine/sync)
        if share.mode != "9p":
            raise ValueError(f"unknown share mode {share.mode!r}: use 9p, virtiofs or sync")
        ro = ",readonly=on" if share.readonly else ""
        args += [
            "-fsdev",
            f"local,id=fs{i},path={share.host_path},security_model=none{ro}",
            *device(cfg, "9p", f"fsdev=fs{i},mount_tag=share{i}"),
        ]
    return args


def build(cfg: VmConfig) -> list[str]:
    """The full argv, binary first."""
    if (cfg.host, cfg.arch, cfg.accel) not in COMBOS:
        raise ValueError(f"no QEMU recipe for {cfg.host}/{cfg.arch}/{cfg.accel}")
    return [
        binary(cfg.arch),
        *["-M", machine_option(cfg)],
        *accel_args(cfg),
        *["-smp", str(cfg.cpus), "-m", str(cfg.memory_mb)],
        *shared_memory_args(cfg),
        *["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"],
        *["-kernel", str(cfg.kernel), "-initrd", str(cfg.initrd)],
        *["-append", kernel_cmdline(cfg)],
        *["-chardev", f"file,id=serial0,path={cfg.serial_log}", "-serial", "chardev:serial0"],
        *["-qmp", f"unix:{cfg.qmp_socket},server=on,wait=off"],
        *["-pidfile", str(cfg.pid_file)],
        *["-fw_cfg", f"name=opt/dockyard/seed,file={cfg.seed}"],
        *disk_args(cfg),
        *["-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{cfg.ssh_port}-:22"],
        *device(cfg, "net", "netdev=net0"),
        *device(cfg, "rng", ""),
        *control_args(cfg),
        *share_args(cfg),
    ]
