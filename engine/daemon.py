"""Wiring: the stores, the runtime's managers and the API, for one engine root.

Everything the routes need hangs off one `Daemon`, so each route module
receives exactly one object and no module reaches for globals.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from engine import rootlock
from engine.api.app import build_router
from engine.api.http import ApiServer
from engine.atomicfile import TRASH, empty_trash
from engine.cgroups.manager import CgroupManager, detect
from engine.containers.manager import ContainerManager
from engine.containers.store import ContainerStore
from engine.events import EventBus
from engine.execs import ExecStore
from engine.images.store import ImageStore
from engine.network import datapath
from engine.network.dnsondemand import DnsOnDemand
from engine.network.manager import DEFAULT_BRIDGE, FirewallRules, NetworkManager, firewall_table
from engine.volumes import VolumeStore

log = logging.getLogger("engine")


@dataclass
class Options:
    root: Path
    socket: str
    exec_root: Path
    cgroup_parent: str = "dockyard"
    insecure_registries: list[str] = field(default_factory=list)
    bridge: str = DEFAULT_BRIDGE  # the default bridge network's device
    bip: str = ""  # its address/prefix; "" picks a free pool
    host_ip: str = "127.0.0.1"  # where `-p 8080:80` listens: loopback unless asked


class Daemon:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        opts.root.mkdir(parents=True, exist_ok=True, mode=0o711)
        opts.exec_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root_lock = rootlock.acquire(opts.root)
        for trash in (opts.root / TRASH, opts.exec_root / TRASH):
            empty_trash(trash)  # trees a crash left half-removed
        self.events = EventBus()
        self.networks = NetworkManager(
            opts.root / "networks",
            self.events,
            datapath,
            FirewallRules(firewall_table(opts.bridge)),
            opts.bridge,
            opts.bip,
            opts.host_ip,
        )
        self.images = ImageStore(opts.root / "images")
        self.volumes = VolumeStore(opts.root / "volumes")
        self.cgroups: CgroupManager = detect(opts.cgroup_parent)
        self.containers = ContainerManager(
            ContainerStore(opts.root / "containers", opts.root / TRASH),
            self.images,
            self.volumes,
            self.events,
            self.cgroups,
            opts.exec_root,
            opts.cgroup_parent,
            self.networks,
            # The resolver is a late-bound lambda: the container manager is made after it.
            # The server itself is made when the first container needs a listener.
            DnsOnDemand(
                lambda cid, qname: self.containers.resolve_name(cid, qname),
                reverse=lambda cid, ip: self.containers.reverse_name(cid, ip),
            ),
        )
        # Before networks.setup(): IPAM rebuilds its allocations from the running containers.
        self.networks.attached = self.containers.attached
        self.containers.default_bind_ip = opts.host_ip
        self.execs = ExecStore(self.cgroups, self.containers.event)
        self.containers.on_removed.append(self.execs.forget_container)
        self.started = threading.Event()

    def serve(self) -> None:
        self.networks.setup()  # before recovery: restarted containers need their bridges
        self.containers.dns_start()  # before recovery: it re-adds running containers' listeners
        self.containers.recover()
        server = ApiServer(self.opts.socket, build_router(self))
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info(
                "received %s, shutting down (containers keep running)", signal.Signals(signum).name
            )
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        thread = threading.Thread(target=server.serve_forever, name="api", daemon=True)
        thread.start()
        log.info("engine listening on unix://%s (root %s)", self.opts.socket, self.opts.root)
        self.started.set()
        stop.wait()
        server.shutdown()
        server.server_close()
        self.containers.shutdown()  # also stops the embedded DNS
        self.networks.shutdown()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.opts.socket)
        log.info("engine stopped")
