"""The exec helper's own deadline, on real processes: it kills the command's whole
process group once the deadline passes, whoever else is (or is not) watching."""

from __future__ import annotations

import os
import signal

from engine.runtime import nsexec
from tests.engine_process import wait_for


def _session(script: str) -> int:
    """A shell leading its own session, as the helper's command does. Spawned bare, not
    through subprocess (which reaps children it has forgotten): nsexec.wait reaps it."""
    return os.posix_spawnp("sh", ["sh", "-c", script], os.environ, setsid=True)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False  # or a member killed but not yet reaped by init


def test_past_the_deadline_the_command_and_what_it_started_are_killed() -> None:
    pid = _session("sleep 30 & sleep 30")
    status = nsexec.wait(pid, 0.3)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert wait_for(lambda: _group_gone(pid), timeout=10)  # the background sleep too


def test_a_command_that_ends_in_time_keeps_its_status() -> None:
    assert os.WEXITSTATUS(nsexec.wait(_session("exit 3"), 10)) == 3


def test_no_deadline_waits_for_the_end() -> None:
    assert os.WEXITSTATUS(nsexec.wait(_session("sleep 0.2; exit 5"), 0)) == 5
