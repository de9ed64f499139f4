"""Where the app looks for QEMU: the copy bundled in the installed app, then (macOS) the
Homebrew prefixes, then the PATH it was given.

Why the app extends PATH itself: machine/ runs `qemu-system-*` by name. A macOS app
started from Finder or the Dock gets launchd's PATH (/usr/bin:/bin:/usr/sbin:/sbin),
which has neither the app's own QEMU nor Homebrew's `/opt/homebrew/bin` (Apple silicon)
or `/usr/local/bin` (Intel). The Windows installer puts QEMU in `{app}\\qemu`, beside the
frozen executables. packaging/README.md says which QEMU each package carries.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path, PurePath

HOMEBREW_BINS = ("/opt/homebrew/bin", "/usr/local/bin")


def search_dirs(system: str, executable: PurePath | None) -> list[PurePath]:
    """The folders to put before PATH, best first; `executable` is the frozen app's (None
    when running from source, which uses PATH as it is, plus Homebrew on macOS)."""
    dirs: list[PurePath] = []
    if executable is not None:
        here = executable.parent
        if system == "darwin":  # Contents/MacOS/<exe> -> Contents/Resources/qemu/bin
            dirs.append(here.parent / "Resources" / "qemu" / "bin")
        elif system == "win32":
            dirs.append(here / "qemu")
        else:
            dirs.append(here / "qemu" / "bin")
    if system == "darwin":
        dirs += [PurePath(d) for d in HOMEBREW_BINS]
    return dirs


def extend_path(
    env: MutableMapping[str, str] | None = None,
    system: str = sys.platform,
    executable: PurePath | None = None,
) -> list[str]:
    """Put the existing search folders first on PATH (once each); the folders added."""
    env = os.environ if env is None else env
    if executable is None and getattr(sys, "frozen", False):
        executable = Path(sys.executable).resolve()
    current = env.get("PATH", "").split(os.pathsep) if env.get("PATH") else []
    added = [
        str(d)
        for d in search_dirs(system, executable)
        if Path(d).is_dir() and str(d) not in current
    ]
    if added:
        env["PATH"] = os.pathsep.join([*added, *current])
    return added
