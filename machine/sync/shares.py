"""A machine's sync shares as sessions: the hook for whatever keeps the machine's SSH
connection (the backend after start, or the per-machine host agent).

Call `sessions(machine_dir, spec.shares, connect)` once the guest's sshd answers, `start()`
each, and `stop()` them before the machine stops. Their index and status files go to
`<machine dir>/sync/`, where `dockyard machine sync status` reads them. A share's tag is
`share<index>`, as the 9p and virtiofs shares are tagged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import paramiko

from machine.backend import ShareSpec
from machine.errors import ConfigError
from machine.sync.ignore import DEFAULT_PATTERNS
from machine.sync.session import SyncSession, SyncShare
from machine.sync.status import STATE_DIR

MODE = "sync"


def sync_shares(
    shares: Sequence[ShareSpec], ignore: Sequence[str] = DEFAULT_PATTERNS
) -> list[SyncShare]:
    """Raises ConfigError for a read-only sync share: a guest-local copy can be written in
    the guest, and the sync has no one-way mode yet, so it refuses rather than pretend."""
    for s in shares:
        if s.mode == MODE and s.readonly:
            raise ConfigError(
                f"shares: {s.host_path} is a read-only sync share, which is not supported",
                "use mode 9p or virtiofs for a read-only share, or drop readonly",
            )
    return [
        SyncShare(f"share{i}", Path(s.host_path), s.guest_path, [*ignore, *s.ignore])
        for i, s in enumerate(shares)
        if s.mode == MODE
    ]


def sessions(
    machine_dir: Path,
    shares: Sequence[ShareSpec],
    connect: Callable[[], paramiko.SSHClient],
) -> list[SyncSession]:
    return [SyncSession(s, connect, machine_dir / STATE_DIR) for s in sync_shares(shares)]
