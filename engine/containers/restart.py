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


def starts_on_boot(
    policy: dict[str, Any], exit_code: int, restart_count: int, manually_stopped: bool
) -> bool:
    """Docker's rule at engine start (its restart manager's ShouldRestart): `always`
    comes back even after a manual stop; `unless-stopped` unless stopped by hand;
    `on-failure` after a non-zero exit within its retry limit (here, not after a
    manual stop either)."""
    if (policy.get("Name") or "no") == "always":
        return True
    return should_restart(policy, exit_code, restart_count, manually_stopped)


def backoff(restart_count: int) -> float:
    return float(min(BACKOFF_MAX, BACKOFF_START * 2 ** max(0, restart_count - 1)))
