"""Named, timed boot stages: what a start waits for, how long, and what to tell the user.

A start goes through these in order; each has a timeout sized for TCG (the slowest
accelerator; hardware-accelerated boots finish far inside them) and a hint printed when it
fails. The guest prints `dockyard-stage <name> <uptime>` and `dockyard-fail <stage> <msg>`
lines on its serial console (the guest contract); `parse_serial` reads them, so the host
can time the guest's own steps and fail at once, with the guest's message, when the guest
gives up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from machine.backend import Progress, Stage, StageFailed, StageStatus


@dataclass(frozen=True)
class StageDef:
    name: str
    timeout: float  # seconds, for this stage alone
    hint: str


STAGES = (
    StageDef(
        "accel",
        5.0,
        "KVM/HVF/WHPX must be usable for hardware speed; --accel auto falls back to TCG",
    ),
    StageDef(
        "qemu",
        15.0,
        "QEMU could not start the VM: read the QEMU error above (missing kernel or disk, "
        "a busy SSH port, an unusable accelerator); `apt install qemu-system-x86` if QEMU "
        "itself is missing",
    ),
    StageDef(
        "kernel",
        30.0,
        "the kernel printed nothing: the image's kernel may be wrong for this machine type "
        "(microvm needs the uncompressed vmlinux); rebuild it with `make images`",
    ),
    StageDef(
        "init",
        60.0,
        "the kernel started but the guest init did not: see the serial log (`dockyard "
        "machine logs`); the initramfs may be damaged, rebuild the image",
    ),
    StageDef(
        "network",
        60.0,
        "the guest did not bring up its network: see the serial log for the failing step",
    ),
    StageDef(
        "checkpoint",
        120.0,
        "the guest did not reach its boot checkpoint (sshd up, engine imported): see the "
        "serial log (`dockyard machine logs`) and the engine log in the guest",
    ),
    StageDef(
        "restore",
        60.0,
        "the saved boot state could not be loaded; it was discarded and the machine boots "
        "afresh (a new state is saved)",
    ),
    StageDef(
        "sshd",
        90.0,
        "the guest's sshd did not answer on the forwarded port: see the serial log; another "
        "program may hold the port, or the guest failed before sshd",
    ),
    StageDef(
        "engine",
        120.0,
        "the engine in the guest did not answer /_ping through the forwarded socket: run "
        "`dockyard machine ssh -- tail /var/log/engine.log`",
    ),
)
BY_NAME = {s.name: s for s in STAGES}
GUEST_STAGES = ("init", "modules", "seed", "network", "checkpoint", "sshd", "data", "engine")
GUEST_FAIL_HINTS = {
    "modules": "the image's kernel modules do not match its kernel: rebuild it (make images)",
    "seed": "the seed the host wrote was refused: its message names the field; this is a bug "
    "worth reporting",
    "network": "the guest has no network device: QEMU needs a virtio-net device",
    "data": "the data disk could not be prepared: a disk holding something other than ext4 "
    "is never formatted; remove the machine's data disk to start afresh (its images go too)",
    "checkpoint": "the guest could not wait at, or wake from, its boot checkpoint: see the "
    "serial log; `dockyard machine start --fresh` boots without the saved state",
    "sshd": "the guest's sshd did not start: see the serial log (`dockyard machine logs`)",
    "engine": "the engine in the guest did not start: `dockyard machine ssh -- tail "
    "/var/log/engine.log`",
}


def guest_fail_hint(step: str, current: str) -> str:
    """The hint for a `dockyard-fail <step>` line seen while host stage `current` ran."""
    return GUEST_FAIL_HINTS.get(step) or BY_NAME[current].hint


@dataclass(frozen=True)
class SerialEvent:
    """One stage line of the guest: `failed` for dockyard-fail, with its message."""

    stage: str
    uptime: float
    failed: bool = False
    message: str = ""


def parse_line(line: str) -> SerialEvent | None:
    """A `dockyard-stage`/`dockyard-fail` line, or None for any other console output."""
    words = line.strip().split(maxsplit=2)
    if len(words) >= 2 and words[0] == "dockyard-fail":
        return SerialEvent(words[1], 0.0, True, words[2] if len(words) == 3 else "")
    if len(words) == 3 and words[0] == "dockyard-stage" and words[1] in GUEST_STAGES:
        try:
            return SerialEvent(words[1], float(words[2]))
        except ValueError:
            return None
    return None


def parse_serial(text: str) -> list[SerialEvent]:
    """Every stage event in a console log, in order. Lines may be interleaved with kernel
    output, so each is looked for anywhere in its line."""
    events = []
    for raw in text.replace("\r", "\n").splitlines():
        for marker in ("dockyard-stage ", "dockyard-fail "):
            at = raw.find(marker)
            if at >= 0:
                event = parse_line(raw[at:])
                if event is not None:
                    events.append(event)
                break
    return events


class StageClock:
    """Runs the stages of one start: times each, reports it, turns failures into
    StageFailed with the stage's hint."""

    def __init__(
        self, progress: Progress | None = None, timeouts: Mapping[str, float] | None = None
    ) -> None:
        self.progress = progress
        self.timeouts = dict(timeouts or {})  # per-stage overrides (tests shrink some)
        self.t0 = time.monotonic()
        self.stages: list[Stage] = []

    def timeout(self, name: str) -> float:
        return self.timeouts.get(name, BY_NAME[name].timeout)

    def deadline(self, name: str) -> float:
        """The monotonic time the current stage `name` must be done by."""
        return self.stages[-1].started + self.t0 + self.timeout(name)

    def _report(self, stage: Stage) -> None:
        if self.progress is not None:
            self.progress(stage)

    @contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        """Time the block as stage `name`; on an exception, the stage fails with its
        hint (a StageFailed raised inside keeps its own message and hint)."""
        current = Stage(name, time.monotonic() - self.t0, hint=BY_NAME[name].hint)
        self.stages.append(current)
        self._report(current)
        try:
            yield current
        except StageFailed as e:
            self._finish(current, StageStatus.FAILED, e.message)
            e.hint = e.hint or current.hint
            raise
        except Exception as e:
            self._finish(current, StageStatus.FAILED, str(e))
            raise StageFailed(str(e), name, current.hint) from e
        self._finish(current, StageStatus.DONE, current.detail)

    def _finish(self, stage: Stage, status: StageStatus, detail: str) -> None:
        stage.duration = time.monotonic() - self.t0 - stage.started
        stage.status = status
        stage.detail = detail
        self._report(stage)

    def fail(self, name: str, message: str, log_tail: str = "") -> StageFailed:
        """The error for stage `name` timing out or failing with `message`."""
        return StageFailed(message, name, BY_NAME[name].hint, log_tail)
