"""Restart policies: whether an exited container comes back, and after how long.

Pure, so each policy's rule (and Docker's doubling back-off) is unit-tested
without running anything.
"""

from __future__ import annotations

from typing import Any

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0


def should_restart(
    policy: dict[str, Any], exit_code: int, restart_count: int, manually_stopped: bool
) -> bool:
    if manually_stopped:
        return False
    name = policy.get("Name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return False


def should_start_on_boot(policy: dict[str, Any], was_running: bool, manually_stopped: bool) -> bool:
    """At engine start, Docker brings back `always` containers, and `unless-stopped`
    ones that were not stopped by hand."""
    name = policy.get("Name") or "no"
    if name == "always":
        return not manually_stopped or was_running
    if name == "unless-stopped":
        return not manually_stopped
    return False


def backoff(restart_count: int) -> float:
    return float(min(BACKOFF_MAX, BACKOFF_START * 2 ** max(0, restart_count - 1)))
