"""The share keeper: one process per running machine that keeps its shares alive over SSH.

It runs the sync sessions of `sync` shares (machine/sync) and replays host file events in
the guest for `virtiofs` and `9p` shares (machine/share_events.py). Why a process of its
own, like the socket forwarder: it must outlive the CLI that started the machine, and the
backend stops it (SIGTERM: sessions stop and save their index) *before* the guest powers
off, so nothing is left half-copied by a vanished guest. It exits by itself when QEMU is
gone. Run as `python -m machine.sharehost DIR PORT QEMU_PID`; the shares come from
`<dir>/shares.json`, written by the backend at each start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paramiko

from machine import filenames, ssh
from machine.backend import ShareSpec
from machine.procs import owned_pid, pid_alive
from machine.share_events import AgentChannel, Replayer
from machine.sync import shares as syncshares

log = logging.getLogger("dockyard.shares")


def write(directory: Path, shares: Sequence[ShareSpec]) -> None:
    doc = [
        {
            "host_path": str(s.host_path),
            "guest_path": s.guest_path,
            "mode": s.mode,
            "readonly": s.readonly,
            "ignore": list(s.ignore),
        }
        for s in shares
    ]
    (directory / filenames.SHARES).write_text(json.dumps(doc, indent=1) + "\n")


def read(directory: Path) -> list[ShareSpec]:
    doc: list[dict[str, Any]] = json.loads((directory / filenames.SHARES).read_text())
    return [
        ShareSpec(
            Path(d["host_path"]),
            d["guest_path"],
            d["mode"],
            bool(d["readonly"]),
            tuple(d.get("ignore", ())),
        )
        for d in doc
    ]


class SharedClient:
    """One SSH session for the replay channels, re-made when it drops."""

    def __init__(self, directory: Path, port: int, alive: Any) -> None:
        self._args = (directory, port, alive)
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    def connect(self) -> paramiko.SSHClient:
        directory, port, alive = self._args
        return ssh.connect(directory, port, time.monotonic() + 30, alive)

    def get(self) -> paramiko.SSHClient:
        with self._lock:
            client = self._client
            t = client.get_transport() if client else None
            if client is None or t is None or not t.is_active():
                if client is not None:
                    client.close()
                client = self._client = self.connect()
            return client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m machine.sharehost")
    parser.add_argument("directory", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("qemu_pid", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    specs = read(args.directory)
    client = SharedClient(args.directory, args.port, lambda: pid_alive(args.qemu_pid))
    sessions = syncshares.sessions(args.directory, specs, client.connect)
    channel = AgentChannel(client.get)
    replayers = [
        Replayer(str(s.host_path), s.guest_path, channel.send)
        for s in specs
        if s.mode in ("9p", "virtiofs") and not s.readonly
    ]
    for session in sessions:
        session.start()
    for replayer in replayers:
        replayer.start()
    if replayers:
        threading.Thread(target=channel.warm, daemon=True).start()
    log.info("shares: %d sync sessions, %d replayed", len(sessions), len(replayers))
    try:
        while not stop.wait(0.5) and pid_alive(args.qemu_pid):
            pass
    finally:
        for replayer in replayers:
            replayer.stop()
        channel.close()
        for session in sessions:
            session.stop()
        log.info("shares stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# -- the backend's side ----------------------------------------------------------------


def spawn(directory: Path, port: int, qemu_pid: int, shares: Sequence[ShareSpec]) -> int | None:
    """Start the keeper for a booted machine with shares; its pid (None: no shares)."""
    if not shares:
        return None
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", "machine.sharehost", str(directory), str(port), str(qemu_pid)]
    with (directory / filenames.SHARES_LOG).open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    (directory / filenames.SHARES_PID).write_text(f"{proc.pid}\n")
    return proc.pid


def running_pid(directory: Path) -> int | None:
    """The keeper's pid, if it runs and is this machine's (a recycled pid never is)."""
    return owned_pid(directory / filenames.SHARES_PID, "machine.sharehost", str(directory))


def terminate(directory: Path, timeout: float = 20.0) -> None:
    """SIGTERM and wait (sessions stop and save their index), SIGKILL after `timeout`."""
    pid = running_pid(directory)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    with contextlib.suppress(FileNotFoundError):
        (directory / filenames.SHARES_PID).unlink()
