"""Which accelerator works on this host, and why the others do not.

Why probe instead of checking that /dev/kvm opens: on some hosts /dev/kvm is the
paravirtual `kvm_pvm` module (a VM running inside a Firecracker VM, without vmx/svm). It
opens and even creates VMs, but runs only PVM-enlightened guest kernels: QEMU aborts with
`-cpu host` and a stock kernel dies with "KVM internal error ... emulation failure". So the
Linux probe reads the CPU flags and the loaded modules, and asks the device for its API
version and a VM. HVF (macOS) and WHPX (Windows) are asked through the OS (sysctl, the
WinHvPlatform library); those two are reached through small seams so their logic is
tested on any host.

TCG always works and is the fallback, with a loud warning naming why.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from machine.backend import StageFailed

KVM_DEVICE = Path("/dev/kvm")
KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO, 0x00)
KVM_CREATE_VM = 0xAE01  # _IO(KVMIO, 0x01)
KVM_API_VERSION = 12
ACCELS = ("kvm", "hvf", "whpx", "tcg")


@dataclass(frozen=True)
class AccelChoice:
    """The accelerator to use; `reason` says why the better ones were not picked (empty when
    the first choice works), `warning` is shown loudly when we fell back to TCG."""

    name: str
    reason: str = ""

    @property
    def warning(self) -> str:
        if self.name != "tcg" or not self.reason:
            return ""
        return f"WARNING: no hardware acceleration, using TCG (slow): {self.reason}"


Sysctl = Callable[[str], str]
"""Reads a macOS sysctl by name ("" when it does not exist); stands in for `sysctl -n`."""

WhpxPresent = Callable[[], str]
"""Asks Windows whether the hypervisor platform answers: "" when usable, else why not."""


def kvm_problem(device: Path = KVM_DEVICE, sys_root: Path = Path("/")) -> str:
    """Why KVM cannot run a stock guest here, or "" when it can."""
    if (sys_root / "sys/module/kvm_pvm").exists():
        return (
            "KVM not usable: /dev/kvm is the paravirtual kvm_pvm, which runs only PVM guest "
            "kernels — this host is itself a VM without nested vmx/svm; use --accel auto (TCG) "
            "or a host with hardware virtualization"
        )
    flags = cpu_flags(sys_root / "proc/cpuinfo")
    if flags and not flags & {"vmx", "svm"} and platform.machine() in ("x86_64", "AMD64"):
        return (
            "KVM not usable: the CPU shows no vmx/svm flag — enable virtualization in the "
            "firmware, or nested virtualization if this is a VM"
        )
    return kvm_device_problem(device)


def cpu_flags(cpuinfo: Path) -> set[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def kvm_device_problem(device: Path) -> str:
    """Open the device, check its API version and create (then drop) a VM."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return (
            f"KVM not usable: {device} does not exist — load the kvm_intel or kvm_amd module "
            "(or enable nested virtualization if this is a VM)"
        )
    except PermissionError:
        return (
            f"KVM not usable: {device} permission denied — add your user to the kvm group "
            "(sudo usermod -aG kvm $USER, then log in again)"
        )
    except OSError as e:
        return f"KVM not usable: opening {device} failed: {e.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        if version != KVM_API_VERSION:
            return f"KVM not usable: {device} speaks API version {version}, QEMU needs 12"
        vm_fd = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        os.close(vm_fd)
    except OSError as e:
        name = errno.errorcode.get(e.errno or 0, str(e.errno))
        return f"KVM not usable: {device} refused to create a VM ({name})"
    finally:
        os.close(fd)
    return ""


def macos_sysctl(name: str) -> str:
    out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else ""


def hvf_problem(sysctl: Sysctl = macos_sysctl) -> str:
    """HVF needs kern.hv_support=1 (Hypervisor.framework present and the CPU able)."""
    if sysctl("kern.hv_support") != "1":
        return (
            "HVF not usable: kern.hv_support is not 1 — this Mac (or the VM it is) offers no "
            "Hypervisor.framework"
        )
    return ""


def windows_whpx() -> str:
    """Load WinHvPlatform.dll and ask WHvGetCapability(HypervisorPresent)."""
    try:
        lib = ctypes.WinDLL("WinHvPlatform.dll")  # type: ignore[attr-defined]
    except OSError:
        return (
            "WHPX not usable: WinHvPlatform.dll is missing — turn on the Windows feature "
            '"Windows Hypervisor Platform" and restart'
        )
    present = ctypes.c_int32(0)
    written = ctypes.c_uint32(0)
    code_hypervisor_present = 0
    hr = lib.WHvGetCapability(
        code_hypervisor_present, ctypes.byref(present), 4, ctypes.byref(written)
    )
    if hr != 0 or not present.value:
        return (
            "WHPX not usable: the hypervisor is not running — enable virtualization in the "
            'firmware and the "Windows Hypervisor Platform" feature'
        )
    return ""


@dataclass(frozen=True)
class HostProbes:
    """The OS questions a choice asks; tests replace the macOS and Windows ones."""

    kvm: Callable[[], str] = kvm_problem
    hvf: Callable[[], str] = hvf_problem
    whpx: Callable[[], str] = windows_whpx


def native_accel(system: str) -> str:
    """The hardware accelerator QEMU uses on this OS."""
    if system.startswith("linux"):
        return "kvm"
    if system == "darwin":
        return "hvf"
    if system == "win32":
        return "whpx"
    return "tcg"


def choose(
    forced: str = "auto", system: str = sys.platform, probes: HostProbes | None = None
) -> AccelChoice:
    """The accelerator to boot with. `forced` ("auto" or a name) makes an unusable
    hardware accelerator an error (stage "accel") instead of a fallback to TCG."""
    probes = probes or HostProbes()
    if forced not in ("auto", *ACCELS):
        raise StageFailed(
            f"unknown accelerator {forced!r}",
            "accel",
            f"use one of: auto, {', '.join(ACCELS)}",
        )
    if forced == "tcg":
        return AccelChoice("tcg", "TCG was asked for")
    wanted = native_accel(system) if forced == "auto" else forced
    if wanted == "tcg":
        return AccelChoice("tcg", f"no hardware accelerator is known for {system}")
    if wanted != native_accel(system):
        raise StageFailed(
            f"{wanted} is not available on {system}",
            "accel",
            f"use {native_accel(system)} or tcg (or auto)",
        )
    problem = {"kvm": probes.kvm, "hvf": probes.hvf, "whpx": probes.whpx}[wanted]()
    if not problem:
        return AccelChoice(wanted)
    if forced != "auto":
        message, _, hint = problem.partition(" — ")
        raise StageFailed(message, "accel", hint or "use --accel auto to fall back to TCG")
    return AccelChoice("tcg", problem)
