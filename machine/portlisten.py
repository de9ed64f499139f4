"""The host ends of port forwards: QEMU's user network (`hostfwd_add`), or a host listener
tunnelled over SSH.

Which way (bench/forward.py, TCG, this 2-core host under load: median connect 42 ms and
3.1 MB/s through hostfwd against 109 ms and 1.3 MB/s through SSH direct-tcpip): TCP and
UDP go through QEMU's `hostfwd_add` (human monitor, through QMP) to the guest's 10.0.2.15,
where the guest engine's shims listen (it runs with `--ip 10.0.2.15`, qemu_backend.py).
SSH direct-tcpip stays for what hostfwd cannot reach: a port the guest published on its
own loopback (`-p 127.0.0.1:...` given to the guest engine), and machines without a QEMU
monitor of ours (libvirt). SSH has no UDP channel, so UDP needs the monitor.

A taken host port is found by binding it first (SO_REUSEADDR, as QEMU does), so the reason
is the precise one; QEMU's own refusal ("could not set up host forwarding rule") stays a
second line of defence for the moment between the probe and its bind.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from machine import qemu_argv, qmp
from machine.portplan import Forward, is_loopback
from machine.splice import splice

GUEST_IP = qemu_argv.GUEST_IP
NETDEV = "net0"  # the user netdev's id in machine/qemu_argv.py


class ForwardFailed(Exception):
    """A forward could not be made; the message is the reason shown to the user."""


def bind_reason(fwd: Forward, e: OSError) -> str:
    where = f"{fwd.host_ip}:{fwd.host_port}"
    if e.errno == errno.EADDRINUSE:
        return (
            f"{where} is already in use on this host: stop the program holding it, "
            f"or publish another port (-p OTHER:{fwd.guest_port})"
        )
    if e.errno == errno.EACCES:
        return f"{where}: binding a port below 1024 needs privileges on this host"
    if e.errno == errno.EADDRNOTAVAIL:
        return f"{where}: this host has no such address"
    return f"{where}: {e.strerror or e}"


class TcpForward:
    """A host listener whose connections become SSH channels to the guest."""

    via = "ssh"

    def __init__(self, fwd: Forward, transport: Callable[[], paramiko.Transport]) -> None:
        self.fwd = fwd
        self._transport = transport
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Rebinding a port whose last connections sit in TIME_WAIT must work at once
        # (a container restarted); SO_REUSEADDR never lets two listeners share a port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((fwd.host_ip, fwd.host_port))
            sock.listen(128)
        except OSError as e:
            sock.close()
            raise ForwardFailed(bind_reason(fwd, e)) from e
        self._sock = sock
        threading.Thread(target=self._accept, daemon=True, name=fwd.label()).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._carry, args=(conn, peer), daemon=True).start()

    def _carry(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        target = (self.fwd.guest_ip, self.fwd.guest_port)
        try:
            chan = self._transport().open_channel("direct-tcpip", target, peer, timeout=10)
        except Exception:
            conn.close()  # the client sees a reset, as with nothing listening in the guest
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        splice(conn, chan)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def hostfwd_rule(fwd: Forward) -> str:
    guest = fwd.guest_ip if not is_loopback(fwd.guest_ip) else GUEST_IP
    return f"{fwd.proto}:{fwd.host_ip}:{fwd.host_port}-{guest}:{fwd.guest_port}"


def probe_bind(fwd: Forward) -> None:
    """Raise ForwardFailed with the precise reason when the host port cannot be bound."""
    kind = socket.SOCK_STREAM if fwd.proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((fwd.host_ip, fwd.host_port))
            if kind == socket.SOCK_STREAM:
                s.listen(1)
        except OSError as e:
            raise ForwardFailed(bind_reason(fwd, e)) from e


def hostfwd_reaches(fwd: Forward, qmp_socket: Path | None) -> bool:
    """QEMU's hostfwd can carry this forward: a monitor, and a guest address that is not
    the guest's loopback."""
    return qmp_socket is not None and qmp_socket.exists() and not is_loopback(fwd.guest_ip)


class QemuForward:
    """A forward QEMU's user network makes (`hostfwd_add` through the monitor)."""

    via = "qmp"

    def __init__(self, fwd: Forward, qmp_socket: Path | None) -> None:
        self.fwd = fwd
        self._qmp = qmp_socket
        if qmp_socket is None or not qmp_socket.exists():
            raise ForwardFailed(
                f"{fwd.label()}: UDP is forwarded by QEMU's user network, and this machine "
                "has no QEMU monitor"
            )
        probe_bind(fwd)
        try:
            out = qmp.hmp(qmp_socket, f"hostfwd_add {NETDEV} {hostfwd_rule(fwd)}")
        except Exception as e:
            raise ForwardFailed(f"{fwd.label()}: the QEMU monitor did not answer ({e})") from e
        if out.strip():  # HMP prints nothing on success
            raise ForwardFailed(
                f"{fwd.label()}: QEMU refused the forward ({out.strip()}): the port is "
                f"probably in use on this host; publish another (-p OTHER:{fwd.guest_port}/udp)"
            )

    def close(self) -> None:
        if self._qmp is None:
            return
        rule = f"{self.fwd.proto}:{self.fwd.host_ip}:{self.fwd.host_port}"
        with contextlib.suppress(Exception):
            qmp.hmp(self._qmp, f"hostfwd_remove {NETDEV} {rule}")
