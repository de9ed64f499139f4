"""The host half of file-event replay for 9p and virtiofs shares.

A watchdog observer on the share's host folder turns each change into an operation for
the guest agent (machine/replay_agent.py, which documents what each one raises in the
guest), sent as one JSON line over an SSH exec channel. `ops_for` is the pure mapping;
`Replayer` adds the two guards that keep the agent's own operations, which reach the host
through the share, from being replayed back forever:
  - touch: the file's (mtime, size, inode) is remembered when sent; an event that finds
    the same key is the echo of our utimensat (it keeps mtime and size), or nothing new.
  - gone: a name replayed as gone in the last ECHO_S seconds is not replayed again (the
    placeholder's own create and delete come back as events), and a create that finds an
    empty mode-000 file there is that placeholder.
If the SSH channel drops, the next change reopens it; changes in between raise no guest
event (the share's contents are unaffected: this only replays notifications).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("dockyard.shares")
AGENT = Path(__file__).with_name("replay_agent.py")
ECHO_S = 2.0


@dataclass(frozen=True)
class Op:
    op: str  # "touch" | "gone"
    path: str  # on the host
    is_dir: bool = False


def ops_for(kind: str, is_dir: bool, src: str, dest: str = "") -> list[Op]:
    """The guest operations that replay one watchdog event (pure)."""
    if kind == "created":
        return [Op("touch", src, is_dir)]
    if kind == "modified":
        return [] if is_dir else [Op("touch", src)]  # a folder's change names its child
    if kind == "deleted":
        return [Op("gone", src, is_dir)]
    if kind == "moved":
        return [Op("gone", src, is_dir), Op("touch", dest, is_dir)]
    return []  # opened, closed, closed_no_write: no change to replay


def guest_path(host_root: str, guest_root: str, path: str) -> str | None:
    rel = os.path.relpath(path, host_root)
    if rel.startswith(".."):
        return None
    return guest_root if rel == "." else f"{guest_root.rstrip('/')}/{rel.replace(os.sep, '/')}"


def is_placeholder(st: os.stat_result) -> bool:
    return stat.S_IMODE(st.st_mode) == 0 and (stat.S_ISDIR(st.st_mode) or st.st_size == 0)


class Replayer(FileSystemEventHandler):
    """Replays one share's host changes in the guest, for as long as it runs."""

    def __init__(
        self,
        host_root: str,
        guest_root: str,
        send: Callable[[dict[str, object]], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host_root = os.path.normpath(host_root)
        self.guest_root = guest_root
        self.send = send
        self.clock = clock
        self._touched: dict[str, tuple[int, int, int]] = {}
        self._gone: dict[str, float] = {}
        self._lock = threading.Lock()
        self._observer: Observer | None = None  # type: ignore[valid-type]

    def on_any_event(self, event: FileSystemEvent) -> None:
        src, dest = os.fsdecode(event.src_path), os.fsdecode(event.dest_path or "")
        for op in ops_for(event.event_type, event.is_directory, src, dest):
            message = self.message(op)
            if message is not None:
                self.send(message)

    def message(self, op: Op) -> dict[str, object] | None:
        """The agent's request for `op`, or None when the guards drop it."""
        target = guest_path(self.host_root, self.guest_root, op.path)
        if target is None or target == self.guest_root:
            return None
        with self._lock:
            now = self.clock()
            if op.op == "gone":
                if os.path.lexists(op.path) or now - self._gone.get(op.path, -ECHO_S) < ECHO_S:
                    return None
                self._gone[op.path] = now
                self._touched.pop(op.path, None)
                return {"op": "gone", "path": target, "dir": op.is_dir}
            try:
                st = os.lstat(op.path)
            except OSError:
                return None  # gone again; its delete is replayed by itself
            if now - self._gone.get(op.path, -ECHO_S) < ECHO_S and is_placeholder(st):
                return None
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            if self._touched.get(op.path) == key:
                return None
            self._touched[op.path] = key
            return {"op": "touch", "path": target, "mtime_ns": st.st_mtime_ns}

    def start(self) -> None:
        observer = Observer()
        observer.schedule(self, self.host_root, recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)


class AgentChannel:
    """The guest agent behind one SSH exec channel, (re)opened on demand."""

    def __init__(self, client: Callable[[], paramiko.SSHClient], python: str = "python3"):
        self._client = client
        self._python = python
        self._chan: paramiko.Channel | None = None
        self._lock = threading.Lock()

    def _open(self) -> paramiko.Channel:
        transport = self._client().get_transport()
        assert transport is not None
        chan = transport.open_session()
        chan.exec_command(f"{self._python} -u -c {shlex.quote(AGENT.read_text())}")
        threading.Thread(target=self._drain, args=(chan,), daemon=True).start()
        return chan

    def _drain(self, chan: paramiko.Channel) -> None:
        """Read the agent's answers (one line per request), so its pipe never fills."""
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            for line in chan.makefile("r"):
                if line.startswith("error"):
                    log.warning("replay agent: %s", line.strip())

    def warm(self) -> None:
        """Open the channel now: the agent's interpreter start (seconds under TCG) would
        otherwise delay the first replayed event."""
        with self._lock:
            try:
                if self._chan is None:
                    self._chan = self._open()
            except (OSError, EOFError, paramiko.SSHException) as e:
                log.warning("replay: the guest agent did not start yet: %s", e)

    def send(self, message: dict[str, object]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._chan is None or self._chan.closed or self._chan.exit_status_ready():
                        self._chan = self._open()
                    self._chan.sendall(data)
                    return
                except (OSError, EOFError, paramiko.SSHException) as e:
                    self._chan = None
                    if attempt == 2:
                        log.warning("replay: cannot reach the guest agent: %s", e)

    def close(self) -> None:
        with self._lock:
            if self._chan is not None:
                self._chan.close()
                self._chan = None
