"""The container verbs (create, start, stop, kill, restart, pause, wait, remove, rename).

Each verb takes the container's lock, checks the status guard, acts through
the runtime, then saves the record atomically and publishes an event. Waiting
for an exit never holds the lock, because the exit handler needs it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomicfile import read_json
from engine.cgroups.manager import CgroupManager
from engine.containers import create as create_mod
from engine.containers import names, restart
from engine.containers.model import Container, now_rfc3339
from engine.containers.monitor import ExitMonitor
from engine.containers.status import Status
from engine.containers.store import ContainerStore
from engine.errors import Conflict, EngineError, InvalidParameter, NotFound, NotModified
from engine.events import EventBus
from engine.images.store import ImageStore
from engine.runtime.shim_client import ExecFailed, ShimHandle
from engine.runtime.spec import ExitStatus
from engine.volumes import VolumeStore

log = logging.getLogger("engine.containers")

REMEMBER_REMOVED = 256


@dataclass
class PendingAttach:
    """An attach that arrived before start; it is connected to the shim before the exec."""

    stdin: bool
    stdout: bool
    stderr: bool
    ready: threading.Event
    sock: Any = None


class ContainerManager:
    def __init__(
        self,
        store: ContainerStore,
        images: ImageStore,
        volumes: VolumeStore,
        events: EventBus,
        cgroups: CgroupManager,
        exec_root: Path,
        cgroup_parent: str,
    ) -> None:
        self.store = store
        self.images = images
        self.volumes = volumes
        self.events = events
        self.cgroups = cgroups
        self.exec_root = exec_root
        self.cgroup_parent = cgroup_parent
        self.shims: dict[str, ShimHandle] = {}
        self.pending: dict[str, list[PendingAttach]] = {}
        self.changed = threading.Condition()
        self.exits: dict[str, int] = {}  # cid -> exit sequence number, for waiters
        self.removed: OrderedDict[str, int] = OrderedDict()  # cid -> last exit code
        self.monitor = ExitMonitor(self._on_exit)
        self.empty_layer = store.root.parent / "empty-layer"
        self.empty_layer.mkdir(parents=True, exist_ok=True)

    # -- helpers ---------------------------------------------------------------

    def state_dir(self, c: Container) -> Path:
        return self.exec_root / c.id[:16]

    def _event(self, c: Container, action: str, **extra: str) -> None:
        attrs = {"name": c.name, "image": c.image_name, **c.labels, **extra}
        self.events.publish("container", action, c.id, attrs)

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def image_in_use(self, image_id: str) -> str:
        """The short id of a container using the image, or "" (the store names it in errors)."""
        return next((c.short_id for c in self.store.all() if c.image_id == image_id), "")

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self.store.all() if any(m.get("Name") == name for m in c.mounts)]

    # -- create ----------------------------------------------------------------

    def create(self, body: dict[str, Any], name: str) -> Container:
        if not isinstance(body, dict):
            raise InvalidParameter("container config must be a JSON object")
        image_name = body.get("Image")
        if not image_name or not isinstance(image_name, str):
            raise InvalidParameter("no image specified: set Image in the container config")
        with self.store.reserving(names.validate(name) if name else "") as name:
            image = self.images.get(image_name)
            paths = create_mod.CreatePaths(
                self.store.root, self.images.layer_dirs(image), self.empty_layer
            )
            image_config = dict(image.config.get("config") or {})
            c = create_mod.build(
                body, name, image.id, image_config, paths, self.volumes, self.cgroup_parent
            )
            try:
                self.store.add(c)
            except EngineError:
                shutil.rmtree(self.store.dir(c.id), ignore_errors=True)
                raise
        self._event(c, "create")
        return c

    # -- start -----------------------------------------------------------------

    def start(self, c: Container) -> None:
        try:
            with c.lock:
                if c.state.status in (Status.RUNNING, Status.PAUSED):
                    raise NotModified(f"container {c.name} is already started")
                c.state.status.check_start(c.name)
                self._launch(c)
        except EngineError as exc:
            if c.host_config.get("AutoRemove") and not isinstance(exc, (NotModified, Conflict)):
                self._remove_quietly(c)  # as Docker: a --rm container that cannot start goes away
            raise
        self._event(c, "start")
        self._notify()

    def _launch(self, c: Container) -> None:
        state_dir = self.state_dir(c)
        shutil.rmtree(state_dir, ignore_errors=True)
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            shim = ShimHandle.launch(c.spec, state_dir)
        except EngineError as exc:
            self._record_failed_start(c, 128, exc.message)
            raise
        self._connect_pending(c, shim)
        size = c.host_config.get("ConsoleSize") or [0, 0]
        if c.spec.tty and len(size) == 2 and size[0] and size[1]:
            shim.resize(int(size[0]), int(size[1]))  # before exec: the first command sees it
        try:
            shim.release()
        except ExecFailed as exc:
            shim.wait(5)
            self._record_failed_start(c, exc.exit_code, exc.message)
            raise
        c.state.status = Status.RUNNING
        c.state.pid = shim.pid
        c.state.started_at = now_rfc3339()
        c.state.exit_code = 0
        c.state.error = ""
        c.state.oom_killed = False
        c.manually_stopped = False
        self.store.save(c)
        self.shims[c.id] = shim
        self.monitor.watch(c.id, shim.monitor())

    def _record_failed_start(self, c: Container, code: int, message: str) -> None:
        c.state.exit_code = code
        c.state.error = message
        if c.state.status is Status.RESTARTING:
            c.state.status = Status.EXITED
        self.store.save(c)
        self.cgroups.remove(c.id)
        for p in self.pending.pop(c.id, []):
            p.ready.set()

    def _connect_pending(self, c: Container, shim: ShimHandle) -> None:
        for p in self.pending.pop(c.id, []):
            try:
                p.sock = shim.attach(p.stdin, p.stdout, p.stderr)
            except (OSError, EngineError) as exc:
                log.warning("could not attach a waiting client to %s: %s", c.short_id, exc)
            p.ready.set()

    # -- exit, restart, auto-remove ----------------------------------------------

    def _on_exit(self, cid: str) -> None:
        try:
            c = self.store.get(cid)
        except NotFound:
            return
        with c.lock:
            shim = self.shims.pop(cid, None)
            status = (shim.wait(10) if shim else None) or ExitStatus(
                255, error="the container's supervisor ended without recording an exit status"
            )
            c.state.record_exit(status)
            self.cgroups.remove(c.id)
            auto_remove = bool(c.host_config.get("AutoRemove"))
            if not auto_remove:  # an auto-removed record is deleted next (saved if that fails)
                self.store.save(c)
            again = restart.should_restart(
                c.host_config.get("RestartPolicy") or {},
                status.exit_code,
                c.restart_count,
                c.manually_stopped,
            )
            if again:
                c.state.status = Status.RESTARTING
                self.store.save(c)
        self._event(c, "die", exitCode=str(status.exit_code))
        if status.oom_killed:
            self._event(c, "oom")
        with self.changed:
            self.exits[cid] = self.exits.get(cid, 0) + 1
            self.changed.notify_all()
        if again:
            delay = restart.backoff(c.restart_count + 1)
            threading.Timer(delay, self._restart_after_exit, args=(c,)).start()
        elif auto_remove and not self._remove_quietly(c):
            with c.lock:
                if c.id not in self.removed:  # the record is still there: keep the exit
                    self.store.save(c)

    def _restart_after_exit(self, c: Container) -> None:
        with c.lock:
            if c.state.status is not Status.RESTARTING or c.manually_stopped:
                return
            c.restart_count += 1
            try:
                self._launch(c)
            except EngineError as exc:
                log.warning("restarting %s failed: %s", c.short_id, exc.message)
                self._notify()
                return
        self._event(c, "restart")
        self._event(c, "start")
        self._notify()

    def _remove_quietly(self, c: Container) -> bool:
        try:
            self.remove(c, force=True, volumes=True)
        except EngineError as exc:
            log.warning("auto-removing %s failed: %s", c.short_id, exc.message)
            return False
        return True

    # -- stop, kill, restart ---------------------------------------------------

    def kill(self, c: Container, sig: int = signal.SIGKILL) -> None:
        with c.lock:
            c.state.status.check_kill(c.name)
            shim = self.shims.get(c.id)
            if c.state.status is Status.RESTARTING or shim is None:
                c.manually_stopped = True
                c.state.status = Status.EXITED
                self.store.save(c)
                return
            if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                c.manually_stopped = True
                self.store.save(c)
            shim.signal(sig)
            if c.state.status is Status.PAUSED and sig == signal.SIGKILL:
                self.cgroups.thaw(c.id)
        self._event(c, "kill", signal=str(int(sig)))

    def stop(self, c: Container, timeout: int | None = None, sig: str | None = None) -> None:
        if not c.state.status.alive:
            raise NotModified(f"container {c.name} is already stopped")
        if timeout is None:
            configured = c.config.get("StopTimeout")  # `--stop-timeout` on create
            grace = 10 if configured is None else int(configured)
        else:
            grace = timeout
        stop_signal = parse_signal(sig or c.spec.stop_signal)
        with c.lock:
            if c.state.status is Status.RESTARTING:
                c.manually_stopped = True
                c.state.status = Status.EXITED
                self.store.save(c)
                self._notify()
                return
        seq = self.exits.get(c.id, 0)
        if grace != 0:
            with contextlib.suppress(Conflict):
                self.kill(c, stop_signal)
            if c.state.status is Status.PAUSED:
                self.cgroups.thaw(c.id)
            if self._wait_exit(c, seq, None if grace < 0 else float(grace)):
                self._event(c, "stop")
                return
        with contextlib.suppress(Conflict):
            self.kill(c, signal.SIGKILL)
        if not self._wait_exit(c, seq, 30.0):
            raise EngineError(f"container {c.name} did not exit after SIGKILL")
        self._event(c, "stop")

    def _wait_exit(self, c: Container, seq: int, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.changed:
            while self.exits.get(c.id, 0) == seq and c.state.status.alive:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self.changed.wait(left)
        return True

    def restart(self, c: Container, timeout: int | None = None) -> None:
        if c.state.status.alive:
            self.stop(c, timeout)
        self.start(c)
        self._event(c, "restart")

    # -- pause -----------------------------------------------------------------

    def pause(self, c: Container) -> None:
        with c.lock:
            c.state.status.check_pause(c.name)
            self.cgroups.freeze(c.id)
            c.state.status = Status.PAUSED
            self.store.save(c)
        self._event(c, "pause")

    def unpause(self, c: Container) -> None:
        with c.lock:
            c.state.status.check_unpause(c.name)
            self.cgroups.thaw(c.id)
            c.state.status = Status.RUNNING
            self.store.save(c)
        self._event(c, "unpause")

    # -- wait ------------------------------------------------------------------

    def wait(self, cid: str, condition: str) -> int:
        """Block until the condition holds; returns the exit code Docker reports."""
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: {condition!r}")
        try:
            c = self.store.get(cid)
        except NotFound:
            if cid in self.removed:
                return self.removed[cid]
            raise
        seq = self.exits.get(c.id, 0)
        with self.changed:
            while True:
                gone = c.id in self.removed
                if condition == "removed" and gone:
                    return self.removed[c.id]
                if condition in ("", "not-running") and (
                    gone or (not c.state.status.alive and c.state.status is not Status.CREATED)
                ):
                    return c.state.exit_code
                if condition in ("", "not-running") and c.state.status is Status.CREATED:
                    return c.state.exit_code
                if condition == "next-exit" and (self.exits.get(c.id, 0) != seq or gone):
                    return c.state.exit_code
                self.changed.wait(1.0)

    # -- remove, rename ----------------------------------------------------------

    def remove(self, c: Container, force: bool = False, volumes: bool = False) -> None:
        c.state.status.check_remove(c.name, force)
        if c.state.status.alive:
            seq = self.exits.get(c.id, 0)
            with contextlib.suppress(Conflict):
                self.kill(c, signal.SIGKILL)
            self._wait_exit(c, seq, 30.0)
        with c.lock:
            if c.id in self.removed:
                return
            c.state.status = Status.REMOVING
            for p in self.pending.pop(c.id, []):
                p.ready.set()
            self.cgroups.remove(c.id)
            shutil.rmtree(self.state_dir(c), ignore_errors=True)
            self.store.remove(c)
            if volumes:
                self._remove_anonymous_volumes(c)
            with self.changed:
                self.removed[c.id] = c.state.exit_code
                while len(self.removed) > REMEMBER_REMOVED:
                    self.removed.popitem(last=False)
                self.changed.notify_all()
        self._event(c, "destroy")

    def prune(self, match: Callable[[Container], bool]) -> list[str]:
        """Remove the stopped containers `match` accepts; returns their ids."""
        deleted = []
        for c in self.store.all():
            if c.state.status in (Status.EXITED, Status.CREATED, Status.DEAD) and match(c):
                with contextlib.suppress(NotFound, Conflict):
                    self.remove(c)
                    deleted.append(c.id)
        return deleted

    def _remove_anonymous_volumes(self, c: Container) -> None:
        for m in c.mounts:
            name = m.get("Name")
            if not name:
                continue
            try:
                labels = self.volumes.inspect(name)["Labels"]
                if "com.docker.volume.anonymous" in labels:
                    self.volumes.remove(name, self.volume_users)
            except EngineError as exc:
                log.info("kept volume %s of %s: %s", name, c.short_id, exc.message)

    def rename(self, c: Container, new_name: str) -> None:
        new = names.validate(new_name)
        old = c.name
        self.store.rename(c, new)
        self._event(c, "rename", oldName="/" + old)

    # -- attach ------------------------------------------------------------------

    def prepare_attach(
        self, c: Container, stdin: bool, stdout: bool, stderr: bool
    ) -> PendingAttach:
        """Register an attach now, before the client hears 101 Switching Protocols.

        `docker run` sends start as soon as its attach is answered, so an attach
        registered any later can miss a short-lived container's whole output. The
        returned `ready` is set once `sock` is connected (None: nothing to attach to)."""
        pending = PendingAttach(stdin, stdout, stderr, threading.Event())
        with c.lock:
            shim = self.shims.get(c.id)
            if shim is None or c.state.status not in (Status.RUNNING, Status.PAUSED):
                self.pending.setdefault(c.id, []).append(pending)
                return pending
            try:
                pending.sock = shim.attach(stdin, stdout, stderr)
            except (OSError, EngineError) as exc:
                log.info("attach to %s found it gone: %s", c.short_id, exc)
            pending.ready.set()
        return pending

    def attach_socket(self, c: Container, stdin: bool, stdout: bool, stderr: bool) -> Any:
        """A shim socket for the container's stdio, waiting for start if needed."""
        pending = self.prepare_attach(c, stdin, stdout, stderr)
        pending.ready.wait()
        return pending.sock

    def resize(self, c: Container, height: int, width: int) -> None:
        shim = self.shims.get(c.id)
        if shim is None:
            raise Conflict(f"container {c.name} is not running")
        shim.resize(height, width)

    # -- engine start / stop ---------------------------------------------------------

    def recover(self) -> None:
        """Find running containers again after an engine restart (live-restore).

        One container whose recovery fails (a cgroup that will not go, a record
        that will not save) is logged and left as it is: it must not keep the
        engine, and so every other container, from coming up."""
        for c in self.store.all():
            try:
                self._recover_one(c)
            except Exception:
                log.exception("recovering container %s failed", c.short_id)

    def _recover_one(self, c: Container) -> None:
        with c.lock:
            if c.state.status.alive:
                self._reattach(c)
            else:
                self._end_stray_shim(c)
        if c.state.status is not Status.EXITED:
            return
        if c.host_config.get("AutoRemove"):
            self._remove_quietly(c)  # it ended while the engine was down or mid-removal
        elif restart.starts_on_boot(
            c.host_config.get("RestartPolicy") or {},
            c.state.exit_code,
            c.restart_count,
            c.manually_stopped,
        ):
            with contextlib.suppress(EngineError):
                self.start(c)

    def _reattach(self, c: Container) -> None:
        shim = ShimHandle.recover(self.state_dir(c))
        if shim is not None:
            self.shims[c.id] = shim
            c.state.pid = shim.pid
            if c.state.status is Status.RESTARTING:
                c.state.status = Status.RUNNING
            self.store.save(c)
            self.monitor.watch(c.id, shim.monitor())
            return
        status = _read_exit(self.state_dir(c)) or ExitStatus(
            255, error="the container ended while the engine was down"
        )
        c.state.record_exit(status)
        self.cgroups.remove(c.id)
        self.store.save(c)

    def _end_stray_shim(self, c: Container) -> None:
        """A shim left by an engine that died mid-start (before it recorded RUNNING)
        runs a container no record knows of: end it, so it neither leaks nor holds
        the cgroup that the next start of this container creates again."""
        shim = ShimHandle.recover(self.state_dir(c))
        if shim is None:
            return
        log.warning("ending container %s, left half-started by the last engine", c.short_id)
        with contextlib.suppress(EngineError):
            shim.signal(signal.SIGKILL)
        shim.wait(10)

    def shutdown(self) -> None:
        """Leave containers running (live-restore); release clients waiting on them."""
        self.monitor.stop()
        for waiting in self.pending.values():
            for p in waiting:
                p.ready.set()


def _read_exit(state_dir: Path) -> ExitStatus | None:
    try:
        data = read_json(state_dir / "exit.json")
        return ExitStatus(**data)
    except (OSError, ValueError, TypeError):
        return None


def parse_signal(text: str | int) -> int:
    """ "SIGTERM", "TERM", "15" or 15 -> 15; unknown names are a 400."""
    if isinstance(text, int):
        return text
    value = text.strip().upper()
    if value.isdigit():
        return int(value)
    if not value.startswith("SIG"):
        value = "SIG" + value
    try:
        return int(signal.Signals[value])
    except KeyError:
        raise InvalidParameter(f"invalid signal: {text}") from None
