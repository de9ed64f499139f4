"""The user's docker contexts, read from the docker CLI's own store, and which one is current.

Why read the CLI's store: a context is how a docker user names an engine ("the build box",
"prod over SSH"); the app offers the same names instead of asking for the address again.
The store is `$DOCKER_CONFIG/contexts/meta/<sha256 of the name>/meta.json` (written by
`docker context create`, and by machine/dockercontext.py for `dockyard`); the current one
is `currentContext` in `$DOCKER_CONFIG/config.json`, or `DOCKER_CONTEXT` when set.

`default` is not stored: it is the engine the app uses when nothing else is chosen
(DOCKER_HOST, else the Dockyard machine's socket), so its endpoint is the caller's.
Reading only: creating, switching and removing contexts stay `docker context`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machine.dockercontext import config_dir

DEFAULT = "default"
ENV_CONTEXT = "DOCKER_CONTEXT"


class ContextError(Exception):
    """A context that cannot be used (missing, unreadable, no docker endpoint); the message
    says which and what to do."""


@dataclass(frozen=True)
class Context:
    name: str
    description: str
    host: str  # the docker endpoint (DOCKER_HOST form); "" for `default` (the caller's)
    current: bool


def current_name(env: Mapping[str, str]) -> str:
    """DOCKER_CONTEXT, else config.json's currentContext, else `default` (the CLI's order
    once -H and DOCKER_HOST are ruled out; like the CLI, existence is checked on use)."""
    if env.get(ENV_CONTEXT):
        return env[ENV_CONTEXT]
    name = _config(env).get("currentContext")
    return name if isinstance(name, str) and name else DEFAULT


def list_contexts(env: Mapping[str, str]) -> list[Context]:
    """`default` first, then every stored context by name; unreadable entries skipped."""
    current = current_name(env)
    found = [
        Context(DEFAULT, "The Dockyard machine (or DOCKER_HOST)", "", current == DEFAULT),
    ]
    meta_root = config_dir(env) / "contexts" / "meta"
    docs = [_read(path) for path in sorted(meta_root.glob("*/meta.json"))]
    for doc in sorted((d for d in docs if d), key=lambda d: str(d.get("Name", ""))):
        name = str(doc.get("Name", ""))
        if name and name != DEFAULT:
            found.append(_context(doc, current == name))
    return found


def endpoint(name: str, env: Mapping[str, str]) -> str:
    """The docker endpoint of stored context `name`; ContextError if there is none."""
    for context in list_contexts(env):
        if context.name == name and context.name != DEFAULT:
            if not context.host:
                raise ContextError(
                    f'docker context "{name}" has no docker endpoint: '
                    f"set one with `docker context update {name} --docker host=...`"
                )
            return context.host
    raise ContextError(
        f'docker context "{name}" does not exist in {config_dir(env) / "contexts"}: '
        "`docker context ls` lists the contexts; choose one of them, "
        f"or unset {ENV_CONTEXT} / run `docker context use default`"
    )


def _context(doc: dict[str, Any], current: bool) -> Context:
    metadata = doc.get("Metadata")
    endpoints = doc.get("Endpoints")
    docker = endpoints.get("docker") if isinstance(endpoints, dict) else None
    description = metadata.get("Description", "") if isinstance(metadata, dict) else ""
    host = docker.get("Host", "") if isinstance(docker, dict) else ""
    return Context(str(doc["Name"]), str(description or ""), str(host or ""), current)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _config(env: Mapping[str, str]) -> dict[str, Any]:
    return _read(config_dir(env) / "config.json") or {}
