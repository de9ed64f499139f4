"""The verbs over existing containers: down, stop, start, restart, ps, logs, pull.

They find containers by the project label, so they work after the file changed (and down,
ps and logs with only -p NAME and no file at all).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.compose import containers, logs, planner, resources, up
from app.compose.errors import ComposeError
from app.compose.model import Project, default_image
from app.compose.output import Printer
from app.engine_client import EngineClient, EngineError, NotFound


def down(
    client: EngineClient,
    name: str,
    project: Project | None,
    out: Printer,
    volumes: bool = False,
    remove_orphans: bool = False,
) -> int:
    found = containers.listed(client, name)
    known = set(project.services) if project else None
    keep = [c for c in found if known is not None and containers.service_of(c) not in known]
    if keep and not remove_orphans:
        names = ", ".join(containers.name_of(c) for c in keep)
        out.warn(
            f"Found orphan containers ([{names}]) for this project; "
            "use --remove-orphans to remove them too"
        )
    doomed = [c for c in found if remove_orphans or c not in keep]
    for group in containers.stop_groups(doomed):
        _together(group, lambda c: _stop_one(client, c, out))
    for c in doomed:
        cname = containers.name_of(c)
        out.progress("Container", cname, "Removing")
        with contextlib.suppress(NotFound):
            client.delete(f"/containers/{c['Id']}", {"v": volumes, "force": True})
        out.progress("Container", cname, "Removed")
    failed = 0
    if keep and not remove_orphans:
        return 0
    for net in resources.labelled(client, "networks", name):
        out.progress("Network", net["Name"], "Removing")
        why = resources.remove_quietly(client, f"/networks/{net['Id']}")
        failed += _report(out, "Network", net["Name"], why)
    if volumes:
        for vol in resources.labelled(client, "volumes", name):
            out.progress("Volume", vol["Name"], "Removing")
            why = resources.remove_quietly(client, f"/volumes/{vol['Name']}")
            failed += _report(out, "Volume", vol["Name"], why)
    return 1 if failed else 0


def _report(out: Printer, kind: str, name: str, why: str | None) -> int:
    if why:
        out.progress(kind, name, f"Error: {why}")
        return 1
    out.progress(kind, name, "Removed")
    return 0


def _ignore_missing(client: EngineClient, path: str) -> None:
    with contextlib.suppress(NotFound):
        client.post(path)


def _selected(
    client: EngineClient, name: str, project: Project | None, services: list[str]
) -> list[dict[str, Any]]:
    if project is not None and services:
        planner.order(project, services)  # unknown service names fail here
    found = containers.listed(client, name, services)
    if project is None:
        return found
    order = planner.order(project)
    return sorted(
        found,
        key=lambda c: (
            order.index(containers.service_of(c))
            if containers.service_of(c) in order
            else len(order)
        ),
    )


def stop(
    client: EngineClient, name: str, project: Project | None, services: list[str], out: Printer
) -> int:
    for group in containers.stop_groups(_selected(client, name, project, services)):
        _together(group, lambda c: _stop_one(client, c, out))
    return 0


def _stop_one(client: EngineClient, c: dict[str, Any], out: Printer) -> None:
    if c.get("State") not in ("running", "paused", "restarting"):
        return
    out.progress("Container", containers.name_of(c), "Stopping")
    _ignore_missing(client, f"/containers/{c['Id']}/stop")
    out.progress("Container", containers.name_of(c), "Stopped")


def _together(items: list[dict[str, Any]], action: Callable[[dict[str, Any]], None]) -> None:
    """Run the action on every item at once (stops wait out grace periods in parallel)."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(items), 16))) as pool:
        for future in [pool.submit(action, item) for item in items]:
            future.result()


def start(client: EngineClient, project: Project, services: list[str], out: Printer) -> int:
    """Start existing containers in dependency order (waiting on conditions); a service
    with no container is an error that points at `up`."""
    ordered = planner.order(project, services)
    found = containers.by_service(containers.listed(client, project.name, ordered))
    missing = [s for s in ordered if s not in found]
    if missing and not found:
        raise ComposeError(f"service {missing[0]!r} has no container to start: run up first")
    started: dict[str, up.Converged] = {}
    for svc in ordered:
        for c in found.get(svc, []):
            state = "running" if c.get("State") == "running" else "created"
            conv = up.Converged(svc, c["Id"], containers.name_of(c), state)
            up.wait_for_dependencies(client, project, svc, started, out)
            up.start(client, conv, out)
            started[svc] = conv
    return 0


def restart(
    client: EngineClient, name: str, project: Project | None, services: list[str], out: Printer
) -> int:
    for c in _selected(client, name, project, services):
        out.progress("Container", containers.name_of(c), "Restarting")
        client.post(f"/containers/{c['Id']}/restart")
        out.progress("Container", containers.name_of(c), "Started")
    return 0


def ps(
    client: EngineClient, name: str, services: list[str], all_: bool, quiet: bool, out: Printer
) -> int:
    found = containers.listed(client, name, services, all_=all_)
    if quiet:
        for c in found:
            out.line(c["Id"])
        return 0
    rows = [("NAME", "IMAGE", "COMMAND", "SERVICE", "STATUS", "PORTS")]
    for c in found:
        command = str(c.get("Command", ""))
        command = f'"{command[:20]}…"' if len(command) > 20 else f'"{command}"'
        rows.append(
            (
                containers.name_of(c),
                str(c.get("Image", "")),
                command,
                containers.service_of(c),
                str(c.get("Status", "")),
                _ports(c.get("Ports") or []),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.line("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _ports(ports: list[dict[str, Any]]) -> str:
    shown = []
    for p in ports:
        target = f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"
        if p.get("PublicPort"):
            shown.append(f"{p.get('IP') or '0.0.0.0'}:{p['PublicPort']}->{target}")
        else:
            shown.append(target)
    return ", ".join(dict.fromkeys(shown))


def show_logs(
    client: EngineClient,
    name: str,
    project: Project | None,
    services: list[str],
    out: Printer,
    follow: bool,
    tail: str,
    timestamps: bool,
) -> int:
    found = _selected(client, name, project, services)
    targets = [
        logs.Target(c["Id"], containers.name_of(c), _tty(client, c["Id"]), tail) for c in found
    ]
    try:
        logs.wait_all(logs.follow(client, targets, out, follow, timestamps))
    except KeyboardInterrupt:
        return 130
    return 0


def _tty(client: EngineClient, cid: str) -> bool:
    try:
        return bool(client.inspect_container(cid).get("Config", {}).get("Tty"))
    except EngineError:
        return False


def pull(client: EngineClient, project: Project, services: list[str], out: Printer) -> int:
    failed = 0
    for svc in planner.order(project, services) if services else list(project.services):
        image = str(project.services[svc]["image"])
        buildable = "build" in project.services[svc]
        if buildable and image == default_image(project.name, svc):
            out.progress("", svc, "Skipped - No image to be pulled")
            continue
        out.progress("", svc, "Pulling")
        try:
            for _ in client.pull(image):
                pass
        except EngineError as e:
            if buildable:  # compose v2: `up` builds it instead
                out.warn(f"{svc}: pulling {image} failed ({e}); it will be built")
                continue
            out.progress("", svc, f"Error {e}")
            failed += 1
            continue
        out.progress("", svc, "Pulled")
    return 1 if failed else 0
