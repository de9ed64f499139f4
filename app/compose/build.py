"""`build`, `up --build` and `up` with a missing image: a service's `build:` through POST /build.

The context is packed here (app/buildcontext.py, .dockerignore applied as the
docker CLI applies it) and the engine's classic builder does the rest. Its
progress is printed with the service's name in front of each line, so the
`Step N/M` lines of several services stay readable; the first `error`
message ends the build with the step's own words.
"""

from __future__ import annotations

import json
from typing import Any

from app import buildcontext, registryauth
from app.compose.errors import ComposeError
from app.compose.model import Project
from app.compose.output import Printer
from app.engine_client import EngineClient, EngineError, NotFound


def buildable(project: Project, services: list[str]) -> list[str]:
    """Those of `services` (all when empty) that have a `build:` section, in file order."""
    for name in services:
        if name not in project.services:
            known = ", ".join(project.services)
            raise ComposeError(f"no such service: {name} (services: {known})")
    wanted = services or list(project.services)
    return [s for s in project.services if s in wanted and "build" in project.services[s]]


def build(
    client: EngineClient,
    project: Project,
    services: list[str],
    out: Printer,
    no_cache: bool = False,
    pull: bool = False,
) -> int:
    """`dockyard compose build`: build each buildable service; stops at the first failure."""
    for service in buildable(project, services):
        build_service(client, project, service, out, no_cache=no_cache, pull=pull)
    return 0


def must_build(client: EngineClient, project: Project, service: str, rebuild: bool) -> bool:
    """Whether `up` builds: --build, `pull_policy: build`, or the image is missing."""
    svc = project.services[service]
    if "build" not in svc:
        return False
    if rebuild or svc.get("pull_policy") == "build":
        return True
    try:
        client.get(f"/images/{svc['image']}/json")
    except NotFound:
        return True
    return False


def build_params(
    project: Project, service: str, dockerfile: str, no_cache: bool, pull: bool
) -> dict[str, Any]:
    """The POST /build query for a service (classic builder parameters). `no_cache` and
    `pull` (the command's flags) add to the file's own `build.no_cache` and `build.pull`."""
    svc = project.services[service]
    spec = svc["build"]
    params: dict[str, Any] = {
        "t": svc["image"],
        "dockerfile": dockerfile,
        "rm": True,
        "forcerm": True,
        "nocache": (no_cache or spec.get("no_cache") is True) or None,
        "pull": (pull or spec.get("pull") is True) or None,
        "target": spec.get("target") or None,
        "networkmode": spec.get("network") or None,
    }
    if spec.get("args"):
        params["buildargs"] = json.dumps(spec["args"])
    if spec.get("labels"):
        params["labels"] = json.dumps(spec["labels"])
    return {k: v for k, v in params.items() if v is not None}


def build_service(
    client: EngineClient,
    project: Project,
    service: str,
    out: Printer,
    no_cache: bool = False,
    pull: bool = False,
) -> str:
    """Build one service's image, printing its progress; returns the image ID."""
    svc = project.services[service]
    spec = svc["build"]
    image = str(svc["image"])
    try:
        context = buildcontext.pack(spec["context"], spec.get("dockerfile", "Dockerfile"))
    except buildcontext.ContextError as e:
        raise ComposeError(f"service {service!r}: {e}") from None
    out.progress("Service", service, "Building")
    try:
        params = build_params(project, service, context.dockerfile, no_cache, pull)
        image_id = _stream(client, context, params, service, out)
    except EngineError as e:
        raise ComposeError(f"service {service!r}: building image {image} failed: {e}") from None
    finally:
        context.close()
    out.progress("Service", service, "Built")
    return image_id or str(client.get(f"/images/{image}/json")["Id"])


def _stream(
    client: EngineClient,
    context: buildcontext.Context,
    params: dict[str, Any],
    service: str,
    out: Printer,
) -> str:
    """Print the build's messages with the service's name; the ID from the `aux` message."""
    image_id = ""
    header = registryauth.registry_config_header()
    for msg in client.build(context.tar, context.size, params, header):
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            raise EngineError(500, str(msg.get("error") or detail.get("message")))
        aux = msg.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = str(aux["ID"])
        text = msg.get("stream")
        if text is None and msg.get("status") and "progress" not in msg:
            text = " ".join(str(msg[k]) for k in ("id", "status") if msg.get(k))
        for line in str(text or "").splitlines():
            if line.strip():
                out.progress("", service, line.rstrip())
    return image_id
