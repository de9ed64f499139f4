"""The healthcheck scheduler: one thread with a heap of due times, checks on a small pool.

One thread for every container keeps a thousand idle containers from costing
a thousand sleeping threads; running the checks on a pool means a check that
waits for its timeout never delays another container's. Each watch has a
token: stopping or restarting a container replaces it, so a due time or a
result left from an earlier run is dropped rather than applied to the new one.
Results are applied under the container's lock; the record is saved when the
status or the failing streak moves (a steady healthy container's check only
adds a log line, kept in memory, so it costs no fsync every interval), and a
status change is published as Docker's `health_status: healthy|unhealthy` event.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.containers import healthcheck_probe
from engine.containers.health import (
    NS,
    Health,
    HealthConfig,
    effective,
    next_interval_ns,
)
from engine.containers.model import Container
from engine.containers.status import Status
from engine.errors import NotFound
from engine.runtime.exec import ExecProcess
from engine.timefmt import parse_rfc3339

if TYPE_CHECKING:
    from engine.containers.manager import ContainerManager

log = logging.getLogger("engine.containers")

WORKERS = 8  # threads start only as checks need them; a slow check holds one


@dataclass(order=True)
class _Due:
    at: float  # time.monotonic()
    seq: int
    cid: str = field(compare=False)
    token: int = field(compare=False)


class HealthMonitor:
    def __init__(self, m: ContainerManager) -> None:
        self._m = m
        self._cond = threading.Condition()
        self._heap: list[_Due] = []
        self._tokens: dict[str, int] = {}  # cid -> token of its current watch
        self._seq = itertools.count(1)
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="health")
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._running: dict[int, ExecProcess] = {}  # checks in flight (by id()), ended at shutdown

    # -- hooks the verbs call ----------------------------------------------------------

    def watch(self, c: Container) -> None:
        """A container just started (lock held): its health begins again at starting."""
        cfg = effective(c.config.get("Healthcheck"))
        if cfg is None:
            return
        if c.state.health is None:
            c.state.health = Health()
        c.state.health.restart()
        self._m.store.save(c)
        self._begin(c, cfg)

    def resume(self, c: Container) -> None:
        """A running container found again after an engine restart keeps its health."""
        cfg = effective(c.config.get("Healthcheck"))
        if cfg is None:
            return
        if c.state.health is None:
            c.state.health = Health()
            self._m.store.save(c)
        self._begin(c, cfg)

    def unwatch(self, c: Container) -> None:
        """The container stops: no more checks (its exit marks the health unhealthy)."""
        self.forget(c.id)

    def forget(self, cid: str) -> None:
        with self._cond:
            self._tokens.pop(cid, None)

    def stop(self) -> None:
        """Engine shutdown: no new checks, and the ones in flight are ended now, not at
        their timeout (the interpreter waits for the pool's threads before it exits)."""
        with self._cond:
            self._stopped = True
            self._tokens.clear()
            self._cond.notify_all()
            running = list(self._running.values())
        for proc in running:
            healthcheck_probe.cancel(proc)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _track(self, proc: ExecProcess) -> None:
        with self._cond:
            self._running[id(proc)] = proc
            stopped = self._stopped
        if stopped:
            healthcheck_probe.cancel(proc)

    # -- scheduling --------------------------------------------------------------------

    def _begin(self, c: Container, cfg: HealthConfig) -> None:
        assert c.state.health is not None
        with self._cond:
            if self._stopped:
                return
            token = next(self._seq)
            self._tokens[c.id] = token
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="health", daemon=True)
                self._thread.start()
        self._schedule(c.id, token, next_interval_ns(cfg, c.state.health, _since_start(c)))

    def _schedule(self, cid: str, token: int, delay_ns: int) -> None:
        with self._cond:
            if self._tokens.get(cid) != token:
                return
            due = _Due(time.monotonic() + delay_ns / NS, next(self._seq), cid, token)
            heapq.heappush(self._heap, due)
            self._cond.notify()

    def _current(self, cid: str, token: int) -> bool:
        with self._cond:
            return self._tokens.get(cid) == token

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                left = self._heap[0].at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                due = heapq.heappop(self._heap)
                if self._tokens.get(due.cid) == due.token:
                    self._pool.submit(self._check, due.cid, due.token)

    # -- one check -----------------------------------------------------------------------

    def _check(self, cid: str, token: int) -> None:
        try:
            c = self._m.store.get(cid)
        except NotFound:
            self.forget(cid)
            return
        cfg = effective(c.config.get("Healthcheck"))
        if cfg is None or c.state.health is None:
            return
        try:
            if c.state.status is Status.RUNNING:  # a paused container's check is skipped
                self._probe(c, cfg, token)
        except Exception:
            log.exception("healthcheck of %s failed to run", c.short_id)
        self._schedule(cid, token, next_interval_ns(cfg, c.state.health, _since_start(c)))

    def _probe(self, c: Container, cfg: HealthConfig, token: int) -> None:
        procs = self._m.cgroups.procs_files(c.id)
        mine: list[ExecProcess] = []

        def running(proc: ExecProcess) -> None:
            mine.append(proc)
            self._track(proc)

        try:
            result = healthcheck_probe.run(c.state.pid, c.spec, procs, cfg, running)
        finally:
            with self._cond:
                for proc in mine:
                    self._running.pop(id(proc), None)
        with c.lock:
            health = c.state.health
            if health is None or not self._current(c.id, token):
                return  # stopped or restarted while the check ran
            since = (parse_rfc3339(result.start) - parse_rfc3339(c.state.started_at)) * NS
            updated = health.copy()
            changed = updated.record(result, cfg, since < cfg.start_period)
            if changed or updated.failing_streak != health.failing_streak:
                # On disk before anyone can read it (inspect does not take the lock): a
                # status a client saw must survive an engine crash. Two fsyncs: so not for
                # a log line of a steady state.
                record = c.to_record()
                record["State"]["Health"] = updated.to_docker()
                self._m.store.save(c, record)
            c.state.health = updated
            status = updated.status
        if changed:
            self._m.event(c, f"health_status: {status}")


def _since_start(c: Container) -> int:
    """Nanoseconds since the container started (its start period counts from there)."""
    return int((time.time() - parse_rfc3339(c.state.started_at)) * NS)
