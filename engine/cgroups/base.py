"""What the v1 and v2 managers share: names, validation, joining, killing, removal.

A subclass says where a container's cgroup directories are (`dirs`), how to
make and configure them, and how to freeze; everything built from those
(join, pids, kill_all, remove) is written once here.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from pathlib import Path

from engine.cgroups import fs, procs
from engine.cgroups.stats import CgroupStats
from engine.cgroups.validate import validate
from engine.errors import EngineError, InvalidParameter, NotFound
from engine.runtime.spec import Resources


def check_name(name: str, what: str) -> str:
    """One path component that cannot climb out of the cgroup root."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise InvalidParameter(f"invalid {what} {name!r}: use a plain name without '/'")
    return name


def parent_parts(parent: str) -> list[str]:
    """Docker accepts "/docker" and "a/b"; both are relative to the hierarchy root."""
    parts = [p for p in parent.strip("/").split("/") if p]
    if not parts:
        raise InvalidParameter(f"invalid cgroup parent {parent!r}: give a name such as 'dockyard'")
    return [check_name(p, "cgroup parent component") for p in parts]


class BaseManager(ABC):
    def __init__(self, parent: str, root: Path) -> None:
        self.parts = parent_parts(parent)
        self.parent = "/".join(self.parts)
        self.root = root

    # -- what a version must provide -------------------------------------
    @abstractmethod
    def dirs(self, cid: str) -> list[Path]:
        """The container's distinct cgroup directories (one per hierarchy)."""

    @abstractmethod
    def make(self, cid: str) -> None: ...

    @abstractmethod
    def apply(self, cid: str, res: Resources) -> None: ...

    @abstractmethod
    def can_freeze(self, cid: str) -> bool: ...

    @abstractmethod
    def freeze(self, cid: str) -> None: ...

    @abstractmethod
    def thaw(self, cid: str) -> None: ...

    @abstractmethod
    def is_frozen(self, cid: str) -> bool: ...

    @abstractmethod
    def oom_killed(self, cid: str) -> bool: ...

    @abstractmethod
    def stats(self, cid: str) -> CgroupStats: ...

    @abstractmethod
    def parent_dirs(self) -> list[Path]:
        """The parent directory in every hierarchy, deepest first within each."""

    # -- shared verbs -------------------------------------------------------
    def create(self, cid: str, res: Resources) -> None:
        """Validate first, so a refused request writes nothing; undo a failed apply."""
        check_name(cid, "container id")
        validate(res)
        existed = self.exists(cid)
        self.make(cid)
        try:
            self.apply(cid, res)
        except EngineError:
            if not existed:
                self.rmdirs(cid)
            raise

    def update(self, cid: str, res: Resources) -> None:
        """Set the cgroup to exactly `res` (the caller passes the merged resources)."""
        validate(res)
        self.require(cid)
        self.apply(cid, res)

    def join(self, cid: str, pid: int) -> None:
        self.require(cid)
        for d in self.dirs(cid):
            procs.join(d, pid)

    def procs_files(self, cid: str) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs(cid)]

    def pids(self, cid: str) -> list[int]:
        return sorted({pid for d in self.dirs(cid) for pid in procs.list_pids(d)})

    def kill_all(self, cid: str, sig: int) -> None:
        """Freeze, signal, thaw: a frozen cgroup cannot fork a child the kill would miss.

        A paused container stays paused unless the signal is SIGKILL, which
        frozen v1 tasks only act on once thawed.
        """
        if not self.pids(cid):
            return
        if not self.can_freeze(cid):
            procs.signal_all(self.pids(cid), sig)
            return
        was_frozen = self.is_frozen(cid)
        self.freeze(cid)
        try:
            procs.signal_all(self.pids(cid), sig)
        finally:
            if not was_frozen or sig == signal.SIGKILL:
                self.thaw(cid)

    def remove(self, cid: str) -> None:
        """Kill what is left, wait for it to go, rmdir everywhere; a missing dir is fine."""
        check_name(cid, "container id")
        dirs = [d for d in self.dirs(cid) if d.is_dir()]
        if not dirs:
            return
        try:
            self.kill_all(cid, signal.SIGKILL)
            procs.wait_empty(dirs)
        except (OSError, EngineError):
            # The shim removes its container's cgroup as the container ends, so
            # parts of it may vanish under us; only processes left are a failure.
            if any(procs.list_pids(d) for d in dirs):
                raise
        self.rmdirs(cid)

    def prune(self) -> None:
        """Remove the parent directories if no container is left under them."""
        for d in self.parent_dirs():
            try:
                fs.rmdir(d)
            except EngineError:
                continue  # still holds other containers

    # -- helpers ------------------------------------------------------------
    def exists(self, cid: str) -> bool:
        return any(d.is_dir() for d in self.dirs(cid))

    def require(self, cid: str) -> None:
        check_name(cid, "container id")
        if not self.exists(cid):
            raise NotFound(f"container {cid} has no cgroup under {self.parent}; is it running?")

    def rmdirs(self, cid: str) -> None:
        for d in self.dirs(cid):
            fs.rmdir(d)
