"""The QEMU backend: create the disk, boot through timed stages, serve the engine socket,
stop gracefully, report status and crashes. Leaves no QEMU process behind on any failure.

How a start goes (stages.py names and times each step):
  accel   pick the accelerator (accel.py); TCG with a loud warning when nothing else works
  qemu    write the seed, spawn QEMU in its own session (it outlives the CLI), wait for QMP
  kernel  the first byte on the serial console
  init    the guest's `dockyard-stage init` line
  network the guest's `dockyard-stage network` line
  checkpoint  the guest parked at its boot checkpoint (sshd up, engine imported): save it
          there once (bootstate.py), then wake it with the clock and entropy (wakeup.py)
  sshd    an SSH login with the pinned host key through the forwarded loopback port
  engine  the forwarder process serves docker.sock; GET /_ping through it answers OK
A machine with a saved boot state skips qemu..checkpoint: its `restore` stage spawns QEMU
waiting for that state, loads it and wakes the guest; sshd and engine follow as above. A
restore that fails discards the state and boots afresh in the same start.
A `dockyard-fail` line from the guest, or QEMU exiting, fails the current stage at once,
with the end of the serial log attached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import machine
from machine import (
    accel,
    bootstate,
    disk,
    filenames,
    forward,
    keys,
    qemu_argv,
    qmp,
    seed,
    sharehost,
    ssh,
    stages,
    wakeup,
)
from machine.backend import (
    MachineSpec,
    MachineState,
    MachineStatus,
    Progress,
    ShareSpec,
    Stage,
    StageFailed,
)
from machine.errors import MachineError
from machine.procs import owned_pid, pid_alive

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO / ".cache" / "vmimage" / "debian-x86_64"
LOG_TAIL_LINES = 30
GUEST_ENGINE_IP = qemu_argv.GUEST_IP  # where the guest engine publishes ports by default
VIRTIOFSD_PATHS = ("/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd")
# Extra virtiofsd options; none, on purpose (measured with bench/shares.py, docs/shares.md):
# cache=auto keeps host edits visible within 1 s and MAP_SHARED mmap working; cache=none
# streams 3-4x faster under TCG but fails every shared mmap (ENODEV) and slows metadata;
# cache=always and writeback let the guest keep stale data or sizes after a host edit;
# --thread-pool-size>0 gets virtiofsd 7.2 killed by its own seccomp filter.
VIRTIOFSD_ARGS: tuple[str, ...] = ()


def host_os(system: str = sys.platform) -> str:
    return {"darwin": "macos", "win32": "windows"}.get(system, "linux")


def host_arch() -> str:
    return "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "x86_64"


def tsc_khz(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    """The host's TSC rate in kHz from its first `cpu MHz` line (0 when unknown)."""
    with contextlib.suppress(OSError):
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "cpu MHz":
                return int(float(value) * 1000)
    return 0


def guest_engine_args(args: Sequence[str]) -> list[str]:
    """The guest engine publishes ports on the guest's user-network address unless the
    user chose: SSH direct-tcpip reaches it from inside, and QEMU's UDP hostfwd can only
    reach that address, never the guest's loopback (machine/portlisten.py)."""
    if any(a == "--ip" or a.startswith("--ip=") for a in args):
        return list(args)
    return [*args, "--ip", GUEST_ENGINE_IP]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.replace("\r", "").splitlines()[-lines:])


def diagnose_qemu(log: str, port: int, kernel: Path) -> tuple[str, str]:
    """(message, hint) for QEMU exiting during start, from what it printed."""
    lower = log.lower()
    if "host forwarding rule" in lower or "could not set up host forwarding" in lower:
        return (
            f"the SSH port 127.0.0.1:{port} is already in use",
            "stop the program holding it, or set another ssh_port for this machine "
            "(0 picks a free one)",
        )
    if "could not load kernel" in lower or ("could not open" in lower and str(kernel) in log):
        return (f"QEMU could not load the kernel {kernel}", "rebuild the image: make images")
    bad_kernel = ("invalid kernel header", "pvh elf note", "linux kernel too old", "error loading")
    if any(words in lower for words in bad_kernel):
        return (
            f"{kernel} is not a bootable kernel for this machine type",
            "microvm needs the image's uncompressed PVH vmlinux: rebuild it with make images",
        )
    if "kvm" in lower or "hvf" in lower or "whpx" in lower:
        return ("QEMU could not use the accelerator", "start with --accel tcg (slow but works)")
    last = log.strip().splitlines()[-1] if log.strip() else "no output"
    return (f"QEMU exited: {last}", stages.BY_NAME["qemu"].hint)


class QemuBackend:
    """A machine run by QEMU, per the guest contract (issue 5)."""

    name = "qemu"
    boot_checkpoint = True  # offer the guest its control port (libvirt's domain has none)

    def __init__(
        self,
        spec: MachineSpec,
        timeouts: dict[str, float] | None = None,
        probes: accel.HostProbes | None = None,
    ) -> None:
        self.spec = spec
        self.dir = spec.directory
        self.timeouts = timeouts or {}
        self.probes = probes
        self._proc: subprocess.Popen[bytes] | None = None  # QEMU, when this object spawned it
        self._forwarder: subprocess.Popen[bytes] | None = None
        self._kernel = Path()
        self._virtiofsd: list[subprocess.Popen[bytes]] = []
        self._state_key = ""  # the saved boot state this start would use or save

    # -- files ------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        return self.dir / name

    def socket_path(self) -> Path:
        return self.path(filenames.SOCKET)

    def create(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys.ensure(self.dir)
        known = self.path(filenames.KNOWN_HOSTS)
        if not known.is_file():
            # Keyed by an alias, not 127.0.0.1:port: the port may change at every start.
            keys.write_private(known, f"{self.host_alias()} {keys.pinned_host_key(self.dir)}\n")
        disk = self.path(filenames.DATA_DISK)
        if not disk.exists():
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", str(disk), f"{self.spec.disk_gb}G"],
                check=True,
                capture_output=True,
            )

    def host_alias(self) -> str:
        return f"dockyard-{self.spec.name}"

    def image(self) -> tuple[Path, dict[str, Any]]:
        image_dir = self.spec.image_dir or DEFAULT_IMAGE
        try:
            manifest = json.loads((image_dir / "manifest.json").read_text())
        except (OSError, ValueError) as e:
            raise StageFailed(
                f"no usable guest image at {image_dir} ({e})",
                "qemu",
                "build it: make images (python -m vmimage build --recipe debian ...)",
            ) from e
        return image_dir, manifest

    # -- pids -------------------------------------------------------------------------

    def qemu_pid(self) -> int | None:
        return owned_pid(self.path(filenames.QEMU_PID), str(self.dir))

    def forward_pid(self) -> int | None:
        return owned_pid(self.path(filenames.FORWARD_PID), str(self.dir))

    def _alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.qemu_pid() is not None

    # -- start ------------------------------------------------------------------------

    def start(self, progress: Progress | None = None) -> list[Stage]:
        if self.qemu_pid() is not None:
            raise MachineError(f"machine {self.spec.name} is already running", "", "stop it first")
        self.create()
        clock = stages.StageClock(progress, self.timeouts)
        try:
            self._boot(clock)
        except BaseException as e:
            self._teardown()
            if isinstance(e, StageFailed) and not e.log_tail:
                e.log_tail = self._log_tail()
            raise
        finally:
            self._write_stages(clock.stages)
        return clock.stages

    def _boot(self, clock: stages.StageClock) -> None:
        with clock.stage("accel") as st:
            choice = accel.choose(self.spec.accel, probes=self.probes)
            st.detail = choice.warning or choice.name
        self._state_key = self._boot_state_key(choice.name)
        port = self._restore(clock, choice.name)
        if port is None:
            port = self._fresh_boot(clock, choice.name)
        qemu_pid = self._proc.pid if self._proc else self.qemu_pid()
        sharehost.spawn(self.dir, port, qemu_pid or 0, self.spec.shares)  # sync, file events

    def _fresh_boot(self, clock: stages.StageClock, accel_name: str) -> int:
        with clock.stage("qemu") as st:
            port = self._launch(accel_name, clock.deadline("qemu"))
            st.detail = f"pid {self._proc.pid if self._proc else '?'}, ssh port {port}"
            self._start_forwarder(port)  # connects once sshd answers; overlaps the boot
        with clock.stage("kernel"):
            self._wait_serial(clock, "kernel", lambda text: bool(text))
        for name in ("init", "network"):
            with clock.stage(name):
                self._wait_serial(clock, name, lambda text, n=name: self._seen(text, n))
        if self._state_key:
            with clock.stage("checkpoint") as st:
                self._wait_serial(clock, "checkpoint", lambda t: self._seen(t, "checkpoint"))
                st.detail = self._save_state()
                wakeup.wake(self.path(filenames.CONTROL_SOCK), clock.deadline("checkpoint"))
        self._ready(clock, port)
        return port

    def _ready(self, clock: stages.StageClock, port: int) -> None:
        with clock.stage("sshd"):
            self._wait_forwarder(clock, port)
        with clock.stage("engine"):
            self._wait_engine(clock)

    # -- the saved boot state ---------------------------------------------------------

    def _boot_state_key(self, accel_name: str) -> str:
        """The key of this start's boot state; "" when the guest has no checkpoint (an
        image without one, the libvirt backend) or the image is unusable (the qemu stage
        then says why)."""
        if not self.boot_checkpoint:
            return ""
        try:
            manifest = self.image()[1]
            cfg = self._vm_config(accel_name, 0)
        except StageFailed:
            return ""
        if cfg.control_socket is None:
            return ""
        doc = seed.document(self.dir, *self._seed_args(cfg))
        canonical = qemu_argv.build(dataclasses.replace(cfg, tsc_khz=0))
        image = json.dumps(manifest, sort_keys=True).encode()
        return bootstate.key(canonical, doc, image, self.spec.disk_gb)

    def _save_state(self) -> str:
        """Save the parked guest unless a state for this key exists (or was refused)."""
        if not self.spec.saved_boot or not bootstate.should_save(self.dir, self._state_key):
            return "boot state kept" if self.spec.saved_boot else "saved boot off"
        meta = bootstate.save(self.dir, self.path(filenames.QMP_SOCK), self._state_key)
        if meta.saved:
            return f"boot state saved ({meta.size // 2**20} MiB)"
        return f"boot state not saved: {meta.reason}"

    def _restore(self, clock: stages.StageClock, accel_name: str) -> int | None:
        """Start from the saved boot state: the ssh port, or None when there is none or it
        failed (then it is discarded, and the failed stage stays in the list)."""
        if not self._state_key or not self.spec.saved_boot:
            return None
        state = bootstate.usable(self.dir, self._state_key)
        if state is None:
            return None
        try:
            with clock.stage("restore") as st:
                deadline = clock.deadline("restore")
                port = self._launch(accel_name, deadline, incoming=True)
                self._start_forwarder(port)
                why = bootstate.load(
                    self.path(filenames.QMP_SOCK), state, deadline - time.monotonic()
                )
                if why:
                    why = self._qemu_said() or why
                    raise StageFailed(f"QEMU could not load the saved boot state: {why}", "restore")
                wakeup.wake(self.path(filenames.CONTROL_SOCK), deadline)
                st.detail = f"{state.stat().st_size // 2**20} MiB loaded, ssh port {port}"
        except (StageFailed, MachineError) as e:
            print(f"machine: booting afresh: {e.message}", file=sys.stderr)
            self._teardown()
            bootstate.discard(self.dir)
            return None
        try:
            self._ready(clock, port)
        except StageFailed:
            bootstate.discard(self.dir)  # the next start boots afresh rather than repeat this
            raise
        return port

    # -- spawning ---------------------------------------------------------------------

    def _launch(self, accel_name: str, deadline: float, incoming: bool = False) -> int:
        """Spawn QEMU and wait for QMP. A port we picked ourselves may be taken between
        the pick and QEMU's bind; then one retry with another free port."""
        for attempt in (1, 2):
            port = self._spawn(accel_name, incoming)
            if qmp.wait_ready(self.path(filenames.QMP_SOCK), self._alive, deadline):
                return port
            error = self._qemu_exit(port)
            busy = "already in use" in error.message
            if attempt == 2 or self.spec.ssh_port or not busy or self._alive():
                raise error
        raise AssertionError("unreachable")

    def _seed_args(self, cfg: qemu_argv.VmConfig) -> tuple[list[str], list[ShareSpec], bool]:
        """What the seed carries besides the keys; it tells the guest to park at its
        checkpoint iff QEMU offers the control port."""
        engine_args = guest_engine_args(self.spec.engine_args)
        return engine_args, self.spec.shares, cfg.control_socket is not None

    def _spawn(self, accel_name: str, incoming: bool = False) -> int:
        """Spawn QEMU; with `incoming` it waits, paused, for the saved boot state."""
        port = self.spec.ssh_port or free_port()
        cfg = self._vm_config(accel_name, port)
        self.path(filenames.SSH_PORT).write_text(f"{port}\n")
        sharehost.write(self.dir, self.spec.shares)
        seed.write(self.dir, *self._seed_args(cfg))
        stale = (filenames.QMP_SOCK, filenames.SOCKET, filenames.QEMU_PID, filenames.CONTROL_SOCK)
        for name in stale:
            with contextlib.suppress(FileNotFoundError):
                self.path(name).unlink()
        self.path(filenames.SERIAL_LOG).write_bytes(b"")
        argv = qemu_argv.build(cfg) + (["-incoming", "defer"] if incoming else [])
        self.path(filenames.QEMU_ARGV).write_text("\n".join(argv) + "\n")
        for index in qemu_argv.virtiofs_shares(cfg):
            self._virtiofsd.append(self._spawn_virtiofsd(cfg, index))
        with self.path(filenames.QEMU_LOG).open("wb") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the CLI; not killed by its terminal's ^C
            )
        self._kernel = cfg.kernel
        return port

    def _vm_config(self, accel_name: str, port: int) -> qemu_argv.VmConfig:
        """The VM of this machine's image, disk, seed and sockets; the libvirt backend runs
        the same one, so both take it from here. A missing kernel or initramfs fails first,
        before any file of the machine changes."""
        image_dir, manifest = self.image()
        boot = manifest.get("boot", {})
        kernel = image_dir / str(boot.get("kernel", "vmlinux"))
        initrd = image_dir / str(boot.get("initrd", "initramfs.img"))
        for what, path in (("kernel", kernel), ("initramfs", initrd)):
            if not path.is_file():
                raise StageFailed(
                    f"the image's {what} {path} does not exist",
                    "qemu",
                    "rebuild the image: make images",
                )
        return qemu_argv.VmConfig(
            host=host_os(),
            arch=host_arch(),
            accel=accel_name,
            cpus=self.spec.cpus,
            memory_mb=self.spec.memory_mb,
            kernel=kernel,
            initrd=initrd,
            cmdline=str(boot.get("cmdline", "console=ttyS0 quiet panic=-1")),
            data_disk=self.path(filenames.DATA_DISK),
            seed=self.path(filenames.SEED),
            serial_log=self.path(filenames.SERIAL_LOG),
            qmp_socket=self.path(filenames.QMP_SOCK),
            pid_file=self.path(filenames.QEMU_PID),
            ssh_port=port,
            rootfs=image_dir / boot["rootfs"] if boot.get("rootfs") else None,
            control_socket=(
                self.path(filenames.CONTROL_SOCK)
                if self.boot_checkpoint and boot.get("checkpoint")
                else None
            ),
            tsc_khz=tsc_khz(),
            shares=tuple(self.spec.shares),
        )

    def _spawn_virtiofsd(self, cfg: qemu_argv.VmConfig, index: int) -> subprocess.Popen[bytes]:
        """One virtiofsd per virtiofs share; it exits by itself when QEMU disconnects."""
        binary = shutil.which("virtiofsd") or next(
            (p for p in VIRTIOFSD_PATHS if Path(p).is_file()), ""
        )
        if not binary:
            raise StageFailed(
                "virtiofsd is not installed", "qemu", "install qemu-system-common, or use 9p"
            )
        sock = qemu_argv.virtiofs_socket(cfg, index)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        log_path = self.path(f"virtiofsd{index}.log")
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    *[binary, f"--socket-path={sock}"],
                    *["-o", f"source={cfg.shares[index].host_path}", *VIRTIOFSD_ARGS],
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if not sock.exists():
            proc.kill()
            proc.wait()
            raise StageFailed(
                f"virtiofsd for {cfg.shares[index].host_path} did not start",
                "qemu",
                "check that the shared directory exists",
                tail(log_path),
            )
        return proc

    def _qemu_log(self) -> tuple[bool, str]:
        """(whether QEMU has exited, the end of its log), giving it 2 s to finish exiting."""
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=2)
        return not self._alive(), tail(self.path(filenames.QEMU_LOG))

    def _qemu_said(self) -> str:
        """QEMU's last words, once it has exited ("" while it runs)."""
        exited, log = self._qemu_log()
        lines = log.splitlines() if exited else []
        return lines[-1] if lines else ""

    def _qemu_exit(self, port: int) -> StageFailed:
        exited, log = self._qemu_log()
        if not exited:
            return StageFailed("QEMU did not answer on its QMP socket", "qemu", "", log)
        message, hint = diagnose_qemu(log, port, self._kernel)
        return StageFailed(message, "qemu", hint, log)

    def _seen(self, text: str, name: str) -> bool:
        return any(e.stage == name and not e.failed for e in stages.parse_serial(text))

    def _check_guest(self, current: str) -> None:
        """Fail `current` at once if the guest reported a failure or QEMU exited."""
        text = self.path(filenames.SERIAL_LOG).read_text(errors="replace")
        for event in stages.parse_serial(text):
            if event.failed:
                raise StageFailed(
                    f"the guest failed in its {event.stage} step: {event.message}",
                    current,
                    stages.guest_fail_hint(event.stage, current),
                    tail(self.path(filenames.SERIAL_LOG)),
                )
        if not self._alive():
            raise StageFailed(
                "QEMU exited (the guest crashed or powered off)",
                current,
                "see the serial log below; `dockyard machine logs` shows all of it",
                tail(self.path(filenames.SERIAL_LOG)),
            )

    def _wait_serial(self, clock: stages.StageClock, name: str, done: Any) -> None:
        deadline = clock.deadline(name)
        serial = self.path(filenames.SERIAL_LOG)
        while time.monotonic() < deadline:
            text = serial.read_text(errors="replace")
            if done(text):
                return
            self._check_guest(name)
            time.sleep(0.05)
        raise clock.fail(name, f"timed out after {clock.timeout(name):.0f} s", tail(serial))

    def _start_forwarder(self, port: int) -> None:
        env = dict(os.environ)
        root = str(Path(machine.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        pid = self._proc.pid if self._proc else self.qemu_pid()
        with self.path(filenames.FORWARD_LOG).open("wb") as log:
            proc = subprocess.Popen(
                [
                    *[sys.executable, "-m", "machine.forward", str(self.dir), str(port), str(pid)],
                    *["--serial", str(self.path(filenames.SERIAL_LOG))],
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._forwarder = proc
        self.path(filenames.FORWARD_PID).write_text(f"{proc.pid}\n")

    def _wait_forwarder(self, clock: stages.StageClock, port: int) -> None:
        """sshd is up when the forwarder's first session is (it then binds docker.sock)."""
        deadline = clock.deadline("sshd")
        while time.monotonic() < deadline:
            if self.socket_path().exists():
                return
            self._check_guest("sshd")
            if self._forwarder is not None and self._forwarder.poll() is not None:
                log = tail(self.path(filenames.FORWARD_LOG))
                last = log.splitlines()[-1].removeprefix("forward: ") if log else "no output"
                if self._forwarder.returncode == forward.EXIT_HOST_KEY:
                    raise StageFailed(last, "sshd", ssh.HOST_KEY_HINT, log)
                raise StageFailed(f"SSH to the guest failed: {last}", "sshd", "", log)
            time.sleep(0.05)
        raise clock.fail(
            "sshd", f"no SSH answer on 127.0.0.1:{port} within {clock.timeout('sshd'):.0f} s"
        )

    def _wait_engine(self, clock: stages.StageClock) -> None:
        """/_ping through the forwarded socket: at once when the guest prints its `engine`
        line (free to watch), else once a second (each try costs an SSH channel in a guest
        still busy starting; a guest that never prints the line still gets through)."""
        deadline = clock.deadline("engine")
        serial = self.path(filenames.SERIAL_LOG)
        last_ping = 0.0
        while time.monotonic() < deadline:
            announced = self._seen(serial.read_text(errors="replace"), "engine")
            if announced or time.monotonic() - last_ping >= 1.0:
                last_ping = time.monotonic()
                if ping(self.socket_path()):
                    return
            self._check_guest("engine")
            if self._forwarder is not None and self._forwarder.poll() is not None:
                raise StageFailed(
                    "the socket forwarder exited",
                    "engine",
                    stages.BY_NAME["engine"].hint,
                    tail(self.path(filenames.FORWARD_LOG)),
                )
            time.sleep(0.1)
        raise clock.fail("engine", f"timed out after {clock.timeout('engine'):.0f} s")

    def _log_tail(self) -> str:
        parts = []
        for name in (filenames.SERIAL_LOG, filenames.QEMU_LOG):
            text = tail(self.path(name))
            if text:
                parts.append(f"--- {name} ---\n{text}")
        return "\n".join(parts)

    def _write_stages(self, done: list[Stage]) -> None:
        with contextlib.suppress(OSError):
            doc = [s.as_dict() for s in done]
            self.path(filenames.STAGES).write_text(json.dumps(doc, indent=1) + "\n")

    # -- stop -------------------------------------------------------------------------

    def _teardown(self) -> None:
        """Kill what this start spawned (by pid), keep the logs."""
        sharehost.terminate(self.dir, timeout=0)
        fwd = self._forwarder
        if fwd is not None and fwd.poll() is None:
            fwd.kill()
            fwd.wait()
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        for daemon in self._virtiofsd:
            if daemon.poll() is None:
                daemon.kill()
            daemon.wait()
        self._virtiofsd.clear()
        self._remove_runtime_files()

    def _remove_runtime_files(self) -> None:
        for name in (
            filenames.QMP_SOCK,
            filenames.SOCKET,
            filenames.FORWARD_PID,
            filenames.QEMU_PID,
        ):
            with contextlib.suppress(FileNotFoundError):
                self.path(name).unlink()

    def stop(self, timeout: float = 30.0) -> None:
        sharehost.terminate(self.dir)  # sync sessions finish while the guest still runs
        pid = self.qemu_pid()
        if pid is not None:

            def alive() -> bool:
                if self._proc is not None and self._proc.pid == pid:
                    return self._proc.poll() is None
                return pid_alive(pid)

            self._trim()
            qmp.powerdown(self.path(filenames.QMP_SOCK), alive, timeout)
            deadline = time.monotonic() + 10
            while alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive():
                os.kill(pid, signal.SIGKILL)
            if self._proc is not None and self._proc.pid == pid:
                self._proc.wait()
            with contextlib.suppress(FileNotFoundError):
                self.path(filenames.QEMU_PID).unlink()
        for daemon in self._virtiofsd:  # they end with QEMU; reap ours
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        self._virtiofsd.clear()
        fpid = self.forward_pid()
        if fpid is not None:
            os.kill(fpid, signal.SIGTERM)
            fwd = self._forwarder
            if fwd is not None and fwd.pid == fpid:
                fwd.wait()
        self._remove_runtime_files()
        if pid is not None:
            self._compact()

    def _trim(self) -> None:
        """fstrim in the guest before its power-off (best effort: a guest that does not
        answer SSH is still stopped)."""
        try:
            port = int(self.path(filenames.SSH_PORT).read_text())
            client = ssh.connect(self.dir, port, time.monotonic() + 10)
        except (OSError, ValueError, MachineError):
            return
        try:
            disk.trim(client, self.dir)
        except Exception as e:  # paramiko or a slow guest: the stop goes on
            print(f"machine: fstrim in the guest failed: {e}", file=sys.stderr)
        finally:
            client.close()

    def _compact(self) -> None:
        """Shrink the data disk to what is allocated; the original stays on any failure."""
        try:
            disk.compact(self.path(filenames.DATA_DISK))
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            print(f"machine: the data disk was kept as it was ({e})", file=sys.stderr)

    # -- status, logs, ssh ------------------------------------------------------------

    def status(self) -> MachineStatus:
        sock = self.socket_path()
        if not self.dir.is_dir():
            return MachineStatus(MachineState.NOT_CREATED, self.name, sock)
        pid = self.qemu_pid()
        accel_used = _accel_of(self.path(filenames.QEMU_ARGV))
        if pid is not None:
            return MachineStatus(MachineState.RUNNING, self.name, sock, pid, accel_used)
        if self.path(filenames.QEMU_PID).exists():
            # QEMU removes its pidfile when it exits normally; a pidfile left behind means
            # it was killed or crashed. The serial log of that run is kept.
            return MachineStatus(
                MachineState.CRASHED,
                self.name,
                sock,
                None,
                accel_used,
                "QEMU died without stopping the machine; the serial log is kept:\n"
                + tail(self.path(filenames.SERIAL_LOG), 10),
            )
        return MachineStatus(MachineState.STOPPED, self.name, sock, None, accel_used)

    def logs(self) -> str:
        try:
            return self.path(filenames.SERIAL_LOG).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def ssh_argv(self, command: Sequence[str] = ()) -> list[str]:
        """The OpenSSH client command for this machine (the pinned host key only)."""
        port = self.path(filenames.SSH_PORT).read_text().strip()
        return [
            "ssh",
            *["-i", str(self.path(filenames.SSH_KEY)), "-p", port],
            *["-o", f"UserKnownHostsFile={self.path(filenames.KNOWN_HOSTS)}"],
            *["-o", f"HostKeyAlias={self.host_alias()}"],
            *["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes"],
            *["-o", "LogLevel=ERROR"],
            *([] if command else ["-t"]),
            f"{ssh.GUEST_USER}@{ssh.LOOPBACK}",
            *command,
        ]

    def ssh(self, command: Sequence[str] = ()) -> int:
        if self.qemu_pid() is None:
            raise MachineError(f"machine {self.spec.name} is not running", "", "start it first")
        return subprocess.call(self.ssh_argv(command))

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _accel_of(argv_file: Path) -> str:
    try:
        argv = argv_file.read_text().splitlines()
        return argv[argv.index("-accel") + 1].split(",")[0]
    except (OSError, ValueError, IndexError):
        return ""


def ping(sock: Path, timeout: float = 2.0) -> bool:
    """GET /_ping through the forwarded socket answers 200 OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: dockyard\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"OK")
