"""Open the system terminal running `docker exec -it <id> sh` against our engine.

The argv builder is pure (which terminal, how it takes a command) and unit-tested; the
launch is a detached process with DOCKER_HOST set, so the terminal outlives the app.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping

# Terminals in the order we try them, with how each takes a command to run.
_LINUX_TERMINALS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("x-terminal-emulator", ("-e",)),
    ("gnome-terminal", ("--",)),
    ("konsole", ("-e",)),
    ("xfce4-terminal", ("-x",)),
    ("alacritty", ("-e",)),
    ("kitty", ()),
    ("xterm", ("-e",)),
)


def exec_command(container_id: str, shell: str = "sh") -> list[str]:
    return ["docker", "exec", "-it", container_id, shell]


def terminal_argv(
    container_id: str,
    host: str,
    env: Mapping[str, str],
    which: Callable[[str], str | None] = shutil.which,
    platform: str = sys.platform,
) -> list[str] | None:
    """The argv that opens a terminal running the exec, or None when none is found.

    $TERMINAL wins (taking `-e`); macOS uses Terminal.app through osascript."""
    inner = exec_command(container_id)
    if platform == "darwin":
        line = f"DOCKER_HOST={shlex.quote(host)} {shlex.join(inner)}"
        script = f'tell application "Terminal" to do script "{line}"'
        return ["osascript", "-e", script, "-e", 'tell application "Terminal" to activate']
    chosen = env.get("TERMINAL", "")
    if chosen and which(chosen):
        return [chosen, "-e", *inner]
    for name, flag in _LINUX_TERMINALS:
        if which(name):
            return [name, *flag, *inner]
    return None


def manual_command(container_id: str, host: str) -> str:
    """What to run by hand when no terminal can be opened."""
    return f"DOCKER_HOST={shlex.quote(host)} {shlex.join(exec_command(container_id))}"


def launch_env(host: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DOCKER_HOST"] = host
    env.pop("DOCKER_CONTEXT", None)
    return env
