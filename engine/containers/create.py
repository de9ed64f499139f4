"""`POST /containers/create`: a Docker create request plus an image become a Container.

Docker's rules for merging the request with the image config are subtle and
clients depend on them (an overridden entrypoint drops the image's CMD, env
overrides by key, hostname defaults to the short id), so they live here in
small pure functions with unit tests; the few effects (volumes, directories,
host files) come last in `build`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.containers import copyup, health, netconfig, ports
from engine.containers.hostfiles import write_host_files
from engine.containers.model import Container
from engine.containers.mounts import MountPlan, plan_mounts
from engine.errors import EngineError, InvalidParameter
from engine.runtime.spec import ContainerSpec, Mount, Resources
from engine.timefmt import now_rfc3339
from engine.volumes import ANONYMOUS_LABEL, VolumeStore

RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Docker's human sizes: "10m", "1g", "512k", "100" (bytes)."""
    found = _SIZE_RE.match(text.strip())
    if not found:
        raise InvalidParameter(f"invalid size: {text!r}")
    number, unit = float(found.group(1)), found.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


def resolve_args(config: dict[str, Any], image_config: dict[str, Any]) -> list[str]:
    entrypoint = config.get("Entrypoint")
    cmd = config.get("Cmd")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    if isinstance(cmd, str):
        cmd = ["/bin/sh", "-c", cmd]
    if entrypoint is not None:
        # An entrypoint given on create drops the image's CMD, as Docker does.
        args = [a for a in entrypoint if a != ""] if entrypoint != [""] else []
        args += list(cmd or [])
    else:
        args = list(image_config.get("Entrypoint") or [])
        args += list(cmd if cmd else image_config.get("Cmd") or [])
    if not args:
        raise InvalidParameter("no command specified")
    return [str(a) for a in args]


def merge_env(image_env: list[str], env: list[str]) -> list[str]:
    merged: dict[str, str] = {}
    for item in [*image_env, *env]:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidParameter(f"invalid environment variable: {item!r}")
        merged[key] = f"{key}={value}" if sep else merged.get(key, "")
    return [v for v in merged.values() if v]


def network_mode(host_config: dict[str, Any]) -> str:
    """The runtime's mode; which networks it names is checked by netconfig (manager.create)."""
    return netconfig.runtime_mode(host_config)


def check_restart(host_config: dict[str, Any]) -> None:
    policy = host_config.get("RestartPolicy") or {}
    name = str(policy.get("Name") or "")
    if name not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy '{name}'")
    retries = int(policy.get("MaximumRetryCount") or 0)
    if retries < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    if retries and name != "on-failure":
        raise InvalidParameter(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )
    if host_config.get("AutoRemove") and name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")


def resources(host_config: dict[str, Any]) -> Resources:
    nano = int(host_config.get("NanoCpus") or 0)
    quota, period = int(host_config.get("CpuQuota") or 0), int(host_config.get("CpuPeriod") or 0)
    if nano and quota:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if not nano and quota > 0:
        nano = quota * 1_000_000_000 // (period or 100_000)
    memory = int(host_config.get("Memory") or 0)
    if 0 < memory < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory < 0 or nano < 0:
        raise InvalidParameter("memory and CPU limits must not be negative")
    pids = host_config.get("PidsLimit")
    return Resources(
        memory=memory,
        memory_swap=int(host_config.get("MemorySwap") or 0),
        nano_cpus=nano,
        cpu_shares=int(host_config.get("CpuShares") or 0),
        pids_limit=int(pids) if pids else 0,
        all_devices=bool(host_config.get("Privileged")),
    )


def log_options(host_config: dict[str, Any]) -> tuple[int, int]:
    log_config = host_config.get("LogConfig") or {}
    kind = log_config.get("Type") or "json-file"
    if kind not in ("json-file", "local"):
        raise InvalidParameter(f"logging driver {kind!r} is not supported: use json-file")
    opts = log_config.get("Config") or {}
    max_size = parse_size(opts["max-size"]) if opts.get("max-size") else 0
    try:
        max_file = int(opts.get("max-file") or 1)
    except ValueError:
        raise InvalidParameter("max-file must be a number") from None
    if max_file < 1:
        raise InvalidParameter("max-file cannot be less than 1")
    return max_size, max_file


@dataclass
class CreatePaths:
    container_dir: Path
    layer_dirs: list[str]
    empty_layer: Path  # used when an image has no layers; overlay needs one lowerdir


def normalise_host_config(hc: dict[str, Any]) -> dict[str, Any]:
    hc = dict(hc)
    hc.setdefault("NetworkMode", "default")
    hc["LogConfig"] = {"Type": "json-file", "Config": {}, **(hc.get("LogConfig") or {})}
    hc["LogConfig"]["Type"] = hc["LogConfig"].get("Type") or "json-file"
    hc.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    if not hc["RestartPolicy"].get("Name"):
        hc["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
    for key in (
        "Binds",
        "CapAdd",
        "CapDrop",
        "Dns",
        "DnsSearch",
        "DnsOptions",
        "ExtraHosts",
        "Mounts",
        "SecurityOpt",
    ):
        hc.setdefault(key, None)
    for key in (
        "Memory",
        "MemorySwap",
        "NanoCpus",
        "CpuShares",
        "CpuQuota",
        "CpuPeriod",
        "ShmSize",
    ):
        hc[key] = int(hc.get(key) or 0)
    hc.setdefault("PidsLimit", None)
    hc.setdefault("Privileged", False)
    hc.setdefault("AutoRemove", False)
    hc.setdefault("ReadonlyRootfs", False)
    hc.setdefault("PortBindings", {})
    return hc


def merged_config(
    body: dict[str, Any], image_config: dict[str, Any], cid: str, args: list[str]
) -> dict[str, Any]:
    cfg = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    cfg["Hostname"] = body.get("Hostname") or cid[:12]
    cfg["Env"] = merge_env(list(image_config.get("Env") or []), list(body.get("Env") or []))
    cfg["WorkingDir"] = body.get("WorkingDir") or image_config.get("WorkingDir") or ""
    cfg["User"] = body.get("User") or image_config.get("User") or ""
    cfg["Entrypoint"] = (
        body.get("Entrypoint")
        if body.get("Entrypoint") is not None
        else image_config.get("Entrypoint")
    )
    cfg["Cmd"] = body.get("Cmd") or (
        image_config.get("Cmd") if body.get("Entrypoint") is None else None
    )
    cfg["Labels"] = {**(image_config.get("Labels") or {}), **(body.get("Labels") or {})}
    cfg["StopSignal"] = body.get("StopSignal") or image_config.get("StopSignal") or "SIGTERM"
    cfg["ExposedPorts"] = {
        **(image_config.get("ExposedPorts") or {}),
        **(body.get("ExposedPorts") or {}),
    }
    cfg["Volumes"] = {**(image_config.get("Volumes") or {}), **(body.get("Volumes") or {})} or None
    for key in ("Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr"):
        cfg[key] = bool(body.get(key, False))
    cfg.setdefault("Domainname", "")
    healthcheck = health.merge(body.get("Healthcheck"), image_config.get("Healthcheck"))
    if healthcheck is None:
        cfg.pop("Healthcheck", None)
    else:
        cfg["Healthcheck"] = healthcheck
    if cfg["WorkingDir"] and not str(cfg["WorkingDir"]).startswith("/"):
        raise InvalidParameter(
            f"the working directory '{cfg['WorkingDir']}' is invalid, "
            "it needs to be an absolute path"
        )
    return cfg


def _materialise(
    plan: MountPlan, volumes: VolumeStore, layer_dirs: list[str]
) -> tuple[Mount, dict[str, Any]]:
    """Create what a planned mount needs and describe it for inspect."""
    if plan.kind == "tmpfs":
        return (
            Mount(plan.target, "tmpfs", "", plan.readonly, plan.options),
            {
                "Type": "tmpfs",
                "Source": "",
                "Destination": plan.target,
                "Mode": "",
                "RW": not plan.readonly,
                "Propagation": "",
            },
        )
    if plan.kind == "bind":
        src = Path(plan.source)
        if not src.exists():
            if not plan.create_source:
                raise InvalidParameter(
                    f'invalid mount config for type "bind": bind source path does not exist: {src}'
                )
            src.mkdir(parents=True, exist_ok=True)
        return (
            Mount(plan.target, "bind", str(src), plan.readonly),
            {
                "Type": "bind",
                "Source": str(src),
                "Destination": plan.target,
                "Mode": plan.mode,
                "RW": not plan.readonly,
                "Propagation": "rprivate",
            },
        )
    view = volumes.create(plan.source, anonymous=not plan.source)
    data = Path(view["Mountpoint"])
    if plan.copy and copyup.is_empty(data):
        # As Docker: an empty volume starts with what the image has at its mount point.
        try:
            copyup.populate(data, layer_dirs, plan.target)
        except BaseException:
            copyup.clear(data)  # empty again, so the next container copies afresh
            if not plan.source:
                volumes.remove(view["Name"], lambda _name: [])
            raise
    return (
        Mount(plan.target, "volume", view["Mountpoint"], plan.readonly),
        {
            "Type": "volume",
            "Name": view["Name"],
            "Source": view["Mountpoint"],
            "Destination": plan.target,
            "Driver": "local",
            "Mode": plan.mode or "z",
            "RW": not plan.readonly,
            "Propagation": "",
        },
    )


def _undo(cdir: Path, made: list[tuple[Mount, dict[str, Any]]], volumes: VolumeStore) -> None:
    """A create that failed half-way leaves no directory and no anonymous volume behind."""
    shutil.rmtree(cdir, ignore_errors=True)
    for _, described in made:
        name = described.get("Name")
        if name and len(name) == 64:
            with contextlib.suppress(EngineError):
                labels = volumes.inspect(name)["Labels"]
                if ANONYMOUS_LABEL in labels:
                    volumes.remove(name, lambda _name: [])


def build(
    body: dict[str, Any],
    name: str,
    image_id: str,
    image_config: dict[str, Any],
    paths: CreatePaths,
    volumes: VolumeStore,
    cgroup_parent: str,
) -> Container:
    if not isinstance(body.get("HostConfig") or {}, dict):
        raise InvalidParameter("HostConfig must be a JSON object")
    hc = normalise_host_config(body.get("HostConfig") or {})
    health.validate(body.get("Healthcheck"))
    cid = secrets.token_hex(32)
    args = resolve_args(body, image_config)
    config = merged_config(body, image_config, cid, args)
    ports.validate(config, hc)
    check_restart(hc)
    net = network_mode(hc)
    res = resources(hc)
    max_size, max_file = log_options(hc)
    plans = plan_mounts(hc, body, image_config)
    cdir = paths.container_dir / cid
    cdir.mkdir(parents=True, exist_ok=True)
    made: list[tuple[Mount, dict[str, Any]]] = []
    try:
        for plan in plans:
            made.append(_materialise(plan, volumes, paths.layer_dirs))
    except BaseException:
        _undo(cdir, made, volumes)
        raise
    files = write_host_files(cdir, config["Hostname"], hc, net == "host")
    for sub in ("upper", "work", "rootfs"):
        (cdir / sub).mkdir(exist_ok=True)
    spec = ContainerSpec(
        id=cid,
        lowerdirs=paths.layer_dirs or [str(paths.empty_layer)],
        upperdir=str(cdir / "upper"),
        workdir=str(cdir / "work"),
        rootfs=str(cdir / "rootfs"),
        args=args,
        env=config["Env"],
        cwd=config["WorkingDir"] or "/",
        user=config["User"],
        hostname=config["Hostname"],
        domainname=str(config.get("Domainname") or ""),
        tty=config["Tty"],
        open_stdin=config["OpenStdin"],
        stdin_once=config["StdinOnce"],
        mounts=[m for m, _ in made],
        network_mode=net,
        cap_add=list(hc.get("CapAdd") or []),
        cap_drop=list(hc.get("CapDrop") or []),
        privileged=bool(hc.get("Privileged")),
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
        init=bool(hc.get("Init")),
        shm_size=int(hc.get("ShmSize") or 64 * 1024 * 1024),
        resources=res,
        hosts_path=files["hosts"],
        hostname_path=files["hostname"],
        resolv_conf_path=files["resolv"],
        log_path=str(cdir / f"{cid}-json.log"),
        log_max_size=max_size,
        log_max_file=max_file,
        stop_signal=config["StopSignal"],
        cgroup_parent=cgroup_parent,
        sysctls=dict(hc.get("Sysctls") or {}),
        ulimits=list(hc.get("Ulimits") or []),
    )
    return Container(
        id=cid,
        name=name,
        created=now_rfc3339(),
        image_id=image_id,
        config=config,
        host_config=hc,
        spec=spec,
        mounts=[d for _, d in made],
    )
