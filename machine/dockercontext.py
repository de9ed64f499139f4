"""The `dockyard` docker context: the user's docker CLI reaches the machine's engine by it.

Why write the context store ourselves instead of running `docker context create`: the
machine must work before (or without) a docker CLI on PATH, and the store format is small
and stable: `$DOCKER_CONFIG/contexts/meta/<sha256 of the name>/meta.json`, holding
`{"Name", "Metadata": {"Description"}, "Endpoints": {"docker": {"Host", "SkipTLSVerify"}}}`.
`$DOCKER_CONFIG` is respected as the CLI does (default `~/.docker`).

We create and update the context but never switch the user's current context behind
their back; `docker context use dockyard` (or DOCKER_CONTEXT=dockyard) is theirs to run.
When the context is removed while it is current, the current context falls back to
`default`, because a CLI pointed at a missing context refuses every command.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from machine import atomic

NAME = "dockyard"


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]).expanduser()
    return Path.home() / ".docker"


def meta_dir(name: str = NAME, env: Mapping[str, str] | None = None) -> Path:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return config_dir(env) / "contexts" / "meta" / digest


def read(name: str = NAME, env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The context's meta.json, or None if there is none (or it is unreadable)."""
    try:
        doc = json.loads((meta_dir(name, env) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def endpoint(name: str = NAME, env: Mapping[str, str] | None = None) -> str:
    """The docker endpoint (DOCKER_HOST form) the context points at, "" if none."""
    doc = read(name, env) or {}
    host = doc.get("Endpoints", {}).get("docker", {}).get("Host", "")
    return str(host)


def write(
    host: str, description: str, name: str = NAME, env: Mapping[str, str] | None = None
) -> Path:
    """Create the context, or update its docker endpoint and description (other metadata
    and endpoints someone added by hand are kept)."""
    doc = read(name, env) or {}
    metadata = _mapping(doc.get("Metadata"))
    endpoints = _mapping(doc.get("Endpoints"))
    doc = {
        "Name": name,
        "Metadata": {**metadata, "Description": description},
        "Endpoints": {**endpoints, "docker": {"Host": host, "SkipTLSVerify": False}},
    }
    directory = meta_dir(name, env)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "meta.json"
    atomic.write_text(path, json.dumps(doc, separators=(",", ":")))
    return path


def _mapping(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def remove(name: str = NAME, env: Mapping[str, str] | None = None, only_endpoint: str = "") -> bool:
    """Delete the context (only if it points at `only_endpoint`, when given); True if it
    was removed. If it was the current context, the CLI goes back to `default`."""
    if only_endpoint and endpoint(name, env) != only_endpoint:
        return False
    directory = meta_dir(name, env)
    if not directory.is_dir():
        return False
    shutil.rmtree(directory)
    with contextlib.suppress(OSError):
        shutil.rmtree(config_dir(env) / "contexts" / "tls" / directory.name)
    _forget_current(name, env)
    return True


def _forget_current(name: str, env: Mapping[str, str] | None) -> None:
    path = config_dir(env) / "config.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(doc, dict) and doc.get("currentContext") == name:
        del doc["currentContext"]
        atomic.write_text(path, json.dumps(doc, indent="\t"), mode=0o600)
