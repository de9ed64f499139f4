"""Automatic port forwarding: the guest engine's published ports, offered on the host.

The forwarder process (machine/forward.py) runs one `PortForwarder` next to the engine
socket it serves. It subscribes to the guest engine's container events through that
socket, lists the running containers, and makes the host match (machine/portplan.py
decides, machine/portlisten.py listens). Any container event, a broken event stream (the
engine restarted, SSH reconnected) and a clock jump (machine/clockwatch.py) lead to the
same resync, so every running container's forwards are set up again after any of them.

Where the host listens is the machine's `ports.allow_all_interfaces` (machine.yaml, off by
default: loopback only). The forwarder re-reads it at each resync and watches the file (a
stat a second), so `dockyard machine set`, the GUI or a hand edit moves a running machine's
forwards within a second, with no signal or socket between the CLI and this process.

What the user and the GUI read: `<machine dir>/ports.json` (every forward with its state
and reason, rewritten atomically on each change) and `ports.log` (JSON lines: a forward
added, removed or failed, a clock step, a changed or unreadable setting), both shown by
`dockyard machine ports`.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import paramiko

from machine import atomic, config, engineapi, filenames, portplan
from machine.errors import ConfigError
from machine.portlisten import ForwardFailed, QemuForward, TcpForward, hostfwd_reaches
from machine.portplan import FAILED, LISTENING, Forward, ForwardState

LOG_MAX_BYTES = 1 << 20
RESYNC_EVERY_S = 30.0  # a periodic check in case an event was lost
RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 4.0
CONFIG_CHECK_S = 1.0  # how often the machine's YAML is looked at for a changed setting
# Container events after which the set of published ports may have changed.
ACTIONS = {"start", "die", "stop", "kill", "destroy", "pause", "unpause", "restart"}


class Listener(Protocol):
    via: str

    def close(self) -> None: ...


def open_forward(
    fwd: Forward, transport: Callable[[], paramiko.Transport], qmp_socket: Path | None
) -> Listener:
    """hostfwd where it reaches (the faster way, portlisten.py), else SSH for TCP."""
    if fwd.proto == "tcp" and not hostfwd_reaches(fwd, qmp_socket):
        return TcpForward(fwd, transport)
    return QemuForward(fwd, qmp_socket)


def read_state(directory: Path) -> list[ForwardState]:
    """The forwards as the running forwarder last wrote them (empty when none)."""
    try:
        doc = json.loads((directory / filenames.PORTS).read_text())
        return [ForwardState.from_dict(d) for d in doc["forwards"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


class PortForwarder:
    def __init__(
        self,
        directory: Path,
        engine_socket: Path,
        transport: Callable[[], paramiko.Transport],
        qmp_socket: Path | None = None,
        allow_all: bool | None = None,
    ) -> None:
        """`allow_all`: None (the forwarder process) follows the machine's setting in
        `directory`/machine.yaml; a bool fixes it."""
        self.dir = directory
        self.engine_socket = engine_socket
        self.transport = transport
        self.qmp_socket = qmp_socket
        self.allow_all = allow_all
        self._setting: tuple[bool, str] = (False, "")  # the last one read, and why not
        self._open: dict[tuple[str, str, int], tuple[Forward, Listener]] = {}
        self._failed: dict[tuple[str, str, int], ForwardState] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the engine answered a first time

    # -- the desired set ----------------------------------------------------------------

    def resync(self) -> None:
        """Make the host's forwards match the running containers' published ports."""
        containers = engineapi.get_json(self.engine_socket, "/containers/json")
        wanted = portplan.desired(containers, self.allows_all())
        with self._lock:
            if self._stop.is_set():
                return  # stop() closed everything while the list was fetched
            current = [f for f, _ in self._open.values()]
            plan = portplan.diff(current, wanted)
            for fwd in plan.remove:
                self._close(fwd)
            want_keys = {f.key for f in wanted}
            for key in [k for k in self._failed if k not in want_keys]:
                del self._failed[key]
            retry = portplan.retry_failed(self._failed.values(), wanted)
            for fwd in [*plan.add, *[f for f in retry if f not in plan.add]]:
                self._make(fwd)
            self._write_state()

    def allows_all(self) -> bool:
        """The fixed choice, else the machine's setting read now. An unreadable setting is
        loopback only (the safe side); a change or a problem is one line in ports.log."""
        if self.allow_all is not None:
            return self.allow_all
        try:
            setting = (config.read_ports(self.dir).allow_all_interfaces, "")
        except ConfigError as e:
            setting = (False, f"{e.message}; forwards listen on loopback only until it is fixed")
        if setting != self._setting:
            self._setting = setting
            self.log("ports-setting", {"allow_all_interfaces": setting[0], "reason": setting[1]})
        return setting[0]

    def _make(self, fwd: Forward) -> None:
        self._failed.pop(fwd.key, None)
        try:
            listener = open_forward(fwd, self.transport, self.qmp_socket)
        except ForwardFailed as e:
            via = "qmp" if hostfwd_reaches(fwd, self.qmp_socket) or fwd.proto == "udp" else "ssh"
            state = ForwardState(fwd, FAILED, str(e), via)
            self._failed[fwd.key] = state
            self.log("forward-failed", state.as_dict())
            return
        self._open[fwd.key] = (fwd, listener)
        self.log("forward-added", ForwardState(fwd, LISTENING, "", listener.via).as_dict())

    def _close(self, fwd: Forward) -> None:
        entry = self._open.pop(fwd.key, None)
        if entry is not None:
            entry[1].close()
            self.log("forward-removed", ForwardState(fwd, LISTENING, "", entry[1].via).as_dict())

    def states(self) -> list[ForwardState]:
        with self._lock:
            ok = [ForwardState(f, LISTENING, "", lst.via) for f, lst in self._open.values()]
            return sorted([*ok, *self._failed.values()], key=lambda s: s.forward.key)

    # -- files --------------------------------------------------------------------------

    def _write_state(self) -> None:
        ok = [ForwardState(f, LISTENING, "", lst.via) for f, lst in self._open.values()]
        states = sorted([*ok, *self._failed.values()], key=lambda s: s.forward.key)
        doc = {"updated": time.time(), "forwards": [s.as_dict() for s in states]}
        atomic.write_text(self.dir / filenames.PORTS, json.dumps(doc, indent=1) + "\n", 0o600)

    def log(self, event: str, fields: dict[str, Any]) -> None:
        """One JSON line; the file is kept under LOG_MAX_BYTES (the previous one as .1),
        since a guest clock that drifts under an emulated CPU is stepped every few seconds."""
        path = self.dir / filenames.PORTS_LOG
        with contextlib.suppress(OSError):
            if path.stat().st_size > LOG_MAX_BYTES:
                os.replace(path, path.with_name(path.name + ".1"))
        line = json.dumps({"time": time.time(), "event": event, **fields})
        with path.open("a") as f:
            f.write(line + "\n")

    # -- the loop -----------------------------------------------------------------------

    def poke(self) -> None:
        """Ask for a resync soon (after an SSH reconnect or a clock step)."""
        self._wake.set()

    def run(self) -> None:
        """Follow the engine's events until stop(); resync on each relevant one.

        While the engine does not answer (the guest still boots, or restarts its engine)
        the retries back off to a few seconds: each costs an SSH channel in a guest that
        may be busy on an emulated CPU. One `events-lost` line per outage."""
        delay, lost = RETRY_DELAY_S, False
        if self.allow_all is None:
            threading.Thread(target=self._watch_config, daemon=True).start()
        while not self._stop.is_set():
            try:
                self._follow()
                delay, lost = RETRY_DELAY_S, False
            except Exception as e:  # the engine or the session went away: try again
                if not lost and self.ready.is_set():
                    self.log("events-lost", {"reason": str(e) or type(e).__name__})
                lost = True
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)

    def _watch_config(self) -> None:
        """A changed machine.yaml (saved atomically: a new inode) asks for a resync."""
        path = self.dir / filenames.CONFIG
        seen = _file_id(path)
        while not self._stop.wait(CONFIG_CHECK_S):
            now = _file_id(path)
            if now != seen:
                seen = now
                self.poke()

    def _follow(self) -> None:
        stream = engineapi.EventStream(self.engine_socket)  # subscribe first, then list
        done = threading.Event()
        try:
            self.resync()
            self.ready.set()
            threading.Thread(target=self._pump, args=(stream, done), daemon=True).start()
            while not self._stop.is_set() and not done.is_set():
                if self._wake.wait(RESYNC_EVERY_S):
                    self._wake.clear()
                if not self._stop.is_set():
                    self.resync()
        finally:
            stream.close()
        if done.is_set() and not self._stop.is_set():
            raise ConnectionError("the engine's event stream ended")

    def _pump(self, stream: engineapi.EventStream, done: threading.Event) -> None:
        try:
            for event in stream:
                if event.get("Action", "").split(":")[0] in ACTIONS:
                    self._wake.set()
        except Exception:
            pass  # closed by _follow, or the connection broke
        finally:
            done.set()
            self._wake.set()

    def stop(self) -> None:
        """Close every forward (their ports are free when this returns)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            for fwd, _ in list(self._open.values()):
                self._close(fwd)
            self._failed.clear()
            self._write_state()


def _file_id(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
