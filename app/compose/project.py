"""Which project: its files, directory and name, resolved the way compose v2 does.

Files: -f, then COMPOSE_FILE (separated by the path separator), then compose.yaml (or
another default name) in the working directory or a parent.
Name: -p, then COMPOSE_PROJECT_NAME, then the files' top-level `name:`, then the project
directory's name; normalized to lowercase letters, digits, `-` and `_`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.compose import loader
from app.compose.errors import ComposeError
from app.compose.loader import KeyPath, LoadedFile
from app.compose.model import Project, normalize


@dataclass
class Options:
    """The global `compose` options."""

    files: Sequence[str] = ()
    project_name: str | None = None
    project_directory: str | None = None


def normalize_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def check_name(name: str, source: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise ComposeError(
            f"invalid project name {name!r} (from {source}): use lowercase letters, digits, "
            "dashes and underscores, starting with a letter or digit"
        )
    return name


def load(opts: Options, env: Mapping[str, str] | None = None) -> Project:
    """The normalized project for these options (reads and validates every file)."""
    environ = dict(os.environ if env is None else env)
    from_env = [f for f in environ.get("COMPOSE_FILE", "").split(os.pathsep) if f]
    files = loader.find_files(list(opts.files) or from_env, Path.cwd())
    working_dir = Path(opts.project_directory or files[0].parent).resolve()
    variables = loader.project_env(working_dir, environ)
    data, loaded = loader.load(files, variables)
    name = resolve_name(opts, variables, data.get("name"), working_dir)
    return normalize(data, name, working_dir, files, variables, _where(loaded))


def resolve_name(
    opts: Options, env: Mapping[str, str], top_level: object, working_dir: Path
) -> str:
    if opts.project_name:
        return check_name(opts.project_name, "-p")
    if env.get("COMPOSE_PROJECT_NAME"):
        return check_name(env["COMPOSE_PROJECT_NAME"], "COMPOSE_PROJECT_NAME")
    if isinstance(top_level, str) and top_level:
        return check_name(top_level, "the top-level name:")
    name = normalize_name(working_dir.name)
    if not name:
        raise ComposeError(
            f"cannot make a project name from the directory {working_dir.name!r}: use -p NAME"
        )
    return name


def name_only(opts: Options) -> str | None:
    """The project name without any file (down/ps/logs -p NAME work with no file)."""
    if opts.project_name:
        return check_name(opts.project_name, "-p")
    env_name = os.environ.get("COMPOSE_PROJECT_NAME")
    return check_name(env_name, "COMPOSE_PROJECT_NAME") if env_name else None


def _where(loaded: list[LoadedFile]) -> Callable[[KeyPath], str]:
    def where(path: KeyPath) -> str:
        for f in reversed(loaded):
            if path[:2] in f.lines or path[:1] in f.lines:
                return f.where(path)
        return loaded[-1].where(path) if loaded else loader.format_path(path)

    return where
