"""The one interface every machine backend offers (qemu, libvirt, native).

Why a Protocol: the CLI and the GUI drive a machine without knowing how it runs. Each
backend is a plain class with these methods; a start reports named, timed `Stage`s as it
goes and fails with a `StageFailed` (a machine.errors.MachineError) that carries the stage,
a hint for the user and the tail of the guest's log.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from machine.errors import MachineError


class StageStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class Stage:
    """One step of a start. `started` is seconds since the start began; `duration` is set
    once the stage is over. `hint` is shown to the user when the stage fails, `detail`
    says what was seen (the accelerator chosen, the error QEMU printed ...)."""

    name: str
    started: float
    duration: float | None = None
    status: StageStatus = StageStatus.RUNNING
    hint: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "started": self.started,
            "duration": self.duration,
            "status": str(self.status),
            "hint": self.hint,
            "detail": self.detail,
        }


Progress = Callable[[Stage], None]
"""Called on every stage change (started, done, failed); must not block."""


class StageFailed(MachineError):
    """A start failed in a named stage; `log_tail` keeps the end of the serial/QEMU log."""

    def __init__(self, message: str, stage: str, hint: str = "", log_tail: str = "") -> None:
        super().__init__(message, stage, hint)
        self.log_tail = log_tail


class MachineState(enum.StrEnum):
    NOT_CREATED = "not-created"
    STOPPED = "stopped"
    RUNNING = "running"
    CRASHED = "crashed"  # the VM process died without being stopped; logs are kept


@dataclass
class MachineStatus:
    state: MachineState
    backend: str
    socket: Path
    pid: int | None = None
    accel: str = ""
    detail: str = ""


@dataclass
class ShareSpec:
    """A host directory shown in the guest at the same path (vm-contract.md seed `shares`)."""

    host_path: Path
    guest_path: str
    mode: str = "9p"  # "9p" | "virtiofs" | "sync"
    readonly: bool = False
    ignore: tuple[str, ...] = ()  # sync only: patterns kept out of the sync (.gitignore syntax)


@dataclass
class MachineSpec:
    """What a backend needs to know about one machine. machine/config.py builds it from the
    user's YAML; the backends never read YAML themselves."""

    name: str
    directory: Path  # the machine directory; files in it are named in machine/filenames.py
    cpus: int = 2
    memory_mb: int = 2048
    disk_gb: int = 20
    image_dir: Path | None = None  # vmimage output (manifest.json); None: the default build
    ssh_port: int = 0  # 0: pick a free loopback port at each start
    accel: str = "auto"  # "auto" or one of kvm, hvf, whpx, tcg (forced)
    engine_args: list[str] = field(default_factory=list)
    shares: list[ShareSpec] = field(default_factory=list)
    saved_boot: bool = True  # start from the state saved at the boot checkpoint (bootstate.py)


class Backend(Protocol):
    """A machine backend. All paths it touches live in `spec.directory`."""

    name: str
    spec: MachineSpec

    def create(self) -> None:
        """Make the machine's files (keys, disk); idempotent."""

    def start(self, progress: Progress | None = None) -> list[Stage]:
        """Boot until the engine answers on `socket_path()`; raise MachineError on failure,
        leaving no process behind."""

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully (the guest unmounts its data disk), forcibly after `timeout`."""

    def status(self) -> MachineStatus:
        """Where the machine is now; cheap, never starts anything."""

    def ssh(self, command: Sequence[str] = ()) -> int:
        """Run `command` in the guest (interactive shell when empty); the exit status."""

    def logs(self) -> str:
        """The guest's console log (serial) of the current or last run."""

    def socket_path(self) -> Path:
        """The host unix socket the engine API is served on."""

    def remove(self) -> None:
        """Stop if running and delete the machine directory."""
