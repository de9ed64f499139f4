"""`up`: networks and volumes, images, then each service's container created (or kept, or
recreated when its config hash changed) and started in dependency order, waiting for each
dependency's condition; without -d, the services' logs until they exit or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.compose import build, containers, labels, logs, planner, resources
from app.compose.errors import ComposeError
from app.compose.model import Project
from app.compose.output import Printer
from app.engine_client import EngineClient, EngineError, NotFound

POLL = 0.2


@dataclass
class Converged:
    service: str
    id: str
    name: str
    state: str  # "created" (start it) or "running" (leave it)


def up(
    client: EngineClient,
    project: Project,
    services: list[str],
    out: Printer,
    detach: bool = False,
    remove_orphans: bool = False,
    rebuild: bool = False,
) -> int:
    ordered = planner.order(project, services)
    handle_orphans(client, project, out, remove_orphans)
    # Images first, as compose v2: a failed build or pull leaves no network or volume.
    images = {svc: ensure_image(client, project, svc, out, rebuild) for svc in ordered}
    resources.ensure_networks(client, project, resources.used_networks(project, ordered), out)
    resources.ensure_volumes(client, project, resources.used_volumes(project, ordered), out)
    done = [converge(client, project, svc, images[svc], out) for svc in ordered]
    by_service = {c.service: c for c in done}
    for c in done:
        wait_for_dependencies(client, project, c.service, by_service, out)
        start(client, c, out)
    if detach:
        return 0
    return attach(client, [c for c in done if c.service in (services or ordered)], out)


def handle_orphans(client: EngineClient, project: Project, out: Printer, remove: bool) -> None:
    orphans = [
        c
        for c in containers.listed(client, project.name)
        if containers.service_of(c) not in project.services
    ]
    if not orphans:
        return
    if not remove:
        names = ", ".join(containers.name_of(c) for c in orphans)
        out.warn(
            f"Found orphan containers ([{names}]) for this project. If you removed or renamed "
            "this service in your compose file, you can run this command with the "
            "--remove-orphans flag to clean it up."
        )
        return
    for c in orphans:
        remove_container(client, c["Id"], containers.name_of(c), out, running=True)


def ensure_image(
    client: EngineClient, project: Project, service: str, out: Printer, rebuild: bool = False
) -> str:
    """The image's id, built (see build.must_build) or pulled when the engine lacks it."""
    image = str(project.services[service]["image"])
    if build.must_build(client, project, service, rebuild):
        return build.build_service(client, project, service, out)
    try:
        return str(client.get(f"/images/{image}/json")["Id"])
    except NotFound:
        pass
    out.progress("", service, "Pulling")
    try:
        for _ in client.pull(image):
            pass
    except EngineError as e:
        raise ComposeError(f"service {service!r}: pulling image {image} failed: {e}") from None
    out.progress("", service, "Pulled")
    return str(client.get(f"/images/{image}/json")["Id"])


def converge(
    client: EngineClient, project: Project, service: str, image_id: str, out: Printer
) -> Converged:
    """Keep the existing container when its config hash matches, else (re)create it."""
    name = planner.container_name(project, service)
    want = planner.config_hash(project.services[service])
    existing = containers.listed(client, project.name, [service])
    for c in existing[1:]:
        remove_container(client, c["Id"], containers.name_of(c), out, running=True)
    if existing:
        c = existing[0]
        same_image = (c.get("Labels") or {}).get(labels.IMAGE) in ("", image_id)
        if (c.get("Labels") or {}).get(labels.CONFIG_HASH) == want and same_image:
            state = "running" if c.get("State") == "running" else "created"
            if state == "running":
                out.progress("Container", containers.name_of(c), "Running")
            return Converged(service, c["Id"], containers.name_of(c), state)
        out.progress("Container", name, "Recreate")
        remove_container(client, c["Id"], containers.name_of(c), None, running=True)
        new_id = create(client, project, service, image_id)
        out.progress("Container", name, "Recreated")
        return Converged(service, new_id, name, "created")
    out.progress("Container", name, "Creating")
    new_id = create(client, project, service, image_id)
    out.progress("Container", name, "Created")
    return Converged(service, new_id, name, "created")


def create(client: EngineClient, project: Project, service: str, image_id: str) -> str:
    """Create the container on its primary network, then connect the other networks."""
    name = planner.container_name(project, service)
    body = planner.create_body(project, service, 1, image_id)
    try:
        reply = client.post("/containers/create", {"name": name}, body)
    except EngineError as e:
        raise ComposeError(f"service {service!r}: creating container {name} failed: {e}") from None
    cid = str(reply["Id"])
    for net, cfg in planner.service_networks(project, service)[1:]:
        endpoint = planner.endpoint_config(project, service, 1, cfg)
        client.post(f"/networks/{net}/connect", body={"Container": cid, "EndpointConfig": endpoint})
    return cid


def start(client: EngineClient, c: Converged, out: Printer) -> None:
    if c.state == "running":
        return
    out.progress("Container", c.name, "Starting")
    try:
        client.post(f"/containers/{c.id}/start")
    except EngineError as e:
        raise ComposeError(f"service {c.service!r}: starting {c.name} failed: {e}") from None
    out.progress("Container", c.name, "Started")


def wait_for_dependencies(
    client: EngineClient,
    project: Project,
    service: str,
    started: dict[str, Converged],
    out: Printer,
) -> None:
    for dep, cond in project.services[service].get("depends_on", {}).items():
        if dep not in started:
            continue
        condition = cond["condition"]
        if condition == "service_started":
            continue
        c = started[dep]
        out.progress("Container", c.name, "Waiting")
        if condition == "service_healthy":
            wait_healthy(client, c)
            out.progress("Container", c.name, "Healthy")
        else:
            wait_completed(client, c)
            out.progress("Container", c.name, "Exited")


def wait_healthy(client: EngineClient, c: Converged) -> None:
    while True:
        state = client.inspect_container(c.id)["State"]
        health = state.get("Health")
        if not health:
            raise ComposeError(
                f"dependency failed to start: container {c.name} has no healthcheck configured"
            )
        status = health.get("Status")
        if status == "healthy":
            return
        if status == "unhealthy":
            raise ComposeError(f"dependency failed to start: container {c.name} is unhealthy")
        if not state.get("Running") and state.get("Status") in ("exited", "dead"):
            raise ComposeError(
                f"dependency failed to start: container {c.name} exited "
                f"({state.get('ExitCode')}) before it became healthy"
            )
        time.sleep(POLL)


def wait_completed(client: EngineClient, c: Converged) -> None:
    while True:
        state = client.inspect_container(c.id)["State"]
        if state.get("Status") in ("exited", "dead"):
            code = state.get("ExitCode")
            if code != 0:
                raise ComposeError(
                    f"service {c.service!r} didn't complete successfully: exit {code}"
                )
            return
        time.sleep(POLL)


def remove_container(
    client: EngineClient, cid: str, name: str, out: Printer | None, running: bool
) -> None:
    if running:
        if out:
            out.progress("Container", name, "Stopping")
        try:
            client.post(f"/containers/{cid}/stop")
        except NotFound:
            return
        if out:
            out.progress("Container", name, "Stopped")
    if out:
        out.progress("Container", name, "Removing")
    with contextlib.suppress(NotFound):
        client.delete(f"/containers/{cid}", {"v": False, "force": True})
    if out:
        out.progress("Container", name, "Removed")


def attach(client: EngineClient, started: list[Converged], out: Printer) -> int:
    """Follow the services' logs until all exit (0) or Ctrl-C stops them (130)."""
    out.line("Attaching to " + ", ".join(c.name for c in started))
    lock = threading.Lock()

    def ended(target: logs.Target) -> None:
        try:
            code = client.inspect_container(target.id)["State"].get("ExitCode", 0)
        except EngineError:
            return
        with lock:
            out.line(f"{target.name} exited with code {code}")

    targets = [logs.Target(c.id, c.name, _is_tty(client, c.id)) for c in started]
    threads = logs.follow(client, targets, out, follow=True, on_end=ended)
    try:
        with _interrupt_on_signals():
            logs.wait_all(threads)
    except KeyboardInterrupt:
        out.line("Gracefully stopping... (press Ctrl+C again to force)")
        for c in reversed(started):
            out.progress("Container", c.name, "Stopping")
            with contextlib.suppress(EngineError):
                client.post(f"/containers/{c.id}/stop")
            out.progress("Container", c.name, "Stopped")
        return 130
    return 0


@contextlib.contextmanager
def _interrupt_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the services, even where the shell started us with SIGINT
    ignored (a background job); the previous handlers come back afterwards."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _is_tty(client: EngineClient, cid: str) -> bool:
    info: dict[str, Any] = client.inspect_container(cid)
    return bool((info.get("Config") or {}).get("Tty"))
