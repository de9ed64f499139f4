"""The com.docker.compose.* labels: how compose tools (ours, compose v2, the GUI) recognise
a project's containers, networks and volumes on an engine, with no state file of their own.
"""

from __future__ import annotations

from typing import Any

from app.compose.model import Project

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
CONFIG_HASH = "com.docker.compose.config-hash"
VERSION = "com.docker.compose.version"
DEPENDS_ON = "com.docker.compose.depends_on"
IMAGE = "com.docker.compose.image"
NETWORK = "com.docker.compose.network"
VOLUME = "com.docker.compose.volume"
# What other tools compare against; compose v2 writes its own version here.
COMPOSE_VERSION = "2.30.0"


def project_filter(project: str, service: str | None = None) -> list[str]:
    """Label filters for /containers/json: the project's (or one service's) containers."""
    out = [f"{PROJECT}={project}", f"{ONEOFF}=False"]
    return [*out, f"{SERVICE}={service}"] if service else out


def container_labels(
    project: Project, service: str, number: int, config_hash: str, image_id: str
) -> dict[str, str]:
    svc = project.services[service]
    depends = ",".join(
        f"{dep}:{d['condition']}:{str(bool(d.get('restart', False))).lower()}"
        for dep, d in svc.get("depends_on", {}).items()
    )
    return {
        **svc.get("labels", {}),
        PROJECT: project.name,
        SERVICE: service,
        NUMBER: str(number),
        ONEOFF: "False",
        WORKING_DIR: str(project.working_dir),
        CONFIG_FILES: ",".join(str(f) for f in project.config_files),
        CONFIG_HASH: config_hash,
        VERSION: COMPOSE_VERSION,
        DEPENDS_ON: depends,
        IMAGE: image_id,
    }


def resource_labels(project: str, kind: str, key: str, own: dict[str, Any]) -> dict[str, str]:
    """Labels of a network (kind=NETWORK) or volume (kind=VOLUME) the project creates."""
    return {
        **{k: str(v) for k, v in own.items()},
        kind: key,
        PROJECT: project,
        VERSION: COMPOSE_VERSION,
    }
