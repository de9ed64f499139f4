"""The contract between the container store and the runtime.

`containers/` turns a Docker create request plus the image config into a
`ContainerSpec`; `runtime/` only knows how to make a process from one. Keeping
the spec a plain, JSON-serialisable value lets the shim (a separate process
that outlives the daemon) read it from disk, and lets unit tests build one
without any kernel feature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Mount:
    """One mount inside the container, applied after the rootfs is in place.

    kind: "bind" (source is a host path), "tmpfs" (source ignored),
    "volume" (source is the volume's host directory, bound like "bind").
    """

    target: str
    kind: str = "bind"
    source: str = ""
    readonly: bool = False
    options: list[str] = field(default_factory=list)  # e.g. ["size=64m", "mode=1777"]


@dataclass
class PublishedPort:
    """A host socket the shim listens on and proxies to the container.

    host_port 0 means "any free port": the shim binds it and records the port
    it got, so the engine can report it (`docker port`, inspect, events).
    """

    proto: str  # "tcp" | "udp"
    host_ip: str  # "127.0.0.1", "0.0.0.0", "::"
    host_port: int
    container_ip: str
    container_port: int
    host_port_end: int = 0  # > host_port: bind the first free port of host_port..host_port_end


@dataclass
class Resources:
    memory: int = 0  # bytes, 0 = unlimited
    memory_swap: int = 0  # bytes, 0 = same as memory, -1 = unlimited
    nano_cpus: int = 0  # 1e9 = one CPU
    cpu_shares: int = 0
    pids_limit: int = 0  # 0 or -1 = unlimited
    all_devices: bool = False  # --privileged: no device allow-list


@dataclass
class ContainerSpec:
    id: str
    # Overlay layers, top-most first, as overlayfs `lowerdir` wants them.
    lowerdirs: list[str]
    upperdir: str
    workdir: str  # overlay's workdir, not the process cwd
    rootfs: str  # where the overlay is mounted on the host
    args: list[str]  # entrypoint + cmd, already resolved; args[0] searched in PATH
    env: list[str]  # "K=V"
    cwd: str = "/"
    user: str = ""  # "", "name", "uid", "uid:gid", "name:group"; resolved in the rootfs
    hostname: str = ""
    domainname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    mounts: list[Mount] = field(default_factory=list)
    network_mode: str = "none"  # "none" (own netns, lo only), "host"
    # Join this prepared network namespace (bridge networks, container:<id>)
    # instead of making an empty one; "" = network_mode decides.
    netns_path: str = ""
    ports: list[PublishedPort] = field(default_factory=list)
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    readonly_rootfs: bool = False
    init: bool = False  # run the reaper as PID 1
    shm_size: int = 64 * 1024 * 1024
    resources: Resources = field(default_factory=Resources)
    # Files the engine prepared; bind-mounted over /etc/<name> in the rootfs.
    hosts_path: str = ""
    hostname_path: str = ""
    resolv_conf_path: str = ""
    log_path: str = ""  # json-file log
    log_max_size: int = 0  # bytes, 0 = unlimited
    log_max_file: int = 1
    stop_signal: str = "SIGTERM"
    cgroup_parent: str = "dockyard"  # cgroup is <parent>/<id> under every controller
    sysctls: dict[str, str] = field(default_factory=dict)
    ulimits: list[dict[str, Any]] = field(default_factory=list)  # Docker's {"Name","Soft","Hard"}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerSpec:
        data = dict(data)
        data["mounts"] = [Mount(**m) for m in data.get("mounts", [])]
        data["resources"] = Resources(**data.get("resources", {}))
        data["ports"] = [PublishedPort(**p) for p in data.get("ports", [])]
        return cls(**data)


@dataclass
class ExecSpec:
    args: list[str]
    env: list[str] = field(default_factory=list)  # added to the container's env
    cwd: str = ""  # "" = the container's cwd
    user: str = ""  # "" = the container's user
    tty: bool = False
    open_stdin: bool = False
    privileged: bool = False
    # Seconds after which the helper itself kills the command's process group; 0: never.
    # A bound the daemon sets must hold even when the daemon is gone (killed, upgraded).
    deadline: float = 0.0


@dataclass
class ExitStatus:
    """What the shim records when the container's init ends."""

    exit_code: int
    oom_killed: bool = False
    error: str = ""
    finished_at: str = ""  # RFC 3339 with nanoseconds, as Docker prints
