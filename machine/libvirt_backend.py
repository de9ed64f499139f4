"""The libvirt backend: the same VM as the qemu backend, run as a transient libvirt domain.

Why a subclass of QemuBackend: the guest, its stages (kernel, init, network, sshd, engine),
the pinned-key SSH and the socket forwarder are the same; only who spawns and stops QEMU
differs. Here libvirtd does (`qemu:///system`), so the VM shows in `virsh list` and in
virt-manager, and libvirt owns its process.

The domain XML says in libvirt's words what libvirt models well: memory, vCPUs, machine
type, accelerator and CPU model, kernel, initrd and command line, the serial console to
`serial.log`, ACPI (the guest's power button is how `stop` shuts it down cleanly). The
devices libvirt cannot express on microvm (virtio-mmio disks with a serial, user-mode
networking with a host forward, fw_cfg, 9p) are passed through `<qemu:commandline>`,
built by the very qemu_argv helpers the qemu backend uses, so the guest sees the same
devices either way. A second QMP monitor of our own is passed too, so start waits on
QEMU the same way. libvirt adds defaults microvm cannot hold (a USB controller, a memory
balloon, both on PCI), so they are switched off.

QEMU runs as root for this domain (a static DAC label) with relabelling off: libvirt
would otherwise chown the image and the machine directory to its qemu user. The domain
is transient: destroying it, or QEMU exiting, leaves nothing defined in libvirt.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from machine import filenames, qemu_argv, seed, sharehost
from machine.backend import MachineSpec, MachineState, MachineStatus, StageFailed
from machine.errors import BackendUnavailable
from machine.procs import owned_pid
from machine.qemu_backend import (
    QemuBackend,
    diagnose_qemu,
    free_port,
    guest_engine_args,
    tail,
)

URI = "qemu:///system"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
RUN_DIR = Path("/run/libvirt/qemu")  # where libvirtd (system) keeps <domain>.pid
LOG_DIR = Path("/var/log/libvirt/qemu")  # where it sends QEMU's stderr: <domain>.log
LIBVIRTD_HINT = (
    "start libvirtd (as root: `libvirtd -d`, and `virtlogd -d` where nothing starts it), "
    "and install libvirt-daemon-system"
)


def domain_name(spec: MachineSpec) -> str:
    """Unique per machine directory: two data dirs may each have a machine `default`."""
    digest = hashlib.sha256(str(spec.directory).encode()).hexdigest()[:8]
    return f"dockyard-{spec.name}-{digest}"


def passthrough_args(cfg: qemu_argv.VmConfig) -> list[str]:
    """The QEMU arguments libvirt cannot model on this machine type, from qemu_argv."""
    return [
        *["-fw_cfg", f"name=opt/dockyard/seed,file={cfg.seed}"],
        *qemu_argv.disk_args(cfg),
        *["-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{cfg.ssh_port}-:22"],
        *qemu_argv.device(cfg, "net", "netdev=net0"),
        *qemu_argv.device(cfg, "rng", ""),
        *qemu_argv.share_args(cfg),
        *["-qmp", f"unix:{cfg.qmp_socket},server=on,wait=off"],
    ]


def domain_xml(name: str, cfg: qemu_argv.VmConfig, emulator: str) -> str:
    """The transient domain for `cfg` (pure)."""
    ET.register_namespace("qemu", QEMU_NS)
    dom = ET.Element("domain", type="kvm" if cfg.accel == "kvm" else "qemu")
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "memory", unit="MiB").text = str(cfg.memory_mb)
    ET.SubElement(dom, "vcpu").text = str(cfg.cpus)
    os_el = ET.SubElement(dom, "os")
    arch = "aarch64" if cfg.arch == "arm64" else cfg.arch
    machine = qemu_argv.machine_type(cfg).split(",")[0]
    ET.SubElement(os_el, "type", arch=arch, machine=machine).text = "hvm"
    ET.SubElement(os_el, "kernel").text = str(cfg.kernel)
    ET.SubElement(os_el, "initrd").text = str(cfg.initrd)
    ET.SubElement(os_el, "cmdline").text = qemu_argv.kernel_cmdline(cfg)
    if cfg.arch == "x86_64":
        ET.SubElement(ET.SubElement(dom, "features"), "acpi")  # the power button
    ET.SubElement(dom, "cpu", mode="host-passthrough" if cfg.accel == "kvm" else "maximum")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        ET.SubElement(dom, event).text = "destroy"  # as QEMU's -no-reboot: a reboot ends it
    label = ET.SubElement(dom, "seclabel", type="static", model="dac", relabel="no")
    ET.SubElement(label, "label").text = "+0:+0"
    devices = ET.SubElement(dom, "devices")
    ET.SubElement(devices, "emulator").text = emulator
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=str(cfg.serial_log))
    ET.SubElement(serial, "target", port="0")
    ET.SubElement(devices, "controller", type="usb", model="none")
    ET.SubElement(devices, "memballoon", model="none")
    extra = ET.SubElement(dom, f"{{{QEMU_NS}}}commandline")
    for arg in passthrough_args(cfg):
        ET.SubElement(extra, f"{{{QEMU_NS}}}arg", value=arg)
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")


class LibvirtBackend(QemuBackend):
    """A machine run by libvirtd, per the guest contract (issue 5)."""

    name = "libvirt"
    boot_checkpoint = False  # the domain has no control port: the guest boots straight through

    def __init__(
        self,
        spec: MachineSpec,
        timeouts: dict[str, float] | None = None,
        uri: str = URI,
    ) -> None:
        super().__init__(spec, timeouts)
        self.uri = uri
        self.domain = domain_name(spec)

    # -- libvirt ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            import libvirt
        except ImportError as e:
            raise BackendUnavailable(
                f"libvirt-python is not installed ({e})",
                "pip install libvirt-python (needs libvirt-dev and pkg-config to build)",
            ) from None
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # no stderr noise
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as e:
            raise BackendUnavailable(
                f"cannot reach libvirt at {self.uri}: {e}", LIBVIRTD_HINT
            ) from None
        try:
            yield conn
        finally:
            conn.close()

    def _with_domain(self, action: Callable[[Any], None]) -> bool:
        """Run `action(domain)` if our domain exists; False if it does not."""
        import libvirt

        with self._connection() as conn:
            try:
                dom = conn.lookupByName(self.domain)
            except libvirt.libvirtError:
                return False
            with contextlib.suppress(libvirt.libvirtError):  # it may end meanwhile
                action(dom)
            return True

    # -- what runs ------------------------------------------------------------------------
    def qemu_pid(self) -> int | None:
        return owned_pid(RUN_DIR / f"{self.domain}.pid", str(self.dir))

    def _alive(self) -> bool:
        return self.qemu_pid() is not None

    # -- start ----------------------------------------------------------------------------
    def _spawn(self, accel_name: str, incoming: bool = False) -> int:
        cfg = self._libvirt_vm_config(accel_name)
        xml = domain_xml(self.domain, cfg, shutil.which(cfg_binary(cfg)) or cfg_binary(cfg))
        self.path(filenames.LIBVIRT_XML).write_text(xml)
        with self._connection() as conn:
            import libvirt

            try:
                conn.createXML(xml, 0)
            except libvirt.libvirtError as e:
                message, hint = diagnose_qemu(
                    f"{e}\n{self._libvirt_log()}", cfg.ssh_port, cfg.kernel
                )
                raise StageFailed(message, "qemu", hint, self._libvirt_log()) from None
        # Our marker that QEMU runs (libvirt keeps its own pidfile): a clean stop removes
        # it, so one left behind with no QEMU says the VM died (status: crashed).
        self.path(filenames.QEMU_PID).write_text(f"{self.qemu_pid() or ''}\n")
        return cfg.ssh_port

    def _libvirt_vm_config(self, accel_name: str) -> qemu_argv.VmConfig:
        """The same VM the qemu backend would run (its image, seed, disk and port)."""
        port = self.spec.ssh_port or free_port()
        cfg = self._vm_config(accel_name, port)
        self.path(filenames.SSH_PORT).write_text(f"{port}\n")
        sharehost.write(self.dir, self.spec.shares)
        seed.write(self.dir, guest_engine_args(self.spec.engine_args), self.spec.shares)
        for stale in (filenames.QMP_SOCK, filenames.SOCKET):
            with contextlib.suppress(FileNotFoundError):
                self.path(stale).unlink()
        self.path(filenames.SERIAL_LOG).write_bytes(b"")
        self._kernel = cfg.kernel
        return cfg

    def _qemu_exit(self, port: int) -> StageFailed:
        log = self._libvirt_log()
        if self._alive():
            return StageFailed("QEMU did not answer on its QMP socket", "qemu", "", log)
        message, hint = diagnose_qemu(log, port, self._kernel)
        return StageFailed(message, "qemu", hint, log)

    def _libvirt_log(self) -> str:
        return tail(LOG_DIR / f"{self.domain}.log")

    def _teardown(self) -> None:
        super()._teardown()
        self._with_domain(lambda dom: dom.destroy())
        self._wait_gone(10.0)

    # -- stop, status -----------------------------------------------------------------------
    def stop(self, timeout: float = 30.0) -> None:
        """ACPI power button through libvirt (the guest unmounts its data disk), then
        destroy after `timeout`; the forwarder goes with it."""
        if self._with_domain(lambda dom: dom.shutdown()) and not self._wait_gone(timeout):
            self._with_domain(lambda dom: dom.destroy())
            self._wait_gone(10.0)
        super().stop(timeout)  # QEMU is gone: this stops the forwarder, removes runtime files

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._domain_exists():
                return True
            time.sleep(0.1)
        return not self._domain_exists()

    def _domain_exists(self) -> bool:
        try:
            return self._with_domain(lambda _dom: None)
        except BackendUnavailable:
            return False

    def status(self) -> MachineStatus:
        sock = self.socket_path()
        if not self.dir.is_dir():
            return MachineStatus(MachineState.NOT_CREATED, self.name, sock)
        accel_used = "kvm" if 'type="kvm"' in self._saved_xml() else "tcg"
        pid = self.qemu_pid()
        if pid is not None:
            return MachineStatus(MachineState.RUNNING, self.name, sock, pid, accel_used)
        marker = self.path(filenames.QEMU_PID)
        reason = self._end_reason()
        if marker.exists() and reason != "shutdown":  # "shutdown": the guest powered off
            return MachineStatus(
                MachineState.CRASHED,
                self.name,
                sock,
                None,
                accel_used,
                f"QEMU ended without a stop (libvirt: {reason or 'unknown'}); the serial log "
                "is kept:\n" + tail(self.path(filenames.SERIAL_LOG), 10),
            )
        marker.unlink(missing_ok=True)
        return MachineStatus(MachineState.STOPPED, self.name, sock, None, accel_used)

    def _end_reason(self) -> str:
        """Why libvirt last saw our QEMU end ("shutdown", "destroyed", "crashed" ...)."""
        for line in reversed(self._libvirt_log().splitlines()):
            _, found, reason = line.partition("shutting down, reason=")
            if found:
                return reason.strip()
        return ""

    def _saved_xml(self) -> str:
        try:
            return self.path(filenames.LIBVIRT_XML).read_text()
        except OSError:
            return ""


def cfg_binary(cfg: qemu_argv.VmConfig) -> str:
    return qemu_argv.binary(cfg.arch)
