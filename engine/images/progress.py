"""Docker's JSON progress messages, built exactly as `docker pull` expects them.

The CLI redraws a line per `id` and prints `progress` verbatim, so the shapes
and the bar format here mirror the Docker daemon's (jsonmessage.JSONProgress
rendered at its default width, units.HumanSize for sizes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Message = dict[str, Any]
ProgressFn = Callable[[Message], None]

RATE_LIMIT = 0.1  # seconds between "Downloading" updates of one layer, as dockerd does
_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """Decimal units with 4 significant digits: 1234567 -> `1.235MB` (units.HumanSize)."""
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.4g}{_UNITS[i]}"


def progress_bar(current: int, total: int) -> str:
    """`[=====>       ]  1.049MB/9.741MB`: a 50-cell bar, then the numbers."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    filled = min(int(current / total * 100) // 2, 50)
    bar = "[" + "=" * filled + ">" + " " * (50 - filled) + "] "
    if current > total:
        return bar + f"{human_size(current):>8}"
    return bar + f"{human_size(current):>8}/{human_size(total)}"


def status(text: str, id: str | None = None) -> Message:
    """A plain status line, optionally tied to an id (`Pulling from ...`, `Digest: ...`)."""
    return {"status": text, "id": id} if id is not None else {"status": text}


def layer(text: str, short_id: str) -> Message:
    """A per-layer line with no numbers: Pulling fs layer, Waiting, Pull complete ..."""
    return {"status": text, "progressDetail": {}, "id": short_id}


def downloading(short_id: str, current: int, total: int, action: str = "Downloading") -> Message:
    detail: dict[str, int] = {"current": current}
    if total > 0:
        detail["total"] = total
    return {
        "status": action,
        "progressDetail": detail,
        "progress": progress_bar(current, total),
        "id": short_id,
    }


def thread_safe(fn: ProgressFn) -> ProgressFn:
    """Serialize calls so download threads never interleave writes to one stream."""
    lock = threading.Lock()

    def emit(message: Message) -> None:
        with lock:
            fn(message)

    return emit


class RateLimited:
    """Passes the first update, then at most one per RATE_LIMIT, and always the last."""

    def __init__(self, emit: ProgressFn, short_id: str, interval: float = RATE_LIMIT) -> None:
        self.emit = emit
        self.short_id = short_id
        self.interval = interval
        self._last = float("-inf")

    def __call__(self, current: int, total: int) -> None:
        now = time.monotonic()
        if current == total or now - self._last >= self.interval:
            self._last = now
            self.emit(downloading(self.short_id, current, total))
