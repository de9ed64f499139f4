"""machine.procs.pid_alive against real processes: running, zombie, reaped."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from machine.procs import owned_pid, pid_alive


def test_running_process_is_alive() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert pid_alive(proc.pid)
    finally:
        proc.communicate(b"")


def test_zombie_then_reaped_process_is_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Until reaped the child is a zombie: gone to callers, still in /proc.
        while pid_alive(proc.pid):
            pass
    finally:
        proc.wait()
    assert not pid_alive(proc.pid)


def test_owned_pid_needs_every_marker_in_the_command_line(tmp_path: Path) -> None:
    script = "import sys; sys.stdin.read()"
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdin=subprocess.PIPE)
    try:
        pidfile = tmp_path / "x.pid"
        pidfile.write_text(f"{proc.pid}\n")
        _wait_for_exec(proc.pid, b"sys.stdin.read")
        assert owned_pid(pidfile, "sys.stdin.read", str(tmp_path)) == proc.pid
        assert owned_pid(pidfile, "sys.stdin.read", "/elsewhere") is None
        (tmp_path / "bad.pid").write_text("not a pid\n")
        assert owned_pid(tmp_path / "bad.pid", str(tmp_path)) is None
    finally:
        proc.communicate(b"")


def _wait_for_exec(pid: int, marker: bytes) -> None:
    """Until the child has exec'd, its command line is still the parent's (pytest's)."""
    deadline = time.monotonic() + 10
    while marker not in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the child never exec'd"
        time.sleep(0.01)
