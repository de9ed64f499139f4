"""Crash-safe file writes: temp file, fsync, rename, fsync of the directory.

A reader (or the engine after a crash) then sees the old content or the new,
never a torn mix; every piece of persisted state goes through here.

`durable=False` keeps the temp-and-rename (readers still never see a torn
file, even if the writer dies half-way) but skips both fsyncs. It is only for
runtime state under the exec root (/run: tmpfs, gone at reboot anyway), where
a power loss cannot lose anything the engine still needs; syncing it would
only add latency to every container start.

`discard_tree` is the matching delete: a directory tree leaves its place in
one atomic rename (into a trash directory on the same filesystem) and is
deleted by a background thread, so a caller waiting on a removal does not
wait for the unlinks. Whatever a crash leaves in the trash is deleted by
`empty_trash` when the engine starts again.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import tempfile
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def write_bytes(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    write_many({path: data}, mode, durable)


def write_many(files: Mapping[Path, bytes], mode: int = 0o644, durable: bool = True) -> None:
    """Several files, each replaced atomically, for about the price of one.

    The fsyncs run at once, so the filesystem journal commits them together
    instead of one after another, and each directory is synced once after
    all the renames. Nothing is renamed until every file is on disk; on an
    error no temp file is left behind (files already renamed stay).
    """
    temps: list[tuple[str, Path]] = []
    try:
        fds: list[int] = []
        try:
            for path, data in files.items():
                fd, tmp = _write_temp(path, data, mode)
                fds.append(fd)
                temps.append((tmp, path))
            if durable:
                _fsync_all(fds)
        finally:
            _close_all(fds)
        while temps:
            os.replace(*temps[0])
            temps.pop(0)
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        for parent in {path.parent for path in files}:
            fsync_dir(parent)


def _write_temp(path: Path, data: bytes, mode: int) -> tuple[int, str]:
    """A temp file beside `path` holding `data`, still open (fd, name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def _fsync_all(fds: list[int]) -> None:
    if len(fds) == 1:
        os.fsync(fds[0])
        return
    with ThreadPoolExecutor(max_workers=len(fds)) as pool:
        list(pool.map(os.fsync, fds))


def _close_all(fds: list[int]) -> None:
    """Close every fd exactly once; the first failure is raised after the rest are closed."""
    error: OSError | None = None
    for fd in fds:
        try:
            os.close(fd)
        except OSError as e:
            error = error or e
    if error is not None:
        raise error


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


TRASH = ".trash"  # name of the trash directory beside (never inside) what it collects


def discard_tree(path: Path, trash: Path) -> None:
    """Make the tree at `path` disappear at once; its contents are deleted later.

    `trash` must be on the same filesystem: where the rename fails (another
    filesystem, no permission) the tree is deleted in place, as before.
    A missing `path` is not an error.
    """
    target = trash / f"{path.name}.{secrets.token_hex(4)}"
    try:
        trash.mkdir(mode=0o700, exist_ok=True)
        os.rename(path, target)
    except FileNotFoundError:
        if not path.exists():
            return
        shutil.rmtree(path, ignore_errors=True)
        return
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        return
    _deleter().put(target)


def empty_trash(trash: Path) -> None:
    """Delete, in the background, what an earlier run left in the trash."""
    try:
        entries = list(trash.iterdir())
    except OSError:
        return
    for entry in entries:
        _deleter().put(entry)


_queue: queue.SimpleQueue[Path] | None = None
_queue_lock = threading.Lock()


def _deleter() -> queue.SimpleQueue[Path]:
    """The queue of the one background thread that deletes trashed trees (started lazily)."""
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = queue.SimpleQueue()
            threading.Thread(
                target=_delete_forever, args=(_queue,), name="trash", daemon=True
            ).start()
        return _queue


def _delete_forever(pending: queue.SimpleQueue[Path]) -> None:
    while True:
        path = pending.get()
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
