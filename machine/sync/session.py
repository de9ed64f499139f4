"""SyncSession: one share kept in sync, on its own thread, for as long as it runs.

The host's folder is watched with watchdog, the guest's by the agent; both feed the set of
changed paths per direction (which `status()` reports). The session thread waits for
changes, lets a burst settle for COALESCE_S, then reconciles only those paths. A full
pass runs at connection (the initial scan, incremental through the index), after every
reconnect and on resume, since changes may have gone unseen meanwhile.

Nothing here blocks its caller: start, pause, resume, status and stop return at once (stop
waits for the thread a bounded time). When SSH or the agent drops, the thread reconnects
with backoff (RETRY_MIN_S doubling to RETRY_MAX_S) and rescans; it never gives up until
stopped. Paused, it keeps collecting changes and applies none.

For a benchmark or test of a folder pair: make a session with a `connect` callable (for a
machine: `lambda: machine.ssh.connect(machine_dir, port, deadline)`), then
`with running(session): ...` (started, first pass done, stopped at the end), and
`session.wait_idle()` after changing files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from machine.errors import MachineError
from machine.sync import agent as agentmod
from machine.sync.errors import ConnectionLost, EmptySide, SyncError
from machine.sync.ignore import DEFAULT_PATTERNS, IgnoreRules
from machine.sync.index import Index
from machine.sync.planner import GUEST, HOST
from machine.sync.reconcile import Reconciler
from machine.sync.sides import GuestSide, HostSide
from machine.sync.status import SyncStatus

COALESCE_S = 0.03
RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0
PUBLISH_EVERY_S = 0.25  # the status file follows changes this closely, at most
RESCAN_EVERY_S = 300.0  # a full pass even without events: a watcher can lose some (cheap:
# unchanged lstat keys mean no hashing)
log = logging.getLogger("machine.sync")


@dataclass
class SyncShare:
    """A host folder and the guest-local folder kept equal to it."""

    tag: str
    host_path: Path
    guest_path: str
    ignore: list[str] = field(default_factory=lambda: list(DEFAULT_PATTERNS))


class _HostEvents(FileSystemEventHandler):
    def __init__(self, root: str, rules: IgnoreRules, changed: Callable[[list[str]], None]):
        self.root = root
        self.rules = rules
        self.changed = changed

    def _rel(self, path: str | bytes) -> str | None:
        rel = os.path.relpath(os.fsdecode(path), self.root).replace(os.sep, "/")
        if rel == "." or rel.startswith("../"):
            return None
        return rel

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type == "modified":
            return  # a child's own event says what changed
        rels = [self._rel(event.src_path)]
        if event.dest_path:
            rels.append(self._rel(event.dest_path))
        kept = [r for r in rels if r and not self.rules.ignored(r, event.is_directory)]
        if kept:
            self.changed(kept)


class SyncSession:
    def __init__(
        self,
        share: SyncShare,
        connect: Callable[[], paramiko.SSHClient],
        state_dir: Path,
        agent_dir: str = "/tmp",
        python: str = "python3",
    ) -> None:
        self.share = share
        self.connect = connect
        self.state_dir = state_dir
        self.agent_dir = agent_dir
        self.python = python
        self.rules = IgnoreRules(share.ignore)
        self.host = HostSide(str(share.host_path), self.rules)
        self.index = Index.load(
            state_dir / f"{share.tag}.index.json", str(share.host_path), share.guest_path
        )
        self._cond = threading.Condition()
        self._pending: dict[str, set[str]] = {HOST: set(), GUEST: set()}
        self._full = True
        self._last_full = 0.0
        self._paused = False
        self._busy = False
        self._stopping = False
        self._state = "starting"
        self._last_error = ""
        self._last_sync = 0.0
        self._errors: dict[str, str] = {}
        self._published = 0.0
        self._last_written: SyncStatus | None = None
        self._guest_hashed = 0
        self._client: paramiko.SSHClient | None = None
        self._guest: GuestSide | None = None
        self._thread: threading.Thread | None = None
        self._observer: Observer | None = None  # type: ignore[valid-type]

    # -- the caller's side ---------------------------------------------------------------

    def start(self) -> None:
        self.host.begin()  # the watcher needs the folder; `created` tells a missing one
        observer = Observer()
        handler = _HostEvents(str(self.share.host_path), self.rules, self._host_changed)
        observer.schedule(handler, str(self.share.host_path), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(
            target=self._run, name=f"sync-{self.share.tag}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        self._close()  # unblocks a pass waiting on the connection
        if self._thread is not None:
            self._thread.join(timeout)
        self.index.save()
        self._state = "stopped"
        self._publish(force=True)

    def pause(self) -> None:
        """Stop applying changes (a pass in flight completes); changes keep being counted."""
        with self._cond:
            self._paused = True
            self._cond.notify_all()
        self._publish(force=True)

    def resume(self) -> None:
        """Apply again, starting with a full pass: both sides may have changed."""
        with self._cond:
            self._paused = False
            if self._state == "held":
                self._state = "syncing"
                if not self.index.path.exists():  # the user's way to say "fill it again"
                    self.index.records.clear()
            self._full = True
            self._cond.notify_all()

    def status(self) -> SyncStatus:
        with self._cond:
            return SyncStatus(
                tag=self.share.tag,
                host_path=str(self.share.host_path),
                guest_path=self.share.guest_path,
                state="paused"
                if self._paused and self._state not in ("stopped", "held")
                else self._state,
                paused=self._paused,
                to_guest=sorted(self._pending[HOST]),
                to_host=sorted(self._pending[GUEST]),
                n_to_guest=len(self._pending[HOST]),
                n_to_host=len(self._pending[GUEST]),
                errors=dict(self._errors),
                last_error=self._last_error,
                last_sync=self._last_sync,
                hashed_host=self.host.hashed,
                hashed_guest=self._guest_hashed + (self._guest.hashed if self._guest else 0),
                pid=os.getpid(),
            )

    def wait_idle(self, timeout: float) -> bool:
        """True once connected with no pass running and nothing to do (or paused)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._idle():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def _idle(self) -> bool:
        if self._busy or self._guest is None:
            return False
        if self._paused:
            return True
        return not self._full and not self._pending[HOST] and not self._pending[GUEST]

    # -- changes seen ----------------------------------------------------------------

    def _host_changed(self, rels: list[str]) -> None:
        self._add(HOST, rels)

    def _guest_changed(self, rels: list[str]) -> None:
        self._add(GUEST, rels)

    def _wake(self) -> None:
        """The agent's channel ended: the session thread reconnects now, not at its next
        periodic look."""
        with self._cond:
            self._cond.notify_all()

    def _add(self, side: str, rels: Iterable[str]) -> None:
        with self._cond:
            for rel in rels:
                if rel == "":
                    self._full = True  # the watcher lost events: look at everything
                else:
                    self._pending[side].add(rel)
            self._cond.notify_all()

    # -- the session thread ----------------------------------------------------------

    def _publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._published < PUBLISH_EVERY_S:
            return
        st = self.status()
        if not force and st == self._last_written:
            return
        self._published, self._last_written = now, st
        try:
            st.write(self.state_dir)
        except OSError as e:
            log.warning("sync %s: cannot write its status: %s", self.share.tag, e)

    def _set_state(self, state: str, error: str = "") -> None:
        with self._cond:
            self._state = state
            if error:
                self._last_error = error
            self._cond.notify_all()
        self._publish(force=True)

    def _open(self) -> Reconciler:
        client = self.connect()
        self._client = client
        transport = client.get_transport()
        if transport is None:
            raise ConnectionLost("SSH connection without a transport")
        sftp = client.open_sftp()
        path = agentmod.upload(sftp, self.agent_dir)
        command = f"{shlex.quote(self.python)} -I {shlex.quote(path)}"
        agent = agentmod.AgentClient(
            transport,
            command,
            self.share.guest_path,
            self.rules.patterns,
            self._guest_changed,
            self._wake,
        )
        self._guest = GuestSide(sftp, agent, self.share.guest_path)
        with self._cond:
            self._full = True
        return Reconciler(self.host, self._guest, self.index, lambda m: log.info("%s", m))

    def _close(self) -> None:
        guest, client = self._guest, self._client
        self._guest, self._client = None, None
        if guest is not None:
            self._guest_hashed += guest.hashed
            guest.agent.close()
        if client is not None:
            client.close()

    def _run(self) -> None:
        delay = RETRY_MIN_S
        while not self._stopping:
            try:
                reconciler = self._open()
                self._set_state("syncing")
                delay = RETRY_MIN_S
                self._serve(reconciler)
            except Exception as e:  # never give up: a share must not die with its thread
                if self._stopping:
                    break
                expected = (MachineError, ConnectionLost, OSError, EOFError, paramiko.SSHException)
                if isinstance(e, expected):
                    log.info("sync %s: connection lost (%s), retrying", self.share.tag, e)
                else:
                    log.exception("sync %s: unexpected failure, retrying", self.share.tag)
                self._close()
                self.index.save()
                self._set_state("reconnecting", str(e) or type(e).__name__)
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _next_scopes(self) -> list[str] | None:
        """Wait for work; the scopes of the next pass, or None when stopping."""
        with self._cond:
            while not self._stopping and (
                self._paused or not (self._full or self._pending[HOST] or self._pending[GUEST])
            ):
                if self._guest is None or not self._guest.alive():
                    raise ConnectionLost("the SSH connection or the guest agent ended")
                self._cond.wait(PUBLISH_EVERY_S)
                self._publish()
                if time.monotonic() - self._last_full > RESCAN_EVERY_S:
                    self._full = True
            if self._stopping:
                return None
            self._busy = True
        time.sleep(COALESCE_S)  # let a burst (an untar, a save-and-rename) land in one pass
        with self._cond:
            scopes = {""} if self._full else self._pending[HOST] | self._pending[GUEST]
            if self._full:
                self._last_full = time.monotonic()
            self._full = False
            self._pending = {HOST: set(), GUEST: set()}
            return sorted(scopes)

    def _hold(self, e: EmptySide) -> None:
        """Stop applying until the user acts (resume), as if paused, and say why."""
        log.warning("sync %s: %s", self.share.tag, e)
        with self._cond:
            self._busy, self._paused = False, True
            self._state = "held"
            self._last_error = f"{e.message}\nhint: {e.hint}"
            self._cond.notify_all()
        self._publish(force=True)

    def _serve(self, reconciler: Reconciler) -> None:
        while True:
            scopes = self._next_scopes()
            if scopes is None:
                return
            try:
                result = reconciler.run(scopes)
            except EmptySide as e:
                self._hold(e)
                continue
            except BaseException:
                with self._cond:
                    self._busy, self._full = False, True
                raise
            self.index.save()
            with self._cond:
                if scopes == [""]:
                    self._errors = {}
                else:
                    for rel in [r for r in self._errors if any(_within(r, s) for s in scopes)]:
                        del self._errors[rel]
                self._errors.update(result.errors)
                self._pending[HOST].update(result.retry)
                self._last_sync = time.time()
                self._state = "watching"
                self._busy = False
                self._cond.notify_all()
            for rel, why in result.errors.items():
                log.warning("sync %s: %s: %s", self.share.tag, rel, why)
            self._publish(force=bool(result.errors))


@contextlib.contextmanager
def running(session: SyncSession, timeout: float = 60.0) -> Iterator[SyncSession]:
    """Start `session`, wait for its first full pass, and stop it on the way out (for
    benchmarks and tests of a folder pair)."""
    session.start()
    try:
        if not session.wait_idle(timeout):
            st = session.status()
            raise SyncError(f"share {st.tag}: the first sync did not finish: {st.last_error}")
        yield session
    finally:
        session.stop()


def _within(rel: str, scope: str) -> bool:
    return not scope or rel == scope or rel.startswith(scope + "/")
