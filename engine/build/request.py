"""`POST /build` query parameters as checked BuildOptions.

Every value is validated before the context is read, so a bad tag, a
malformed buildargs JSON or an unknown network mode is a plain 400 the CLI
prints as "Error response from daemon: ...", and nothing was built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidParameter
from engine.images import reference

NETWORK_MODES = ("", "default", "bridge", "host", "none")


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    target: str = ""
    quiet: bool = False
    remove: bool = True  # rm: remove intermediate containers after a successful step
    force_remove: bool = False  # forcerm: also after a failed one (we always do; see steps)
    pull: bool = False
    platform: str = ""
    network_mode: str = ""
    notes: list[str] = field(default_factory=list)


def _flag(query: Mapping[str, list[str]], name: str, default: bool) -> bool:
    values = query.get(name)
    if not values or values[-1] == "":
        return default
    return values[-1].lower() not in ("0", "false", "no")


def _last(query: Mapping[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[-1] if values else ""


def _json_map(query: Mapping[str, list[str]], name: str) -> dict[str, Any]:
    text = _last(query, name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidParameter(f"invalid JSON in query parameter {name}: give an object") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter(f"query parameter {name} must be a JSON object")
    return value


def _build_args(query: Mapping[str, list[str]]) -> dict[str, str | None]:
    raw = _json_map(query, "buildargs")
    out: dict[str, str | None] = {}
    for key, value in raw.items():
        if not key:
            raise InvalidParameter("buildargs: a build-arg name can not be empty")
        if value is not None and not isinstance(value, str):
            raise InvalidParameter(f"buildargs: the value of {key} must be a string or null")
        out[key] = value
    return out


def _labels(query: Mapping[str, list[str]]) -> dict[str, str]:
    raw = _json_map(query, "labels")
    if not all(isinstance(v, str) for v in raw.values()):
        raise InvalidParameter("labels: every label value must be a string")
    return {str(k): str(v) for k, v in raw.items()}


def _tags(query: Mapping[str, list[str]]) -> list[str]:
    tags: list[str] = []
    for text in query.get("t", []):
        if not text:
            continue
        try:
            ref = reference.parse(text)
        except InvalidParameter as exc:
            raise InvalidParameter(f"invalid tag {text!r}: {exc.message}") from None
        if ref.digest:
            raise InvalidParameter(f"invalid tag {text!r}: a build tag can not hold a digest")
        familiar = ref.familiar
        if familiar not in tags:
            tags.append(familiar)
    return tags


def _dockerfile(query: Mapping[str, list[str]]) -> str:
    name = _last(query, "dockerfile") or "Dockerfile"
    if "\x00" in name:
        raise InvalidParameter("dockerfile: the file name holds a NUL byte")
    return name


def _network_mode(query: Mapping[str, list[str]]) -> str:
    mode = _last(query, "networkmode")
    if mode not in NETWORK_MODES:
        raise InvalidParameter(
            f"networkmode {mode!r} is not supported for builds: use default, bridge, host or none"
        )
    return "" if mode == "default" else mode


def parse_options(query: Mapping[str, list[str]]) -> BuildOptions:
    """BuildOptions from the query string; InvalidParameter names the bad parameter."""
    opts = BuildOptions(
        tags=_tags(query),
        dockerfile=_dockerfile(query),
        build_args=_build_args(query),
        labels=_labels(query),
        no_cache=_flag(query, "nocache", False),
        target=_last(query, "target"),
        quiet=_flag(query, "q", False),
        remove=_flag(query, "rm", True),
        force_remove=_flag(query, "forcerm", False),
        pull=_flag(query, "pull", False),
        platform=_last(query, "platform"),
        network_mode=_network_mode(query),
    )
    if _last(query, "cachefrom") not in ("", "[]", "null"):
        opts.notes.append("--cache-from is ignored: this builder uses its local layer cache only")
    return opts
