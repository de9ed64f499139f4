"""Find the command in the container's PATH and exec it, failing like Docker.

Docker's exit codes are part of the contract scripts rely on: 127 when the
command is not found, 126 when it is found but cannot be executed.
"""

from __future__ import annotations

import os
import stat
from typing import NoReturn

from engine.runtime.user import DEFAULT_PATH


class CommandError(Exception):
    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


def env_path(env: list[str]) -> str:
    for item in env:
        if item.startswith("PATH="):
            return item[5:]
    return DEFAULT_PATH


def _is_executable_file(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)


def look_path(name: str, env: list[str]) -> str:
    """Go's exec.LookPath, as runc uses it: a name with "/" is taken as is."""
    if not name:
        raise CommandError(127, 'exec: "": executable file not found in $PATH')
    if "/" in name:
        return name
    for directory in env_path(env).split(":"):
        candidate = os.path.join(directory or ".", name)
        if _is_executable_file(candidate):
            return candidate
    raise CommandError(127, f'exec: "{name}": executable file not found in $PATH')


def execute(args: list[str], env: list[str]) -> NoReturn:
    """execve or raise CommandError with Docker's code and message."""
    path = look_path(args[0], env)
    try:
        os.execve(path, args, dict(e.split("=", 1) for e in env if "=" in e))
    except FileNotFoundError as e:
        raise CommandError(127, f"exec: {path}: no such file or directory") from e
    except PermissionError as e:
        raise CommandError(126, f"exec: {path}: permission denied") from e
    except IsADirectoryError as e:
        raise CommandError(126, f"exec: {path}: is a directory") from e
    except OSError as e:
        raise CommandError(126, f"exec: {path}: {e.strerror}") from e
