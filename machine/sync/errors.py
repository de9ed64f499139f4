"""The sync's errors: each names the path and says what to do::

MachineError (machine/errors.py)
└── SyncError        a path could not be synced (stage "sync"); it stays pending
    ├── DiskFull     the receiving side has no room; nothing was replaced
    └── UnsafePath   a parent on the receiving side is a link: never written through
Changed              a side changed between scan and apply: skipped, retried next pass
ConnectionLost       SSH or the agent went away: the session reconnects
"""

from __future__ import annotations

from machine.errors import MachineError
from machine.sync.fsops import Changed

__all__ = ["Changed", "ConnectionLost", "DiskFull", "EmptySide", "SyncError", "UnsafePath"]


class SyncError(MachineError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, "sync", hint)


class DiskFull(SyncError):
    def __init__(self, side: str, path: str, needed: int, free: int) -> None:
        super().__init__(
            f"the {side}'s disk is full: {path} needs {needed} bytes and {free} are free; "
            "it was not copied and both sides keep what they had",
            f"free space on the {side} (or grow the machine's disk); the sync retries "
            "the file when it changes again or the session resumes",
        )


class EmptySide(SyncError):
    """A whole side is empty after a sync had filled it: a wiped or unmounted disk, not a
    user's deletion of everything; mirroring it would empty the other side too."""

    def __init__(self, side: str, root: str, synced: int, index: str) -> None:
        other = "guest" if side == "host" else "host"
        super().__init__(
            f"the {side}'s folder {root} is empty (or gone), but {synced} paths were synced "
            f"into it: not deleting them on the {other}; the share is on hold",
            f"if a disk is not mounted, mount it; to fill the {side} again from the "
            f"{other}, remove {index} and resume; if the emptying was meant, empty the "
            f"{other}'s folder too",
        )


class UnsafePath(SyncError):
    def __init__(self, side: str, path: str, parent: str) -> None:
        super().__init__(
            f"not writing {path} on the {side}: its parent {parent} is a symlink or a file "
            "there, and the sync never writes through a link",
            f"rename or remove {parent} on one side",
        )


class ConnectionLost(Exception):
    """SSH or the guest agent is gone; the session reconnects and rescans."""
