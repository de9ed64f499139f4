"""Compose files read into plain data, remembering each key's line for error messages.

Order of work, as compose v2 does it: read the YAML (keeping node marks), interpolate each
file with the shell environment over the project's `.env` (the shell wins), validate each
file against the schema, then merge the files in order (later files override).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.compose import envfile, schema
from app.compose.errors import ComposeError
from app.compose.interpolate import interpolate

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
KeyPath = tuple[str | int, ...]
# Lists that a later file extends instead of replacing (compose's merge rules, simplified).
APPENDED = {
    "ports",
    "expose",
    "volumes",
    "dns",
    "dns_search",
    "cap_add",
    "cap_drop",
    "extra_hosts",
    "env_file",
    "external_links",
    "links",
    "devices",
    "secrets",
    "configs",
    "tmpfs",
    "security_opt",
    "group_add",
}
# Keys given as a list of KEY=VALUE or a mapping: merged as mappings.
MAPPINGS = {"environment", "labels", "sysctls", "annotations"}


@dataclass
class LoadedFile:
    """One file's interpolated data and the line of each key path in it."""

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def where(self, key_path: KeyPath, line_of: KeyPath | None = None) -> str:
        """`compose.yaml:12: services.web.ports[0]`: the nearest known line of the path
        (or of `line_of`, e.g. an unexpected key inside it)."""
        marked = key_path if line_of is None else line_of
        for n in range(len(marked), -1, -1):
            if marked[:n] in self.lines:
                return f"{self.path.name}:{self.lines[marked[:n]]}: {format_path(key_path)}"
        return f"{self.path.name}: {format_path(key_path)}"


def format_path(key_path: KeyPath) -> str:
    out = ""
    for part in key_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def find_files(files: Sequence[str], cwd: Path) -> list[Path]:
    """-f files as given, else the first default name in cwd or a parent directory."""
    if files:
        return [(cwd / f).resolve() for f in files]
    for directory in (cwd, *cwd.parents):
        for name in DEFAULT_FILES:
            if (directory / name).is_file():
                return [directory / name]
    raise ComposeError(
        f"no configuration file provided: not found (looked for {', '.join(DEFAULT_FILES)} "
        f"in {cwd} and its parents); use -f FILE"
    )


def project_env(project_dir: Path, shell: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables for interpolation: the project's `.env` under the shell's (the shell wins)."""
    environ = dict(os.environ if shell is None else shell)
    dotenv = project_dir / ".env"
    base = envfile.read(dotenv, environ) if dotenv.is_file() else {}
    return {**base, **environ}


def read_file(path: Path, env: Mapping[str, str]) -> LoadedFile:
    """One file parsed, line-marked, interpolated and validated."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ComposeError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ComposeError(f"{path.name}{line}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    loaded = LoadedFile(path, data, _lines(node))
    if not isinstance(data, dict):
        raise ComposeError(f"{path.name}:1: the top level must be a mapping (services: ...)")
    loaded.data = interpolate(data, env, loaded.where)
    schema.validate(loaded)
    return loaded


def _lines(node: yaml.Node | None) -> dict[KeyPath, int]:
    lines: dict[KeyPath, int] = {}

    def walk(n: yaml.Node, path: KeyPath) -> None:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    lines[(*path, key.value)] = key.start_mark.line + 1
                    walk(value, (*path, key.value))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return lines


def load(files: Sequence[Path], env: Mapping[str, str]) -> tuple[dict[str, Any], list[LoadedFile]]:
    """The merged document of all files, and each loaded file (for later error lines)."""
    loaded = [read_file(p, env) for p in files]
    merged: dict[str, Any] = {}
    for f in loaded:
        merged = merge(merged, f.data)
    return merged, loaded


def merge(base: Any, over: Any, key: str | None = None) -> Any:
    """`over` laid on `base`: mappings recurse, some lists extend, other values replace."""
    if key in MAPPINGS and isinstance(base, list | dict) and isinstance(over, list | dict):
        return {**as_mapping(base), **as_mapping(over)}
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v, k) if k in base else v
        return out
    if key in APPENDED and isinstance(base, list) and isinstance(over, list):
        return base + [v for v in over if v not in base]
    return over


def as_mapping(value: Any) -> dict[str, Any]:
    """`[A=1, B]` or `{A: 1, B: null}` as a mapping (a bare key maps to None)."""
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value or []:
        k, sep, v = str(item).partition("=")
        out[k] = v if sep else None
    return out
