"""The app's own log: the platform's user log directory, rotated.

Why a file at all: a desktop app started from a dock or a menu has no terminal, so what
went wrong is lost unless it is written somewhere the "Collect diagnostics" action can
find it (app/diagnostics.py). platformdirs gives `~/.local/state/dockyard/log` on Linux,
`~/Library/Logs/dockyard` on macOS and `%LOCALAPPDATA%\\dockyard\\Logs` on Windows;
with `$DOCKYARD_HOME` set (tests, relocated installs) the log lives in `<home>/logs`.
Rotation keeps it bounded: five files of 1 MiB.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

import platformdirs

from machine import paths

MAX_BYTES = 1 << 20
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_dir() -> Path:
    home = os.environ.get(paths.HOME_ENV, "")
    if home:
        return Path(home) / "logs"
    return platformdirs.user_log_path(paths.APP_NAME, appauthor=False)


def setup(program: str) -> Path:
    """Send the root logger (INFO and up) to `<log dir>/<program>.log`; the file's path.
    Calling it again for the same file adds no second handler."""
    directory = log_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{program}.log"
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
            return path
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return path
