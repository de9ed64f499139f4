"""Whether a host process still runs, read from /proc.

The host agent's helpers (port forwarder, share keeper) and the QEMU backend all poll
QEMU's pid; `os.kill(pid, 0)` would count an unreaped zombie as running, so the state
letter in /proc/<pid>/stat decides instead.
"""

from __future__ import annotations

from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone; an unreadable stat as running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
