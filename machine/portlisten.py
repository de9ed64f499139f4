"""The host ends of port forwards: a TCP listener tunnelled over SSH, a UDP one in QEMU.

TCP: the host listens itself and carries each accepted connection in an SSH `direct-tcpip`
channel to the guest engine's shim proxy (which listens on the guest engine's `--ip`).
Why SSH for TCP (bench/forward.py measured both ways): the session is already up for the
engine socket, authenticated and pinned; the listener is ours, so a taken host port is
seen at bind time with a clear reason, and its lifetime is ours (closing it frees the
port at once). QEMU's `hostfwd_add` would also work, but its error is a bare "could not
set up host forwarding rule" and it shares QEMU's single-threaded slirp loop.

UDP: SSH has no UDP channel, so QEMU's user network forwards it (`hostfwd_add udp:...`
through the monitor) to the guest's 10.0.2.15, where the shim must listen: the guest
engine runs with `--ip 10.0.2.15` for that reason (machine/qemu_backend.py).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from machine import forward, qmp
from machine.portplan import Forward, is_loopback

GUEST_IP = "10.0.2.15"  # the guest's address on QEMU's user network (vm-contract.md)
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
        forward.splice(conn, chan)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def hostfwd_rule(fwd: Forward) -> str:
    guest = fwd.guest_ip if not is_loopback(fwd.guest_ip) else GUEST_IP
    return f"{fwd.proto}:{fwd.host_ip}:{fwd.host_port}-{guest}:{fwd.guest_port}"


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
