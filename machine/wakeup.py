"""The boot checkpoint's host half: tell the parked guest the time and give it entropy.

Why: the guest parks at its boot checkpoint until the host speaks (vmimage/guest/
wakeup.py has the guest's side and the line's format). On a fresh boot that is right
after the host saved it (bootstate.py); after a restore it is the first thing the guest
hears, and the clock and randomness it was saved with must not survive that moment.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from machine.errors import MachineError

ENTROPY_BYTES = 64


class WakeRefused(MachineError):
    """The guest answered the wake-up with an error."""


def line(now: float | None = None) -> bytes:
    doc = {"time": time.time() if now is None else now, "entropy": os.urandom(ENTROPY_BYTES).hex()}
    return json.dumps(doc).encode() + b"\n"


def _connect(path: Path, deadline: float) -> socket.socket:
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            return s
        except OSError as e:
            s.close()
            if time.monotonic() >= deadline:
                raise MachineError(
                    f"QEMU's control port {path} does not accept connections ({e})", "", ""
                ) from None
            time.sleep(0.02)


def _answer(s: socket.socket, deadline: float) -> bytes:
    reply = b""
    while not reply.endswith(b"\n"):
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(4096)
        except TimeoutError:
            raise MachineError("the guest did not answer its wake-up in time") from None
        if not chunk:
            raise MachineError("QEMU closed the control port during the wake-up")
        reply += chunk
    return reply


def wake(control_socket: Path, deadline: float) -> None:
    """Send the wake-up and wait for the guest's answer; raises MachineError (WakeRefused
    when the guest refused the line)."""
    with _connect(control_socket, deadline) as s:
        s.sendall(line())
        reply = _answer(s, deadline)
    try:
        doc = json.loads(reply)
    except ValueError:
        raise MachineError(f"the guest answered its wake-up with {reply!r}") from None
    if not doc.get("ok"):
        raise WakeRefused(f"the guest refused its wake-up: {doc.get('error', doc)}")
