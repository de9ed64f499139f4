"""Logs of several containers at once, each line prefixed `name  | `, one thread per
container because each follow is its own long HTTP stream."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from app.compose.output import Printer, prefixes
from app.engine_client import EngineClient, EngineError


@dataclass
class Target:
    id: str
    name: str
    tty: bool = False
    tail: str = "all"


def follow(
    client: EngineClient,
    targets: list[Target],
    out: Printer,
    follow: bool,
    timestamps: bool = False,
    on_end: Callable[[Target], None] | None = None,
) -> list[threading.Thread]:
    """Start one reader thread per target; each calls `on_end` when its stream ends."""
    pads = prefixes([t.name for t in targets])
    threads = []
    for index, target in enumerate(targets):
        thread = threading.Thread(
            target=_read,
            args=(client, target, out, pads[target.name], index, follow, timestamps, on_end),
            daemon=True,
            name=f"logs-{target.name}",
        )
        thread.start()
        threads.append(thread)
    return threads


def _read(
    client: EngineClient,
    target: Target,
    out: Printer,
    prefix: str,
    index: int,
    follow: bool,
    timestamps: bool,
    on_end: Callable[[Target], None] | None,
) -> None:
    pending: dict[int, bytes] = {}
    try:
        pieces = client.logs(target.id, follow, target.tail, timestamps, target.tty)
        for stream, data in pieces:
            buf = pending.get(stream, b"") + data
            *lines, pending[stream] = buf.split(b"\n")
            for line in lines:
                out.prefixed(prefix, index, line.decode(errors="replace").rstrip("\r"))
        for rest in pending.values():
            if rest:
                out.prefixed(prefix, index, rest.decode(errors="replace"))
    except (EngineError, OSError) as e:
        out.warn(f"logs of {target.name} ended: {e}")
    if on_end is not None:
        on_end(target)


def wait_all(threads: list[threading.Thread]) -> None:
    """Join with a short timeout so the main thread still sees Ctrl-C (KeyboardInterrupt)."""
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
