"""A sync session's status, as a file the CLI (another process) reads.

The session runs in the process that keeps the machine's connections (the GUI or a host
agent); `dockyard machine sync status` runs elsewhere, so the session writes its status to
`<machine dir>/sync/<tag>.status.json` (atomically, at most about once a second and on
every state change), and `sync_status` formats those files.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from machine import atomic

STATE_DIR = "sync"  # <machine dir>/sync/: each sync share's index and status
SHOWN_PATHS = 10
KEPT_PATHS = 100  # an untar can leave thousands pending: the file keeps the first ones


@dataclass
class SyncStatus:
    tag: str
    host_path: str
    guest_path: str
    state: str  # starting | syncing | watching | paused | held | reconnecting | stopped
    paused: bool = False
    to_guest: list[str] = field(default_factory=list)  # changed on the host, not yet sent
    to_host: list[str] = field(default_factory=list)  # changed in the guest, not yet sent
    n_to_guest: int = -1  # how many in all (the lists are cut at KEPT_PATHS); -1: len(list)
    n_to_host: int = -1
    errors: dict[str, str] = field(default_factory=dict)  # path -> why it is not synced
    last_error: str = ""  # the connection's last failure
    last_sync: float = 0.0  # time.time() of the last completed pass
    hashed_host: int = 0
    hashed_guest: int = 0
    pid: int = 0

    def __post_init__(self) -> None:
        if self.n_to_guest < 0:
            self.n_to_guest = len(self.to_guest)
        if self.n_to_host < 0:
            self.n_to_host = len(self.to_host)
        self.to_guest = self.to_guest[:KEPT_PATHS]
        self.to_host = self.to_host[:KEPT_PATHS]

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic.write_text(directory / f"{self.tag}.status.json", json.dumps(asdict(self)), 0o600)

    @classmethod
    def read(cls, path: Path) -> SyncStatus:
        doc: dict[str, Any] = json.loads(path.read_text())
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.kill(pid, 0)
        return True
    return False


def _ago(then: float) -> str:
    if not then:
        return "never"
    seconds = max(0, int(time.time() - then))
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}min ago"


def _paths(paths: list[str], total: int) -> str:
    shown = ", ".join(paths[:SHOWN_PATHS])
    more = total - min(len(paths), SHOWN_PATHS)
    return shown + (f" and {more} more" if more > 0 else "")


def format_status(st: SyncStatus) -> str:
    state = st.state if st.state == "stopped" or _alive(st.pid) else "stopped"
    lines = [
        f"{st.tag}: {st.host_path} <-> guest {st.guest_path}: {state}, "
        f"last sync {_ago(st.last_sync)}",
        f"  pending: {st.n_to_guest} host->guest, {st.n_to_host} guest->host",
    ]
    if st.to_guest:
        lines.append(f"    host->guest: {_paths(st.to_guest, st.n_to_guest)}")
    if st.to_host:
        lines.append(f"    guest->host: {_paths(st.to_host, st.n_to_host)}")
    if st.last_error and state in ("reconnecting", "starting"):
        lines.append(f"  connection: {st.last_error}")
    if st.last_error and state == "held":
        message, _, hint = st.last_error.partition("\nhint: ")
        lines.append(f"  held: {message}")
        if hint:
            lines.append(f"    hint: {hint}")
    for path, why in sorted(st.errors.items()):
        message, _, hint = why.partition("\nhint: ")
        lines.append(f"  not synced: {path}: {message}")
        if hint:
            lines.append(f"    hint: {hint}")
    return "\n".join(lines)


def sync_status(machine_dir: Path) -> str:
    """What `dockyard machine sync status` prints for the machine in `machine_dir`."""
    files = sorted((machine_dir / STATE_DIR).glob("*.status.json"))
    if not files:
        return "no sync shares have run on this machine"
    out = []
    for path in files:
        try:
            out.append(format_status(SyncStatus.read(path)))
        except (ValueError, TypeError, OSError) as e:
            out.append(f"{path.name}: unreadable status ({e})")
    return "\n".join(out)
