"""Host sleep and VM pause recovery: keep the guest clock on the host's, re-check forwards.

A paused VM (QMP `stop`, or the host asleep) freezes the guest's clock; after `cont` the
guest runs on, late by the whole pause, and TLS, make and cron misbehave. One SSH channel
runs a tiny guest loop that answers the guest's time when asked, and sets it when told.
Every second the host asks and compares the answer with its own clock at the round trip's
midpoint: a skew beyond `MAX_SKEW_S` plus half the round trip (a guest busy on an emulated
CPU answers late; that is latency, not skew) is stepped at once, the host's time sent on
the open channel (the error is one channel hop, not an SSH session start). A pause is seen
as a probe answered late, then measured again at once, so it is caught within a second of
the resume, whatever paused the VM.

Why not QMP's STOP/RESUME events: QEMU serves one QMP client at a time, and the backend's
stop (system_powerdown) and the UDP forwards (hostfwd_add) need short sessions on it; a
listener holding it would lock them out. Host sleep sends no QMP event at all; the clock
comparison sees both.

After a pause, or when the channel broke (the SSH session died while the host slept and
the tunnel reconnected), `on_jump` asks the port forwarder to re-check every forward.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

import paramiko

MAX_SKEW_S = 0.5  # beyond the measurement's own uncertainty (half the round trip)
GAP_S = 3.0  # a probe answered this late means the guest (or the host) was not running
PROBE_EVERY_S = 1.0
# One line in, one line out: "t" asks the time, "s EPOCH" sets it (and answers the time).
GUEST_LOOP = """
import sys, time
for line in sys.stdin:
    if line.startswith("s "):
        time.clock_settime(time.CLOCK_REALTIME, float(line[2:]))
    print("%.6f" % time.time(), flush=True)
"""


def skew(sent: float, received: float, guest_line: str) -> float | None:
    """Host minus guest seconds, the guest's answer taken at the round trip's midpoint
    (None for a line that is not a time)."""
    try:
        return (sent + received) / 2 - float(guest_line)
    except ValueError:
        return None


class ClockWatch:
    def __init__(
        self,
        transport: Callable[[], paramiko.Transport],
        on_jump: Callable[[], None],
        log: Callable[[str, dict[str, Any]], None],
        ready: threading.Event | None = None,
    ) -> None:
        self._ready = ready  # starts once the guest engine answered: not during its boot
        self._transport = transport
        self._on_jump = on_jump
        self._log = log
        self._stop = threading.Event()

    def run(self) -> None:
        while self._ready is not None and not self._ready.wait(1.0):
            if self._stop.is_set():
                return
        first = True
        while not self._stop.is_set():
            try:
                chan = self._transport().open_session(timeout=10)
                chan.exec_command("python3 -u -c " + shlex.quote(GUEST_LOOP))
            except Exception as e:
                self._log("clock-watch-lost", {"reason": str(e) or type(e).__name__})
                self._stop.wait(2.0)
                continue
            if not first:
                self._on_jump()  # a new session: the old one may have died in a sleep
            first = False
            try:
                self._watch(chan)
            finally:
                chan.close()
            self._stop.wait(1.0)

    def _watch(self, chan: paramiko.Channel) -> None:
        reader = chan.makefile("r")
        jumped = False
        while not self._stop.is_set():
            sent = time.time()
            chan.sendall(b"t\n")
            line = reader.readline()
            received = time.time()
            if not line:
                return
            rtt = received - sent
            off = skew(sent, received, line)
            if rtt > GAP_S:
                jumped = True  # paused or asleep: measure again now that it runs
                continue
            if off is not None and abs(off) > MAX_SKEW_S + rtt / 2:
                chan.sendall(f"s {time.time() + rtt / 2:.6f}\n".encode())
                reader.readline()
                self._log("clock-stepped", {"skew_s": round(off, 3), "rtt_s": round(rtt, 3)})
                jumped = True
            if jumped:
                jumped = False
                self._on_jump()
            self._stop.wait(PROBE_EVERY_S)

    def stop(self) -> None:
        self._stop.set()
