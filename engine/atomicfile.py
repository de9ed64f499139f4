"""Crash-safe file writes: temp file, fsync, rename, fsync of the directory.

A reader (or the engine after a crash) then sees the old content or the new,
never a torn mix; every piece of persisted state goes through here.

`durable=False` keeps the temp-and-rename (readers still never see a torn
file, even if the writer dies half-way) but skips both fsyncs. It is only for
runtime state under the exec root (/run: tmpfs, gone at reboot anyway), where
a power loss cannot lose anything the engine still needs; syncing it would
only add latency to every container start.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def write_json(path: Path, obj: Any, mode: int = 0o644, durable: bool = True) -> None:
    write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode(), mode, durable)


def read_json(path: Path) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
