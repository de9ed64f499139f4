"""`dockyard machine ...`: create, start, stop, restart, status, ssh, logs, rm, ports, set.

The machine named `default` is used when no name is given. `start` creates the machine
first when it does not exist yet, with the create options given to it, so the first run
is one command. After a start, the docker context `dockyard` points at the machine's
engine; we never switch the user's current context (see machine/dockercontext.py).

Start prints each stage as it begins and ends, with its time, so a slow or stuck boot
shows where it is; a failure prints the stage, the reason, the hint and the log tail.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from machine import (
    backends,
    bootstate,
    config,
    disk,
    dockercontext,
    filenames,
    paths,
    portforward,
    shares,
)
from machine.backend import Backend, Stage, StageFailed, StageStatus
from machine.errors import ConfigError, MachineError
from machine.sync.status import sync_status

DEFAULT_NAME = "default"
CREATE_OPTIONS = ("backend", "cpus", "memory", "disk", "ssh_port", "engine_args", "image")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("machine", help="manage the machine the engine runs in")
    verbs = p.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    v = verbs.add_parser("create", help="create a machine (does not start it)")
    _name(v)
    _create_options(v)

    v = verbs.add_parser("start", help="start a machine (creating it first if needed)")
    _name(v)
    _create_options(v)
    _fresh_option(v)

    v = verbs.add_parser("stop", help="stop a machine (its containers stop with it)")
    _name(v)
    v.add_argument("-t", "--timeout", type=float, default=30.0, help="seconds before forcing")

    v = verbs.add_parser("restart", help="stop, then start a machine")
    _name(v)
    v.add_argument("-t", "--timeout", type=float, default=30.0, help="seconds before forcing")
    _fresh_option(v)

    v = verbs.add_parser("status", help="state, resources and the last start's stages")
    _name(v)
    v.add_argument("--json", action="store_true", help="print one JSON object")

    v = verbs.add_parser(
        "ssh",
        help="a shell in the machine, or run a command there",
        usage="dockyard machine ssh [NAME] [-- COMMAND...]",
    )
    # One REMAINDER for both: argparse would hand the word after `--` to an optional NAME.
    v.add_argument("words", nargs=argparse.REMAINDER, help="[NAME] [-- COMMAND...]")

    v = verbs.add_parser("logs", help="the machine's console (VM) or engine (native) log")
    _name(v)
    v.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")

    v = verbs.add_parser("rm", help="stop a machine and delete its data (disk, images)")
    _name(v)

    verbs.add_parser("ls", help="list machines")

    v = verbs.add_parser("ports", help="the forwards of published ports, with state and reason")
    _name(v)
    v.add_argument("--json", action="store_true", help="print a JSON list")

    v = verbs.add_parser("set", help="change a setting of a machine, also while it runs")
    _name(v)
    _publish_option(v)

    _share_parsers(verbs)

    v = verbs.add_parser("sync", help="the machine's sync shares (machine/sync)")
    v.add_argument("action", choices=["status"], help="status: pending changes per direction")
    _name(v)
    p.set_defaults(run=run)


def _share_parsers(verbs: Any) -> None:
    v = verbs.add_parser("share", help="the machine's shared folders (next start)")
    actions = v.add_subparsers(dest="share_verb", metavar="ACTION", required=True)
    a = actions.add_parser("add", help="share a host folder with the machine")
    a.add_argument("host_path", help="the host folder")
    a.add_argument("--guest-path", default="", help="where the guest sees it (default: same)")
    a.add_argument("--mode", choices=config.SHARE_MODES, default="virtiofs", help="how")
    a.add_argument("--readonly", action="store_true", help="the guest cannot write it")
    a.add_argument("--ignore", action="append", default=[], metavar="PATTERN", help="sync only")
    r = actions.add_parser("rm", help="stop sharing a folder")
    r.add_argument("ref", help="the share's tag, host path or guest path")
    ls = actions.add_parser("ls", help="list the shared folders")
    for p in (a, r, ls):
        p.add_argument("-m", "--machine", dest="name", default=DEFAULT_NAME, help="machine name")


def _share(host: paths.Host, cfg: config.MachineConfig, args: argparse.Namespace) -> int:
    if args.share_verb == "add":
        cfg = shares.add(
            cfg, args.host_path, args.guest_path, args.mode, args.readonly, args.ignore
        )
    elif args.share_verb == "rm":
        cfg = shares.remove(cfg, args.ref)
    if args.share_verb != "ls":
        config.save(host, cfg)
        print(f"machine {cfg.name}: shares saved; they take effect at its next start")
    print(f"{'TAG':<10} {'MODE':<9} {'HOST PATH':<32} {'GUEST PATH':<32} OPTIONS")
    for tag, host_path, guest_path, mode, options in shares.rows(cfg):
        print(f"{tag:<10} {mode:<9} {host_path:<32} {guest_path:<32} {options}")
    return 0


def _name(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", default=DEFAULT_NAME, help="machine name (default: default)")


def _publish_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--publish-all-interfaces",
        action=argparse.BooleanOptionalAction,
        help="a port published without an address (-p 8080:80) listens on every host "
        "interface, reachable from the network; --no-publish-all-interfaces: on 127.0.0.1 "
        "only (the default)",
    )


def _fresh_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fresh",
        action="store_true",
        help="boot the guest from power-on instead of its saved boot state (a new one is saved)",
    )


def _create_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=config.BACKENDS, help="how to run it (default: qemu)")
    p.add_argument("--cpus", type=int, help="virtual CPUs (default: half the host's)")
    p.add_argument("--memory", help="RAM, e.g. 2GiB or 2048 (MiB) (default: 25%% of RAM, <=4GiB)")
    p.add_argument("--disk", help="data disk size, e.g. 20GiB (default: 20GiB)")
    p.add_argument("--ssh-port", type=int, help="host loopback port for SSH (default: a free one)")
    p.add_argument("--recipe", choices=config.RECIPES, help="guest image recipe (default: debian)")
    p.add_argument(
        "--image",
        metavar="DIR",
        help="guest image directory, built by `python -m vmimage build` (default: the build "
        "of --recipe under .cache/vmimage)",
    )
    p.add_argument(
        "--engine-arg",
        action="append",
        dest="engine_args",
        metavar="ARG",
        help="argument for the engine (repeatable), e.g. --engine-arg=--insecure-registry=H:P",
    )
    _publish_option(p)


def run(args: argparse.Namespace, _client_host: str | None) -> int:
    host = paths.Host.current()
    verb = args.verb
    if verb == "ssh":
        args.name, args.command = ssh_words(args.words)
    if verb == "ls":
        return _ls(host)
    if verb == "create":
        return _create(host, args)
    if verb == "start":
        return _start(host, args)
    cfg = config.load(host, args.name)
    backend = _backend(host, cfg)
    if verb == "stop":
        backend.stop(args.timeout)
        print(f"machine {cfg.name} stopped")
        return 0
    if verb == "restart":
        backend.stop(args.timeout)
        return _boot(host, cfg, backend, args.fresh)
    if verb == "status":
        return _status(cfg, backend, args.json)
    if verb == "ssh":
        return backend.ssh(args.command)
    if verb == "logs":
        return _logs(backend, args.follow)
    if verb == "rm":
        return _rm(host, cfg, backend)
    if verb == "share":
        return _share(host, cfg, args)
    if verb == "ports":
        return _ports(cfg, backend, args.json)
    if verb == "set":
        return _set(host, cfg, args)
    if verb == "sync":
        print(sync_status(paths.local(paths.machine_dir(host, cfg.name))))
        return 0
    raise ConfigError(f"unknown machine command {verb!r}")


def ssh_words(words: list[str]) -> tuple[str, list[str]]:
    """(machine name, command) from `[NAME] [-- COMMAND...]`; `NAME COMMAND...` works too."""
    if words[:1] == ["--"]:
        return DEFAULT_NAME, words[1:]
    name, rest = (words[0], words[1:]) if words else (DEFAULT_NAME, [])
    return name, rest[1:] if rest[:1] == ["--"] else rest


def _backend(host: paths.Host, cfg: config.MachineConfig) -> Backend:
    return backends.open_backend(cfg.backend, config.to_spec(host, cfg))


def _given(args: argparse.Namespace) -> dict[str, Any]:
    given = {k: getattr(args, k) for k in CREATE_OPTIONS if getattr(args, k, None) is not None}
    if args.recipe is not None or args.image is not None:
        path = str(Path(args.image).resolve()) if args.image else ""
        given["image"] = config.Image(args.recipe or "debian", "", path)
    if args.publish_all_interfaces is not None:
        given["ports"] = config.Ports(allow_all_interfaces=args.publish_all_interfaces)
    return given


def _create(host: paths.Host, args: argparse.Namespace) -> int:
    if args.name in config.names(host):
        raise ConfigError(
            f"machine {args.name!r} already exists",
            f"start it with `dockyard machine start {args.name}`, or remove it first",
        )
    cfg = _new_machine(host, args)
    print(f"machine {cfg.name} created ({_summary(cfg)})")
    return 0


def _new_machine(host: paths.Host, args: argparse.Namespace) -> config.MachineConfig:
    reason = paths.socket_too_long(host, args.name)
    if reason:
        raise ConfigError(reason, "use a shorter machine name, or set DOCKYARD_HOME shorter")
    cfg = config.new(args.name, taken_ports=config.taken_ports(host), **_given(args))
    _backend(host, cfg).create()
    config.save(host, cfg)
    return cfg


def _start(host: paths.Host, args: argparse.Namespace) -> int:
    if args.name not in config.names(host):
        cfg = _new_machine(host, args)
        print(f"machine {cfg.name} created ({_summary(cfg)})")
    else:
        cfg = config.load(host, args.name)
        _refuse_changes(cfg, _given(args))
    return _boot(host, cfg, _backend(host, cfg), args.fresh)


def _refuse_changes(cfg: config.MachineConfig, given: dict[str, Any]) -> None:
    """Create options on an existing machine must match it: they are fixed at create
    (the ports setting is not, but `set` changes it, so `start` never does silently)."""
    ports = given.get("ports")
    if ports is not None and ports != cfg.ports:
        flag = (
            "--publish-all-interfaces"
            if ports.allow_all_interfaces
            else "--no-publish-all-interfaces"
        )
        raise ConfigError(
            f"machine {cfg.name!r} exists with ports.allow_all_interfaces: "
            f"{str(cfg.ports.allow_all_interfaces).lower()}",
            f"change it with `dockyard machine set {cfg.name} {flag}`, then start it",
        )
    current = {
        "backend": cfg.backend,
        "cpus": cfg.cpus,
        "memory": cfg.memory_mib,
        "disk": cfg.disk_gib,
        "ssh_port": cfg.ssh_port,
        "engine_args": cfg.engine_args,
        "image": cfg.image,
        "ports": cfg.ports,
    }
    wanted = dict(given)
    if "memory" in wanted:
        wanted["memory"] = config.memory_mib(wanted["memory"])
    if "disk" in wanted:
        wanted["disk"] = config.disk_gib(wanted["disk"])
    if "image" in wanted:
        wanted["image"] = config.Image(
            wanted["image"].recipe, cfg.image.arch, wanted["image"].path or cfg.image.path
        )
    changed = sorted(k for k, v in wanted.items() if current[k] != v)
    if changed:
        raise ConfigError(
            f"machine {cfg.name!r} exists with other {', '.join(changed)} ({_summary(cfg)})",
            f"start it without those options, or `dockyard machine rm {cfg.name}` and create "
            "it again",
        )


def _boot(
    host: paths.Host, cfg: config.MachineConfig, backend: Backend, fresh: bool = False
) -> int:
    if fresh:
        bootstate.discard(backend.spec.directory)
    print(f"starting machine {cfg.name} ({_summary(cfg)})", flush=True)
    try:
        stages = backend.start(_print_stage)
    except StageFailed as e:
        if e.log_tail:
            print(f"--- last lines of the log ---\n{e.log_tail}\n---", file=sys.stderr)
        raise
    total = sum(s.duration or 0.0 for s in stages)
    endpoint = _endpoint(host, backend)
    dockercontext.write(endpoint, f"Dockyard machine {cfg.name} ({cfg.backend})")
    print(f"machine {cfg.name} is running ({total:.2f}s)")
    print(f"engine: {endpoint}")
    print("docker context 'dockyard' points at it: `docker context use dockyard`")
    return 0


def _endpoint(host: paths.Host, backend: Backend) -> str:
    """DOCKER_HOST form of the machine's engine: its socket, or on Windows its named pipe
    (machine/paths.py says why)."""
    if host.windows:
        return paths.engine_endpoint(host, backend.spec.name)
    return f"unix://{backend.socket_path()}"


def _print_stage(stage: Stage) -> None:
    if stage.status == StageStatus.RUNNING:
        print(f"  [{stage.started:7.2f}s] {stage.name} ...", flush=True)
        return
    took = f"{stage.duration:.2f}s" if stage.duration is not None else ""
    detail = f"  {stage.detail}" if stage.detail else ""
    print(f"  [{stage.started:7.2f}s] {stage.name} {stage.status} {took}{detail}", flush=True)


def _summary(cfg: config.MachineConfig) -> str:
    if cfg.backend == "native":
        return "backend native: the engine runs on this host"
    return (
        f"backend {cfg.backend}, {cfg.cpus} CPUs, {config.format_mib(cfg.memory_mib)} memory, "
        f"{cfg.disk_gib}GiB disk"
    )


def _status(cfg: config.MachineConfig, backend: Backend, as_json: bool) -> int:
    st = backend.status()
    stages = _last_stages(backend)
    doc = {
        "name": cfg.name,
        "backend": cfg.backend,
        "state": str(st.state),
        "pid": st.pid,
        "socket": str(st.socket),
        "accel": st.accel,
        "detail": st.detail,
        "cpus": cfg.cpus,
        "memory": config.format_mib(cfg.memory_mib),
        "disk": f"{cfg.disk_gib}GiB",
        "ssh_port": cfg.ssh_port,
        "stages": stages,
        "saved_boot": _saved_boot_line(backend.spec.directory),
    }
    usage = disk.usage(backend.spec.directory / filenames.DATA_DISK)
    if usage is not None:
        doc["disk_file_bytes"] = usage.file_bytes
        doc["disk_guest_used_bytes"] = usage.guest_used_bytes
        doc["disk_reclaimable_bytes"] = usage.reclaimable_bytes
    if as_json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"machine {cfg.name}: {st.state}" + (f" (pid {st.pid})" if st.pid else ""))
    print(f"  {_summary(cfg)}")
    print(f"  engine: unix://{st.socket}")
    for line in (st.accel and f"accelerator: {st.accel}", st.detail):
        if line:
            print(f"  {line}")
    if usage is not None:
        print(f"  data disk: {_disk_line(usage)}")
    saved = _saved_boot_line(backend.spec.directory)
    if saved:
        print(f"  saved boot: {saved}")
    if stages:
        print("  last start:")
        for s in stages:
            took = f"{s['duration']:.2f}s" if isinstance(s.get("duration"), float | int) else ""
            print(f"    {s.get('name', '?'):<10} {s.get('status', '')} {took}")
    return 0


def _saved_boot_line(directory: Path) -> str:
    """What the next start boots from (bootstate.py); "" for a machine that has none."""
    meta = bootstate.read_meta(directory)
    if meta is None:
        return ""
    if meta.saved:
        return f"{meta.size / 2**20:.0f} MiB, used when the seed and VM are unchanged"
    return f"none, every start boots afresh: {meta.reason}"


def _set(host: paths.Host, cfg: config.MachineConfig, args: argparse.Namespace) -> int:
    """Save the settings given; the running forwarder follows machine.yaml by itself
    (machine/portforward.py), so a running machine needs no restart."""
    if args.publish_all_interfaces is None:
        raise ConfigError(
            "nothing to set", "give --publish-all-interfaces or --no-publish-all-interfaces"
        )
    cfg.ports = config.Ports(allow_all_interfaces=args.publish_all_interfaces)
    config.save(host, cfg)
    print(f"machine {cfg.name}: {_listen_line(cfg)}")
    if cfg.backend == "native":
        print("  (native: the engine publishes on this host itself; the setting applies to VMs)")
    return 0


def _listen_line(cfg: config.MachineConfig) -> str:
    if cfg.ports.allow_all_interfaces:
        return (
            "ports published without an address listen on every host interface "
            f"(`dockyard machine set {cfg.name} --no-publish-all-interfaces`: loopback only)"
        )
    return (
        "published ports listen on 127.0.0.1 only "
        f"(`dockyard machine set {cfg.name} --publish-all-interfaces` opens them to the network)"
    )


def _ports(cfg: config.MachineConfig, backend: Backend, as_json: bool) -> int:
    """The port forwarder's forwards (machine/portforward.py writes them as it goes)."""
    states = [s.as_dict() for s in portforward.read_state(backend.spec.directory)]
    if as_json:
        print(json.dumps(states, indent=2))
        return 0
    if cfg.backend == "native":
        print(f"machine {cfg.name} is native: published ports listen on this host directly")
        return 0
    if not states:
        print(f"machine {cfg.name}: no published ports are forwarded")
        print(_listen_line(cfg))
        return 0
    print(f"{'CONTAINER':<20} {'PROTO':<6} {'HOST ADDRESS':<22} {'GUEST PORT':<11} STATE")
    for st in states:
        where = f"{st['host_ip']}:{st['host_port']}"
        name, proto, guest = st["container"], st["proto"], st["guest_port"]
        print(f"{name:<20} {proto:<6} {where:<22} {guest:<11} {st['state']}")
        if st["reason"]:
            print(f"  reason: {st['reason']}")
    print(_listen_line(cfg))
    return 0


def _disk_line(usage: disk.DiskUsage) -> str:
    """The data disk's size on the host and what a stop (fstrim, compaction) would give back."""
    line = f"{_gib(usage.file_bytes)} on the host"
    if usage.guest_used_bytes < 0:
        return line + " (the guest's use is measured at the next stop)"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(usage.measured_at))
    return (
        f"{line}, {_gib(usage.guest_used_bytes)} used in the guest (at {when}), "
        f"{_gib(usage.reclaimable_bytes)} reclaimable (the next stop compacts it)"
    )


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f}GiB"


def _last_stages(backend: Backend) -> list[dict[str, Any]]:
    """The stages the backend recorded for its last start ([] if none were)."""
    path = backend.spec.directory / filenames.STAGES
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    items = doc.get("stages", []) if isinstance(doc, dict) else doc
    return [s for s in items if isinstance(s, dict)] if isinstance(items, list) else []


def _logs(backend: Backend, follow: bool) -> int:
    text = backend.logs()
    sys.stdout.write(text)
    sys.stdout.flush()
    while follow:
        time.sleep(0.5)
        now = backend.logs()
        if len(now) < len(text):  # a new run started the log again
            text = ""
        sys.stdout.write(now[len(text) :])
        sys.stdout.flush()
        text = now
    return 0


def _rm(host: paths.Host, cfg: config.MachineConfig, backend: Backend) -> int:
    backend.remove()
    removed = dockercontext.remove(only_endpoint=_endpoint(host, backend))
    note = " and its docker context" if removed else ""
    print(f"machine {cfg.name} removed{note}")
    return 0


def _ls(host: paths.Host) -> int:
    rows = []
    for name in config.names(host):
        try:
            cfg = config.load(host, name)
            state = str(_backend(host, cfg).status().state)
            rows.append((name, cfg.backend, state, _summary(cfg)))
        except MachineError as e:
            rows.append((name, "?", "broken", e.message))
    print(f"{'NAME':<16} {'BACKEND':<8} {'STATE':<12} RESOURCES")
    for name, backend, state, summary in rows:
        print(f"{name:<16} {backend:<8} {state:<12} {summary}")
    return 0
