"""System routes: /_ping, /version, /info, /events, /system/df."""

from __future__ import annotations

import json
import math
import os
import queue
import select
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import events as events_mod
from engine.api import schema
from engine.api.http import API_VERSION, MIN_API_VERSION, Reply, Request, Router, StreamReply
from engine.containers import views
from engine.containers.status import Status
from engine.diskusage import du
from engine.errors import EngineError, InvalidParameter
from engine.images.manifest import default_platform

if TYPE_CHECKING:
    from engine.daemon import Daemon

ENGINE_VERSION = "27.0.0-dockyard"
EVENT_FILTERS = ("container", "event", "image", "label", "network", "type", "volume")


def register(router: Router, d: Daemon) -> None:
    def ping(req: Request) -> Reply:
        return Reply(
            200,
            b"OK",
            "text/plain; charset=utf-8",
            {
                "Cache-Control": "no-cache, no-store, must-revalidate",
                "Pragma": "no-cache",
                "Builder-Version": "1",
            },
        )

    def version(req: Request) -> Reply:
        uname = os.uname()
        return Reply(
            200,
            {
                "Platform": {"Name": "Dockyard Engine"},
                "Components": [
                    {
                        "Name": "Engine",
                        "Version": ENGINE_VERSION,
                        "Details": {
                            "ApiVersion": API_VERSION,
                            "MinAPIVersion": MIN_API_VERSION,
                            "Os": "linux",
                            "Arch": default_platform().architecture,
                            "KernelVersion": uname.release,
                        },
                    }
                ],
                "Version": ENGINE_VERSION,
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "GitCommit": "",
                "GoVersion": "python" + ".".join(map(str, sys.version_info[:3])),
                "Os": "linux",
                "Arch": default_platform().architecture,
                "KernelVersion": uname.release,
                "BuildTime": "",
            },
        )

    def info(req: Request) -> Reply:
        all_c = d.containers.store.all()
        count = {s: sum(1 for c in all_c if c.state.status is s) for s in Status}
        uname = os.uname()
        return Reply(
            200,
            {
                "ID": d.opts.root.name,
                "Containers": len(all_c),
                "ContainersRunning": count[Status.RUNNING],
                "ContainersPaused": count[Status.PAUSED],
                "ContainersStopped": count[Status.EXITED] + count[Status.CREATED],
                "Images": len(d.images.list()),
                "Driver": "overlay2",
                "DriverStatus": [["Backing Filesystem", "extfs"]],
                "DockerRootDir": str(d.opts.root),
                "MemoryLimit": True,
                "SwapLimit": True,
                "CpuCfsPeriod": True,
                "CpuCfsQuota": True,
                "PidsLimit": True,
                "OomKillDisable": False,
                "CgroupDriver": "cgroupfs",
                "CgroupVersion": d.cgroups.version,
                "KernelVersion": uname.release,
                "OperatingSystem": "Dockyard Engine on " + os.uname().sysname,
                "OSType": "linux",
                "Architecture": uname.machine,
                "NCPU": os.cpu_count() or 1,
                "MemTotal": _mem_total(),
                "Name": socket.gethostname(),
                "ServerVersion": ENGINE_VERSION,
                "LoggingDriver": "json-file",
                "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Log": ["json-file"]},
                "SecurityOptions": ["name=seccomp,profile=unconfined", "name=no-new-privileges"],
                "Runtimes": {"dockyard": {"path": "python3 -m engine.runtime.shim"}},
                "DefaultRuntime": "dockyard",
                "LiveRestoreEnabled": True,
                "Labels": [],
                "ExperimentalBuild": False,
                "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"]},
                "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": ""},
                "Warnings": None,
            },
        )

    def events(req: Request) -> StreamReply:
        since = _time_arg(req.arg("since"))
        until = _time_arg(req.arg("until"))
        filters = schema.filters(req.json_arg("filters"), EVENT_FILTERS)
        match = events_mod.matcher(filters)
        past, q = d.events.subscribe(since if since is not None else (None if until is None else 0))
        conn = req._connection

        def stream() -> Iterator[bytes]:
            try:
                for e in past:
                    if match(e) and (until is None or e["timeNano"] <= until):
                        yield json.dumps(e).encode() + b"\n"
                while until is None or time.time_ns() < until:
                    try:
                        e = q.get(timeout=0.5)
                    except queue.Empty:
                        if conn is not None and _closed(conn):
                            return
                        continue
                    if until is not None and e["timeNano"] > until:
                        return
                    if match(e):
                        yield json.dumps(e).encode() + b"\n"
            finally:
                d.events.unsubscribe(q)

        return StreamReply(stream())

    def df(req: Request) -> Reply:
        return Reply(200, disk_usage(d))

    router.add("GET", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
    router.add("GET", "/events", events)
    router.add("GET", "/system/df", df)


def disk_usage(d: Daemon) -> dict[str, Any]:
    """`docker system df`: what images, containers and volumes hold, and who uses what."""
    containers = d.containers.store.all()
    images: list[dict[str, Any]] = []
    layers: dict[str, int] = {}
    for image in d.images.list():
        row = d.images.summary(image)
        row["Containers"] = sum(1 for c in containers if c.image_id == image.id)
        images.append(row)
        layers.update(zip(image.diff_ids, image.layer_sizes, strict=False))
    now = time.time()
    rows = []
    for c in containers:
        row = views.summary(c, now)
        row["SizeRw"] = du(Path(c.spec.upperdir))
        row["SizeRootFs"] = row["SizeRw"] + sum(
            layers.get(diff, 0) for diff in _image_diff_ids(d, c.image_id)
        )
        rows.append(row)
    volumes = []
    for view in d.volumes.list():
        users = d.containers.volume_users(view["Name"])
        size = du(Path(view["Mountpoint"]))
        volumes.append({**view, "UsageData": {"Size": size, "RefCount": len(users)}})
    return {
        "LayersSize": sum(layers.values()),
        "Images": images,
        "Containers": rows,
        "Volumes": volumes,
        "BuildCache": [],
    }


def _image_diff_ids(d: Daemon, image_id: str) -> list[str]:
    try:
        return d.images.get(image_id).diff_ids
    except EngineError:
        return []  # removed with --force while a container still uses it


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def _time_arg(text: str) -> int | None:
    """Docker's since/until: seconds (with optional fraction) -> nanoseconds."""
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or abs(seconds) > 1e11:
        raise InvalidParameter(f"invalid timestamp: {text!r}; give seconds since the epoch")
    return int(seconds * 1_000_000_000)


def _closed(conn: socket.socket) -> bool:
    """True once the client went away: readable with no data means EOF."""
    try:  # poll, not select(): select's fds stop at 1024; 1,000 containers need more
        poller = select.poll()
        poller.register(conn, select.POLLIN)
        readable = bool(poller.poll(0))
        return readable and conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (OSError, ValueError):
        return True
