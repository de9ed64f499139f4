"""machine.procs.pid_alive against real processes: running, zombie, reaped."""

from __future__ import annotations

import subprocess
import sys

from machine.procs import pid_alive


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
