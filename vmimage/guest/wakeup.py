"""The boot checkpoint's guest half: park, then wake on the host's word (stdlib only).

Why a checkpoint: under an emulator a guest needs seconds to reach a running sshd with the
engine imported, and that state is the same at every boot of a machine. The host saves the
parked guest once (QEMU migration to a file, machine/bootstate.py) and later starts by
loading it instead of booting. What must differ after such a restore is handed over here,
before anything that depends on it runs:
  - the clock: the saved guest believes it is still the moment it was saved;
  - randomness: every restore starts from the same kernel and Python RNG state, so the
    host's fresh bytes are credited to the kernel pool, the kernel CRNG is reseeded at once,
    and Python's `random` (container names, DNS shuffles) is reseeded from it;
The data disk and the shares are mounted only after this (boot.sh), never inside the
saved state, so a restore never sees a stale filesystem.

The word comes over a virtio-serial port named `org.dockyard.ctl`: one JSON line
{"time": <host epoch seconds>, "entropy": "<hex>"}; the answer is {"ok": true} or
{"error": "..."}. Reads see end-of-file while no host is connected, so they are retried.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import random
import struct
import time
from typing import Any

PORT_NAME = "org.dockyard.ctl"
RNDADDENTROPY = 0x40085203  # _IOW('R', 0x03, int[2])
RNDRESEEDCRNG = 0x5207  # _IO('R', 0x07)
MIN_ENTROPY_BYTES = 32
RETRY_S = 0.02


class WakeError(ValueError):
    """The host's wake-up line is malformed."""


def control_port(sysfs: str = "/sys/class/virtio-ports") -> str | None:
    """The /dev path of the host's control port, or None when QEMU offers none (libvirt)."""
    for name_file in sorted(glob.glob(f"{sysfs}/*/name")):
        try:
            with open(name_file) as f:
                if f.read().strip() == PORT_NAME:
                    return "/dev/" + os.path.basename(os.path.dirname(name_file))
        except OSError:
            continue
    return None


def wait_for_port(timeout: float) -> str | None:
    """The control port once the driver lists it: QEMU announces a port to the loaded
    virtio_console driver over its control queue, so it shows up a little later."""
    deadline = time.monotonic() + timeout
    while (port := control_port()) is None and time.monotonic() < deadline:
        time.sleep(RETRY_S)
    return port


def parse(line: bytes) -> tuple[float, bytes]:
    """(host time, entropy) from one wake-up line; WakeError names what is wrong."""
    try:
        doc: Any = json.loads(line)
        when, entropy = float(doc["time"]), bytes.fromhex(doc["entropy"])
    except (ValueError, KeyError, TypeError) as e:
        raise WakeError(f"wake-up line is not {{time, entropy}}: {e}") from None
    if len(entropy) < MIN_ENTROPY_BYTES:
        raise WakeError(f"wake-up entropy is {len(entropy)} bytes, fewer than {MIN_ENTROPY_BYTES}")
    return when, entropy


def reseed(entropy: bytes) -> None:
    """Credit the host's bytes to the kernel pool, reseed the CRNG now, then Python's."""
    with open("/dev/urandom", "wb", buffering=0) as dev:
        request = struct.pack("ii", len(entropy) * 8, len(entropy)) + entropy
        fcntl.ioctl(dev, RNDADDENTROPY, request)
        fcntl.ioctl(dev, RNDRESEEDCRNG)
    random.seed()


def read_line(fd: int) -> bytes:
    """One line from the port; end-of-file means no host is attached yet: wait for one."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            buf = b""  # a host that left mid-line is not trusted for the rest of it
            time.sleep(RETRY_S)
            continue
        buf += chunk
    return buf


def wait_and_apply(port: str) -> None:
    """Block until the host's line arrives; apply it and answer. A bad line is answered
    with its error and waited past: only a good one lets the boot go on."""
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    try:
        while True:
            try:
                when, entropy = parse(read_line(fd))
                reseed(entropy)
                time.clock_settime(time.CLOCK_REALTIME, when)
            except (WakeError, OSError) as e:
                os.write(fd, json.dumps({"error": str(e)}).encode() + b"\n")
                continue
            os.write(fd, b'{"ok": true}\n')
            return
    finally:
        os.close(fd)
