"""The engine socket on the host: `<machine dir>/docker.sock`, tunnelled over SSH.

Each connection accepted on the host socket gets its own SSH channel of type
`direct-streamlocal@openssh.com` to the guest engine's `/run/dockyard/docker.sock`
(OpenSSH's extension: a unix-socket `direct-tcpip`). Why SSH and not a TCP port forward:
the engine's API is root in the guest, and a loopback TCP port is open to every local user,
whereas the host socket is 0600 and SSH authenticates both ends. There is no vsock here.

The bytes are pumped by two threads per connection so hijacked streams (attach, logs -f,
exec -it) flow both ways at once, and a half-close is passed on: the client's EOF becomes
the channel's EOF (`docker run` closes its stdin side while still reading output), and the
guest's EOF becomes a shutdown(SHUT_WR) of the host socket.

Run as its own process (`python -m machine.forward DIR PORT QEMU_PID`) so the socket
outlives the CLI that started the machine. The backend starts it as soon as QEMU runs, so
its interpreter start and SSH handshake overlap the guest's boot instead of following it;
it binds the socket once its first session is up (the backend's `sshd` stage is that
moment: one handshake on the critical path, not two competing for an emulated CPU),
reconnects SSH with backoff if the session drops, and exits (removing the socket) when the
QEMU process is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import paramiko
from paramiko.common import cMSG_CHANNEL_OPEN
from paramiko.message import Message

from machine import clockwatch, filenames, portforward, ssh, stages
from machine.procs import pid_alive
from machine.splice import splice

GUEST_SOCKET = "/run/dockyard/docker.sock"
STREAMLOCAL = "direct-streamlocal@openssh.com"
EXIT_HOST_KEY = 3  # the forwarder's exit status when the guest's host key is not the pinned one
FIRST_CONNECT_S = 300.0  # the sum of the boot stages' timeouts before sshd, and more


def open_streamlocal(
    transport: paramiko.Transport, path: str, timeout: float = 10.0
) -> paramiko.Channel:
    """Open a `direct-streamlocal@openssh.com` channel to the unix socket `path`.

    paramiko's `Transport.open_channel` writes the type-specific fields only for
    direct-tcpip/forwarded-tcpip/x11, so this builds the CHANNEL_OPEN message itself and
    registers the channel exactly as open_channel does (same private bookkeeping), then
    waits for the server's confirmation. The type-specific part, from OpenSSH's
    PROTOCOL file:
        string  socket path
        string  reserved (empty)
        uint32  reserved (0)
    """
    if not transport.is_active():
        raise paramiko.SSHException("SSH session not active")
    t = cast(Any, transport)  # the bookkeeping below is paramiko-private, untyped
    with transport.lock:
        window = t._sanitize_window_size(None)
        max_packet = t._sanitize_packet_size(None)
        chanid = t._next_channel()
        m = Message()
        m.add_byte(cMSG_CHANNEL_OPEN)
        m.add_string(STREAMLOCAL)
        m.add_int(chanid)
        m.add_int(window)
        m.add_int(max_packet)
        m.add_string(path)
        m.add_string("")
        m.add_int(0)
        chan = paramiko.Channel(chanid)
        t._channels.put(chanid, chan)
        event = threading.Event()
        transport.channel_events[chanid] = event
        transport.channels_seen[chanid] = True
        t_chan = cast(Any, chan)
        t_chan._set_transport(transport)
        t_chan._set_window(window, max_packet)
    t._send_user_message(m)
    deadline = time.monotonic() + timeout
    while not event.wait(0.1):
        if not transport.is_active():
            raise transport.get_exception() or paramiko.SSHException("SSH session ended")
        if time.monotonic() > deadline:
            raise paramiko.SSHException(f"timed out opening a channel to {path}")
    opened: paramiko.Channel | None = t._channels.get(chanid)
    if opened is None:
        # The server answered CHANNEL_OPEN_FAILURE (e.g. no such socket, forwarding off).
        raise transport.get_exception() or paramiko.SSHException(
            f"the guest refused a channel to {path}"
        )
    return opened


class Tunnel:
    """One SSH session shared by every connection, re-made with backoff when it drops."""

    def __init__(self, connect: Callable[[], paramiko.SSHClient], give_up: float = 60.0) -> None:
        self._connect = connect
        self._give_up = give_up
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    def transport(self) -> paramiko.Transport:
        with self._lock:
            client = self._client
            t = client.get_transport() if client is not None else None
            if t is not None and t.is_active():
                return t
            if client is not None:
                client.close()
            self._client = self._reconnect()
            t = self._client.get_transport()
            assert t is not None
            return t

    def _reconnect(self) -> paramiko.SSHClient:
        delay, deadline = 0.1, time.monotonic() + self._give_up
        while True:
            try:
                return self._connect()
            except ssh.HostKeyChanged:
                raise
            except Exception:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def adopt(self, client: paramiko.SSHClient) -> None:
        """Use an already connected session first."""
        with self._lock:
            self._client = client

    def channel(self, path: str) -> paramiko.Channel:
        transport = self.transport()
        try:
            return open_streamlocal(transport, path)
        except paramiko.ChannelException:
            raise  # the guest refused this one channel (no socket yet); the session is fine
        except (paramiko.SSHException, EOFError, OSError):
            if transport.is_active():
                raise
            # A dead session is often noticed only when a channel fails: re-make it once.
            with self._lock:
                if self._client is not None and self._client.get_transport() is transport:
                    self._client.close()
                    self._client = None
            return open_streamlocal(self.transport(), path)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def listen(path: Path) -> socket.socket:
    """The host socket, 0600 from the moment it exists (bound under umask 0177)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(128)
    return sock


def _handle(conn: socket.socket, tunnel: Tunnel, remote: str) -> None:
    try:
        chan = tunnel.channel(remote)
    except Exception as e:
        print(f"forward: cannot reach {remote} in the guest: {e!r}", file=sys.stderr, flush=True)
        conn.close()
        return
    splice(conn, chan)


def serve(listener: socket.socket, tunnel: Tunnel, remote: str = GUEST_SOCKET) -> None:
    """Accept until the listener is closed; every connection in its own thread."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_handle, args=(conn, tunnel, remote), daemon=True).start()


def _sshd_announced(serial: Path) -> bool:
    try:
        text = serial.read_text(errors="replace")
    except OSError:
        return False
    return any(e.stage == "sshd" and not e.failed for e in stages.parse_serial(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m machine.forward")
    parser.add_argument("directory", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("qemu_pid", type=int)
    parser.add_argument("--serial", type=Path, help="wait for the guest's sshd line in it")
    args = parser.parse_args(argv)
    directory: Path = args.directory

    def qemu_alive() -> bool:
        return pid_alive(args.qemu_pid)

    def sshd_listening() -> bool:
        return args.serial is None or _sshd_announced(args.serial)

    tunnel = Tunnel(lambda: ssh.connect(directory, args.port, time.monotonic() + 10, qemu_alive))
    # Started while the guest still boots, so the first session is waited for (as long as
    # the VM lives, up to the boot's own budget); a failure ends here, visibly in forward.log.
    try:
        first = ssh.connect(
            directory, args.port, time.monotonic() + FIRST_CONNECT_S, qemu_alive, sshd_listening
        )
    except ssh.HostKeyChanged as e:
        print(f"forward: {e.message}", file=sys.stderr, flush=True)
        return EXIT_HOST_KEY
    except (TimeoutError, ConnectionError) as e:
        print(f"forward: {e}", file=sys.stderr, flush=True)
        return 1
    tunnel.adopt(first)
    sock_path = directory / filenames.SOCKET
    listener = listen(sock_path)
    threading.Thread(target=serve, args=(listener, tunnel), daemon=True).start()
    ports = portforward.PortForwarder(
        directory, sock_path, tunnel.transport, directory / filenames.QMP_SOCK
    )
    threading.Thread(target=ports.run, daemon=True).start()
    clock = clockwatch.ClockWatch(tunnel.transport, ports.poke, ports.log, ports.ready)
    threading.Thread(target=clock.run, daemon=True).start()
    try:
        while pid_alive(args.qemu_pid):
            time.sleep(0.5)
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        _within(STOP_S, clock.stop, ports.stop, tunnel.close)
    return 0


STOP_S = 5.0  # how long the helpers get to let go once QEMU is gone


def _within(seconds: float, *steps: Callable[[], None]) -> None:
    """Run `steps` in order on a daemon thread, waiting at most `seconds`: a helper stuck on
    the dead guest (an SSH read, a QMP call to the gone QEMU) must not keep this process,
    and with it the machine's "running" look, alive."""

    def run() -> None:
        for step in steps:
            with contextlib.suppress(Exception):
                step()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)


if __name__ == "__main__":
    raise SystemExit(main())
