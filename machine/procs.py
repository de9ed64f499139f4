"""Whether a host process still runs, and whether a pidfile's process is ours, from /proc.

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


def owned_pid(pidfile: Path, *markers: str) -> int | None:
    """The pid in `pidfile` if that process runs and its command line holds every one of
    `markers` (e.g. our machine directory): a recycled pid is never mistaken for ours."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    ours = all(m.encode() in cmdline for m in markers)
    return pid if ours and pid_alive(pid) else None
