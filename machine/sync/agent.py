"""The host's end of the guest agent (guest_agent.py): upload, start, requests, events.

The agent runs on an exec channel of the share's SSH connection; its stdout carries both
replies (matched to requests by id) and change events, read by one thread that hands
events to `on_event`. When the channel ends, `on_close` is called, every waiting request fails with
ConnectionLost and `alive` turns false, which is how the session learns to reconnect.
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections.abc import Callable
from typing import Any

import paramiko

from machine.sync import agentpack
from machine.sync.errors import ConnectionLost, SyncError

HELLO_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 300.0


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: dict[str, Any] = {}


def upload(sftp: paramiko.SFTPClient, agent_dir: str) -> str:
    """Put this version of the agent in `agent_dir` (once: its name carries its hash)."""
    path = posixpath.join(agent_dir, agentpack.file_name())
    try:
        sftp.stat(path)
        return path
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with sftp.open(tmp, "wb") as f:
        f.write(agentpack.build())
    sftp.posix_rename(tmp, path)
    return path


class AgentClient:
    """One running agent for one guest folder."""

    def __init__(
        self,
        transport: paramiko.Transport,
        command: str,
        root: str,
        ignore: list[str],
        on_event: Callable[[list[str]], None],
        on_close: Callable[[], None] = lambda: None,
    ) -> None:
        self.on_event = on_event
        self.on_close = on_close
        self.hostname = ""
        self.created = False  # the guest folder did not exist when the agent started
        self.hashed = 0  # paths hashed in the guest, for the incremental-scan check
        self._lock = threading.Lock()
        self._next = 0
        self._pending: dict[int, _Pending] = {}
        self._closed = False
        self._hello = threading.Event()
        self.channel = transport.open_session()
        self.channel.exec_command(command)
        self._out = self.channel.makefile("rb")
        self._send({"root": root, "ignore": ignore})
        self._reader = threading.Thread(target=self._read, name="sync-agent", daemon=True)
        self._reader.start()
        if not self._hello.wait(HELLO_TIMEOUT_S) or not self.hostname:
            detail = self._stderr()
            self.close()
            raise SyncError(
                f"the guest sync agent did not start ({command}): {detail or 'no answer'}",
                "the guest needs python3; see the machine's logs",
            )

    @property
    def alive(self) -> bool:
        return not self._closed and not self.channel.closed

    def _stderr(self) -> str:
        if not self.channel.recv_stderr_ready():
            return ""
        return self.channel.recv_stderr(4096).decode(errors="replace").strip()

    def _send(self, doc: dict[str, Any]) -> None:
        data = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        try:
            self.channel.sendall(data)
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise ConnectionLost(f"sync agent channel: {e}") from e

    def _read(self) -> None:
        try:
            for line in self._out:
                doc = json.loads(line)
                if "ev" in doc:
                    self.on_event([str(p) for p in doc["ev"]])
                elif "hello" in doc:
                    self.hostname = str(doc.get("hostname") or "guest")
                    self.created = bool(doc.get("created"))
                    self._hello.set()
                elif (waiter := self._pending.get(int(doc.get("id", -1)))) is not None:
                    waiter.reply = doc
                    waiter.done.set()
        except (OSError, EOFError, ValueError, paramiko.SSHException):
            pass
        finally:
            self._closed = True
            self._hello.set()
            with self._lock:
                for waiter in self._pending.values():
                    waiter.done.set()
            self.on_close()

    def request(self, op: str, paths: list[str] | None = None, **fields: Any) -> dict[str, Any]:
        with self._lock:
            if self._closed:
                raise ConnectionLost("the sync agent has exited")
            self._next += 1
            rid, waiter = self._next, _Pending()
            self._pending[rid] = waiter
        try:
            self._send({"id": rid, "op": op, "paths": paths or [], **fields})
            if not waiter.done.wait(REQUEST_TIMEOUT_S) or not waiter.reply:
                raise ConnectionLost(f"the sync agent gave no answer to {op}")
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        if "error" in waiter.reply:
            raise SyncError(f"guest: {waiter.reply['error']}")
        return waiter.reply

    def close(self) -> None:
        self._closed = True
        self.channel.close()
