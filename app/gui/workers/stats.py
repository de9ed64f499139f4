"""Live CPU% and memory for the containers the user can see, polled off the GUI thread.

Why a poll of `stats?stream=0` every 2 s rather than one stream per container: the cost
stays bounded by what is on screen (at most `MAX_TARGETS` containers per round, whatever the
total), and no stream has to be torn down when a row scrolls away. The engine's one-shot
reply carries a single CPU sample, so the percentage comes from this poller's own previous
sample of the same container.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from PySide6.QtCore import QThread, Signal

from app.engine_client import EngineClient

INTERVAL_S = 2.0
MAX_TARGETS = 40
Sample = tuple[int, int]  # (container cpu ns, system cpu ns)


def cpu_percent(prev: Sample | None, cur: Sample, cpus: int) -> float | None:
    """Docker's formula: container CPU delta over system CPU delta, times online CPUs."""
    if prev is None:
        return None
    d_container, d_system = cur[0] - prev[0], cur[1] - prev[1]
    if d_system <= 0 or d_container < 0:
        return 0.0
    return d_container / d_system * max(cpus, 1) * 100.0


class StatsPoller(QThread):
    """Emits `sampled({id: (cpu% or None, memory bytes or None)})` every round."""

    sampled = Signal(dict)

    def __init__(self, client: Callable[[], EngineClient]) -> None:
        super().__init__()
        self._client = client
        self._lock = threading.Lock()
        self._targets: list[str] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._samples: dict[str, Sample] = {}

    def set_targets(self, ids: list[str]) -> None:
        """The containers to poll from the next round on (the first MAX_TARGETS)."""
        with self._lock:
            self._targets = ids[:MAX_TARGETS]

    def poll_now(self) -> None:
        """Start the next round now (new rows on screen should not wait a whole interval)."""
        self._wake.set()

    def run(self) -> None:
        while True:
            self._wake.wait(INTERVAL_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                targets = list(self._targets)
            if targets:
                self.sampled.emit(self._round(targets))

    def _round(self, targets: list[str]) -> dict[str, tuple[float | None, int | None]]:
        out: dict[str, tuple[float | None, int | None]] = {}
        try:
            client = self._client()
        except Exception:  # a context that cannot be used now: the banner says so; retry
            return out
        for cid in targets:
            try:
                doc = client.get(f"/containers/{quote(cid)}/stats", {"stream": False})
            except Exception:  # gone or unreachable: the events stream reports that
                continue
            out[cid] = self._reading(cid, doc)
        for gone in set(self._samples) - set(targets):
            del self._samples[gone]
        return out

    def _reading(self, cid: str, doc: dict[str, Any]) -> tuple[float | None, int | None]:
        cpu = doc.get("cpu_stats") or {}
        total = (cpu.get("cpu_usage") or {}).get("total_usage")
        system = cpu.get("system_cpu_usage")
        memory = (doc.get("memory_stats") or {}).get("usage")
        if total is None or system is None:
            self._samples.pop(cid, None)
            return None, memory
        cur = (int(total), int(system))
        percent = cpu_percent(self._samples.get(cid), cur, int(cpu.get("online_cpus") or 1))
        self._samples[cid] = cur
        return percent, memory

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.wait()
