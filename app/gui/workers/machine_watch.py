"""`MachineWatcher`: the machine page's live feeds, on one thread while the page is shown.

Three feeds, each cheap and each bounded whatever the machine holds:
- the log's tail: new bytes of the serial (or native engine) log from the last offset, every
  LOG_MS; a file that shrank was started afresh (a new run), so it is read from its start;
  the first read takes only the last TAIL_BYTES;
- resources every SAMPLE_MS: the totals of the running containers' `/containers/{id}/stats`
  (CPU% by Docker's formula against this watcher's previous sample, memory in bytes), at
  most MAX_SAMPLED containers per round, through the machine's own engine socket;
- the port table, from the same container list, through the page's PortSource.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PySide6.QtCore import QThread, Signal

from app.engine_client import EngineClient
from app.gui.models.ports import PortSource, forwarded_ports
from app.gui.workers.stats import Sample, cpu_percent

LOG_MS = 500
SAMPLE_MS = 2000
TAIL_BYTES = 64 * 1024
MAX_SAMPLED = 64


class MachineWatcher(QThread):
    log_appended = Signal(str, bool)  # text, reset (the view starts afresh)
    sampled = Signal(object, object, int)  # cpu% (None on the first round), memory bytes, count
    ports = Signal(list)  # list[PortRow]

    def __init__(self, source: PortSource = forwarded_ports) -> None:
        super().__init__()
        self.source = source
        self._lock = threading.Lock()
        self._log: Path | None = None
        self._endpoint = ""
        self._backend = ""
        self._offset = -1
        self._samples: dict[str, Sample] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()

    def follow(self, log: Path | None, endpoint: str, backend: str) -> None:
        """What to watch from now on ("" endpoint: the machine is not running)."""
        with self._lock:
            if log != self._log:
                self._log, self._offset = log, -1
            if endpoint != self._endpoint:
                self._endpoint = endpoint
                self._samples.clear()
            self._backend = backend
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.wait()

    def run(self) -> None:
        next_sample = 0.0
        while not self._stop.is_set():
            self._read_log()
            now = time.monotonic()
            if now >= next_sample:
                next_sample = now + SAMPLE_MS / 1000
                self._sample()
            self._wake.wait(LOG_MS / 1000)
            self._wake.clear()

    # -- the log -----------------------------------------------------------------------
    def _read_log(self) -> None:
        with self._lock:
            path, offset = self._log, self._offset
        if path is None:
            return
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        reset = offset < 0 or size < offset
        start = max(0, size - TAIL_BYTES) if offset < 0 else (0 if size < offset else offset)
        data = b""
        if size > start:
            try:
                with path.open("rb") as f:
                    f.seek(start)
                    data = f.read(size - start)
            except OSError:
                data = b""
        with self._lock:
            if self._log != path:
                return
            self._offset = start + len(data)
        if data or reset:
            text = data.decode("utf-8", "replace").replace("\r\n", "\n")
            self.log_appended.emit(text, reset)

    # -- resources and ports -------------------------------------------------------------
    def _sample(self) -> None:
        with self._lock:
            endpoint, backend = self._endpoint, self._backend
        if not endpoint:
            return
        client = EngineClient(endpoint, timeout=5.0)
        try:
            containers = client.get("/containers/json")
            self.ports.emit(self.source(client, backend))
        except Exception:  # stopped meanwhile: the runner's state says so
            return
        cpu_total: float | None = None
        memory = 0
        seen = []
        for c in containers[:MAX_SAMPLED]:
            cid = str(c.get("Id", ""))
            try:
                doc = client.get(f"/containers/{quote(cid)}/stats", {"stream": False})
            except Exception:
                continue
            seen.append(cid)
            percent, used = self._reading(cid, doc)
            memory += used
            if percent is not None:
                cpu_total = (cpu_total or 0.0) + percent
        for gone in set(self._samples) - set(seen):
            del self._samples[gone]
        if not containers:
            cpu_total = 0.0
        self.sampled.emit(cpu_total, memory, len(containers))

    def _reading(self, cid: str, doc: dict[str, Any]) -> tuple[float | None, int]:
        cpu = doc.get("cpu_stats") or {}
        total = (cpu.get("cpu_usage") or {}).get("total_usage")
        system = cpu.get("system_cpu_usage")
        memory = int((doc.get("memory_stats") or {}).get("usage") or 0)
        if total is None or system is None:
            return None, memory
        cur = (int(total), int(system))
        percent = cpu_percent(self._samples.get(cid), cur, int(cpu.get("online_cpus") or 1))
        self._samples[cid] = cur
        return percent, memory
