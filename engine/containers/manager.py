"""The container manager: the state every verb shares, and one method per verb.

Each verb lives in its own module (create, start, stop, remove, wait, attach,
exits, recovery); this class holds what they share (the shims of running
containers, attaches waiting for a start, the exit counters waiters watch) and
is the one object the API talks to. Every verb takes the container's lock,
checks the status guard, acts through the runtime, saves the record atomically
and publishes an event.
"""

from __future__ import annotations

import shutil
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cgroups.manager import CgroupManager
from engine.containers import (
    attach,
    connect,
    exits,
    names,
    netnames,
    recovery,
    remove,
    start,
    stop,
    wait,
)
from engine.containers import create as create_mod
from engine.containers.attach import PendingAttach
from engine.containers.healthcheck_monitor import HealthMonitor
from engine.containers.model import Container
from engine.containers.monitor import ExitMonitor
from engine.containers.status import Status
from engine.containers.store import ContainerStore
from engine.errors import Conflict, EngineError, InvalidParameter
from engine.events import EventBus
from engine.images.store import ImageStore
from engine.network.model import Endpoint, Network
from engine.network.sandbox import Dns, Networks, Sandbox
from engine.runtime.shim_client import ShimHandle
from engine.volumes import VolumeStore


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
        networks: Networks | None = None,
        dns: Dns | None = None,
    ) -> None:
        self.store = store
        self.images = images
        self.volumes = volumes
        self.events = events
        self.cgroups = cgroups
        self.exec_root = exec_root
        self.cgroup_parent = cgroup_parent
        self.default_bind_ip = "127.0.0.1"  # --ip: where -p without an address listens
        # Without a network manager (some tests) every container gets an empty netns.
        self.networks = networks
        self.sandbox = Sandbox(networks, dns, exec_root) if networks is not None else None
        self.dns = dns
        self.shims: dict[str, ShimHandle] = {}
        self.pending: dict[str, list[PendingAttach]] = {}
        self.changed = threading.Condition()  # notified on every exit, start and removal
        self.exits: dict[str, int] = {}  # cid -> exit sequence number, for waiters
        self.removed: OrderedDict[str, int] = OrderedDict()  # cid -> last exit code
        self.monitor = ExitMonitor(lambda cid: exits.on_exit(self, cid))
        # Called with each removed container's id, however it went (rm, --rm, prune).
        self.on_removed: list[Callable[[str], None]] = []
        self.health = HealthMonitor(self)
        self.on_removed.append(self.health.forget)
        self.empty_layer = store.root.parent / "empty-layer"
        self.empty_layer.mkdir(parents=True, exist_ok=True)

    # -- shared helpers ------------------------------------------------------------

    def state_dir(self, c: Container) -> Path:
        return self.exec_root / c.id[:16]

    def event(self, c: Container, action: str, **extra: str) -> None:
        attrs = {"name": c.name, "image": c.image_name, **c.labels, **extra}
        self.events.publish("container", action, c.id, attrs)

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def image_in_use(self, image_id: str) -> str:
        """The short id of a container using the image, or "" (the store names it in errors)."""
        return next((c.short_id for c in self.store.all() if c.image_id == image_id), "")

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self.store.all() if any(m.get("Name") == name for m in c.mounts)]

    # -- verbs -------------------------------------------------------------------------

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
            hc = body.get("HostConfig") or {}
            endpoints = connect.plan(self, body, hc if isinstance(hc, dict) else {})
            c = create_mod.build(
                body, name, image.id, image_config, paths, self.volumes, self.cgroup_parent
            )
            c.networks = endpoints
            try:
                self.store.add(c)
            except EngineError:
                shutil.rmtree(self.store.dir(c.id), ignore_errors=True)
                raise
        self.event(c, "create")
        return c

    def start(self, c: Container) -> None:
        start.start(self, c)

    def kill(self, c: Container, sig: int = signal.SIGKILL) -> None:
        stop.kill(self, c, sig)

    def stop(self, c: Container, timeout: int | None = None, sig: str | None = None) -> None:
        stop.stop(self, c, timeout, sig)

    def restart(self, c: Container, timeout: int | None = None) -> None:
        if c.state.status.alive:
            stop.stop(self, c, timeout, None)
        start.start(self, c)
        self.event(c, "restart")

    def pause(self, c: Container) -> None:
        with c.lock:
            c.state.status.check_pause(c.name)
            self.cgroups.freeze(c.id)
            c.state.status = Status.PAUSED
            self.store.save(c)
        self.event(c, "pause")

    def unpause(self, c: Container) -> None:
        with c.lock:
            c.state.status.check_unpause(c.name)
            self.cgroups.thaw(c.id)
            c.state.status = Status.RUNNING
            self.store.save(c)
        self.event(c, "unpause")

    def wait(self, cid: str, condition: str) -> int:
        return wait.wait(self, cid, condition)

    def remove(self, c: Container, force: bool = False, volumes: bool = False) -> None:
        remove.remove(self, c, force, volumes)

    def remove_quietly(self, c: Container) -> bool:
        return remove.remove_quietly(self, c)

    def prune(self, match: Callable[[Container], bool]) -> list[str]:
        return remove.prune(self, match)

    def rename(self, c: Container, new_name: str) -> None:
        new = names.validate(new_name)
        old = c.name
        self.store.rename(c, new)
        self.event(c, "rename", oldName="/" + old)

    def connect(self, c: Container, net: Network, endpoint_config: dict[str, Any]) -> None:
        connect.connect(self, c, net, endpoint_config)

    def disconnect(self, c: Container, net: Network, force: bool = False) -> None:
        connect.disconnect(self, c, net, force)

    def attached(self, network_id: str) -> dict[str, tuple[str, Endpoint]]:
        """The NetworkManager's hook: who is on a network (inspect, IPAM rebuild)."""
        return netnames.attached(self.store.all(), network_id)

    def resolve_name(self, container_id: str, qname: str) -> list[str] | None:
        """The embedded DNS's question: `qname` as `container_id` sees it."""
        try:
            asking = self.store.get(container_id)
        except EngineError:
            return None
        return netnames.resolve(asking, qname, self.store.all(), self.store.get)

    def reverse_name(self, container_id: str, ip: str) -> str | None:
        """The embedded DNS's PTR question: who holds `ip`, as `container_id` sees it."""
        try:
            asking = self.store.get(container_id)
        except EngineError:
            return None
        return netnames.reverse(asking, ip, self.store.all())

    def prepare_attach(
        self, c: Container, stdin: bool, stdout: bool, stderr: bool
    ) -> PendingAttach:
        return attach.prepare_attach(self, c, stdin, stdout, stderr)

    def resize(self, c: Container, height: int, width: int) -> None:
        shim = self.shims.get(c.id)
        if shim is None:
            raise Conflict(f"container {c.name} is not running")
        shim.resize(height, width)

    # -- engine start / stop -----------------------------------------------------------

    def recover(self) -> None:
        recovery.recover(self)

    def dns_start(self) -> None:
        if self.dns is not None:
            self.dns.start()

    def shutdown(self) -> None:
        """Leave containers running (live-restore); release clients waiting on them."""
        self.monitor.stop()
        self.health.stop()
        if self.dns is not None:
            self.dns.stop()
        if self.sandbox is not None:
            self.sandbox.settle()  # veths of containers that just ended
        for waiting in self.pending.values():
            for p in waiting:
                p.ready.set()
