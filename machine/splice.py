"""Carry one connection between a host socket and an SSH channel, both ways.

Why its own module: the engine socket's forwarder (forward.py) and the published ports'
SSH forwards (portlisten.py) both splice, and portlisten is itself imported by the
forwarder's port code: splice living in forward.py made a cycle.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import paramiko

CHUNK = 65536


def _pump_to_channel(sock: socket.socket, chan: paramiko.Channel) -> None:
    """Host client -> guest; the client's EOF becomes the channel's EOF."""
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        while data := sock.recv(CHUNK):
            chan.sendall(data)
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        chan.shutdown_write()


def _pump_to_socket(chan: paramiko.Channel, sock: socket.socket) -> None:
    """Guest -> host client; the guest's EOF becomes shutdown(SHUT_WR) of the client."""
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        while data := chan.recv(CHUNK):
            sock.sendall(data)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def splice(sock: socket.socket, chan: paramiko.Channel) -> None:
    """Carry one connection both ways until both sides are done, then close both."""
    up = threading.Thread(target=_pump_to_channel, args=(sock, chan), daemon=True)
    up.start()
    _pump_to_socket(chan, sock)
    while up.is_alive():
        up.join(0.5)
        if chan.closed:
            # The guest closed the whole channel: a client still sending (or idle) gets
            # its read side shut so the other pump ends too.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
    chan.close()
    sock.close()
