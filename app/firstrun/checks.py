"""What the host must offer before a machine is created, each failure with its fix.

Why a check of its own before `machine start`: a start that fails in its third stage
after a minute of TCG boot is a poor first impression, and most of the causes are known
up front (no usable accelerator, no QEMU or an old one, a full disk, a taken port). Each
check reads the real thing (the device node, the CPU flags, the binary's `--version`,
the filesystem, a bind on the port) and returns a `CheckResult` whose `hint` is one
specific action. The accelerator checks warn rather than fail: TCG always works, only
slowly, so the first run goes on and says why it will be slow.

Pure functions of their inputs (paths, binary name, ports), so tests inject each
failure at its boundary: a permission-less /dev/kvm in a private mount namespace, a real
listener, a loop-mounted tiny filesystem.
"""

from __future__ import annotations

import enum
import errno
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from machine import accel

# The oldest QEMU we accept: virtiofs shares need the machine's memory-backend= property
# (QEMU 6.0), and Ubuntu 22.04 LTS ships 6.2; Debian 12's 7.2 is what the tests run.
MIN_QEMU = (6, 2)
MIN_FREE_BYTES = 4 << 30  # guest image (~300 MiB) + a data disk with room for images
VERSION_RE = re.compile(r"QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?")


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"  # works, worse than it could (e.g. TCG instead of KVM)
    FAIL = "fail"  # the machine cannot run until this is fixed
    SKIPPED = "skipped"  # not detectable on this host


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    message: str
    hint: str = ""

    @property
    def blocking(self) -> bool:
        return self.status == Status.FAIL


def _split(problem: str) -> tuple[str, str]:
    """machine/accel.py writes "what — what to do"; the check shows them apart."""
    message, _, hint = problem.partition(" — ")
    return message, hint


def accelerator(
    system: str = sys.platform,
    device: Path = accel.KVM_DEVICE,
    sys_root: Path = Path("/"),
    probes: accel.HostProbes | None = None,
) -> CheckResult:
    """Present *and usable*: on Linux the device must open (a permission problem has its own
    fix), then must run a stock guest (kvm_pvm does not)."""
    name = "accelerator"
    wanted = accel.native_accel(system)
    if wanted == "kvm":
        problem = accel.kvm_device_problem(device) or accel.kvm_problem(device, sys_root)
    elif wanted == "tcg":
        return CheckResult(name, Status.WARN, f"no hardware accelerator is known for {system}")
    else:
        probes = probes or accel.HostProbes()
        problem = probes.hvf() if wanted == "hvf" else probes.whpx()
    if not problem:
        return CheckResult(name, Status.OK, f"{wanted} is usable")
    message, hint = _split(problem)
    return CheckResult(name, Status.WARN, f"{message}; machines will run under TCG (slow)", hint)


def firmware(system: str = sys.platform, sys_root: Path = Path("/")) -> CheckResult:
    """Whether the CPU's virtualization extensions are switched on, where the OS shows it
    (Linux: the vmx/svm flags; elsewhere the accelerator check covers it)."""
    name = "firmware"
    if not system.startswith("linux"):
        return CheckResult(name, Status.SKIPPED, "checked through the accelerator on this OS")
    if (sys_root / "sys/module/kvm_pvm").exists():
        return CheckResult(
            name,
            Status.SKIPPED,
            "this host is itself a VM (paravirtual kvm_pvm); its firmware is not visible",
        )
    flags = accel.cpu_flags(sys_root / "proc/cpuinfo")
    if not flags:
        return CheckResult(name, Status.SKIPPED, "the CPU flags are not readable")
    if flags & {"vmx", "svm"}:
        return CheckResult(name, Status.OK, "virtualization extensions are enabled")
    if "hypervisor" in flags:
        return CheckResult(
            name,
            Status.WARN,
            "this host is a VM without nested virtualization (no vmx/svm flag)",
            "enable nested virtualization for this VM in its hypervisor's settings",
        )
    return CheckResult(
        name,
        Status.WARN,
        "virtualization is disabled in the firmware (no vmx/svm flag)",
        "enable Intel VT-x or AMD-V (SVM) in the BIOS/UEFI setup, then power the computer off "
        "and on",
    )


def qemu_install_hint(system: str) -> str:
    if system == "darwin":
        return "install QEMU with Homebrew: brew install qemu"
    if system == "win32":
        return "reinstall Dockyard: its installer carries QEMU"
    return "install QEMU: sudo apt install qemu-system-x86 (or your distribution's qemu package)"


def parse_qemu_version(text: str) -> tuple[int, int, int] | None:
    match = VERSION_RE.search(text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def qemu(binary: str = "qemu-system-x86_64", system: str = sys.platform) -> CheckResult:
    name = "qemu"
    path = shutil.which(binary)
    if path is None:
        return CheckResult(
            name, Status.FAIL, f"{binary} is not installed", qemu_install_hint(system)
        )
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return CheckResult(
            name, Status.FAIL, f"{path} --version failed: {e}", qemu_install_hint(system)
        )
    version = parse_qemu_version(out.stdout)
    if version is None:
        return CheckResult(
            name,
            Status.FAIL,
            f"{path} --version printed no QEMU version: {out.stdout.strip()[:80]!r}",
            qemu_install_hint(system),
        )
    shown = ".".join(map(str, version))
    need = ".".join(map(str, MIN_QEMU))
    if version[:2] < MIN_QEMU:
        return CheckResult(
            name,
            Status.FAIL,
            f"QEMU {shown} at {path} is too old; Dockyard needs {need} or newer",
            f"upgrade QEMU to {need} or newer ({qemu_install_hint(system).split(': ', 1)[-1]})",
        )
    return CheckResult(name, Status.OK, f"QEMU {shown} at {path}")


def _existing(path: Path) -> Path:
    """The nearest existing ancestor: the data directory may not exist before the first run."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def disk_space(path: Path, need: int = MIN_FREE_BYTES) -> CheckResult:
    name = "disk"
    where = _existing(path)
    free = shutil.disk_usage(where).free
    if free >= need:
        return CheckResult(name, Status.OK, f"{_gib(free)} free at {where}")
    return CheckResult(
        name,
        Status.FAIL,
        f"only {_gib(free)} free at {where}; a machine needs {_gib(need)}",
        f"free up {_gib(need - free)} on that disk, or set DOCKYARD_HOME to a folder on a disk "
        "with more room",
    )


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 28 else f"{n / (1 << 20):.1f} MiB"


def ports(wanted: Sequence[int], address: str = "127.0.0.1") -> CheckResult:
    """Each port must bind now; a refusal names the port and how to find its holder."""
    name = "ports"
    if not wanted:
        return CheckResult(name, Status.SKIPPED, "no fixed ports to check")
    for port in wanted:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((address, port))
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    return CheckResult(name, Status.FAIL, f"{address}:{port}: {e.strerror}")
                return CheckResult(
                    name,
                    Status.FAIL,
                    f"port {port} on {address} is already in use",
                    f"stop the program listening on {port} (find it with "
                    f"{_who_listens(port)}), or give the machine another port",
                )
    return CheckResult(name, Status.OK, f"free on {address}: {', '.join(map(str, wanted))}")


def _who_listens(port: int) -> str:
    if sys.platform == "win32":
        return f"netstat -ano | findstr :{port}"
    if sys.platform == "darwin":
        return f"lsof -nP -iTCP:{port} -sTCP:LISTEN"
    return f"ss -ltnp 'sport = :{port}'"


def run_all(
    data_dir: Path, wanted_ports: Sequence[int] = (), need_disk: int = MIN_FREE_BYTES
) -> list[CheckResult]:
    """Every check, in the order the first-run page shows them."""
    return [
        accelerator(),
        firmware(),
        qemu(),
        disk_space(data_dir, need_disk),
        ports(wanted_ports),
    ]
