"""The same file operations on both sides: the host's folder (os) and the guest's (the
bytes over SFTP; scans, hashes and the guarded changes of fsops.py by the agent).

A write streams the content to a temporary name while hashing it, then commits it: in the
guest the agent first checks the copy's hash (paramiko drops the error of a pipelined
SFTP write whose answer arrives while another request is awaited, so a write that hit a
full disk can look complete), then mode, mtime, the `expect` check and the rename happen
in one request. A pass ends with `flush()` on both sides (fsops.sync_fs) before its index
is saved: after a crash the index must never describe content the disk does not hold.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import shutil
import socket
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol, TypeVar

import paramiko

from machine.sync import fsops, tree
from machine.sync.agent import AgentClient
from machine.sync.errors import Changed, DiskFull, SyncError, UnsafePath
from machine.sync.ignore import IgnoreRules
from machine.sync.tree import Entry, Key

CHUNK = 1 << 18
DISK_MARGIN = 1 << 16  # a write that failed with less than this spare was a full disk
# paramiko's prefetch starts a thread per file: worth it only past a few requests' worth
PREFETCH_ABOVE = 1 << 17
T = TypeVar("T")


class Side(Protocol):
    name: str
    hostname: str
    root: str
    created: bool  # the folder was missing when this side was opened, no full pass since

    @property
    def hashed(self) -> int: ...
    def begin(self) -> None: ...
    def alive(self) -> bool: ...
    def scan(self, scopes: list[str]) -> dict[str, Entry]: ...
    def stat(self, rels: list[str]) -> dict[str, Entry]: ...
    def digests(self, rels: list[str]) -> dict[str, str | None]: ...
    def open_read(self, rel: str, size: int) -> BinaryIO: ...
    def write_file(
        self, rel: str, src: BinaryIO, mode: int, mtime_ns: int, size: int, expect: Key | None
    ) -> tuple[Entry, str]: ...
    def make_dir(self, rel: str, mode: int, expect: Key | None) -> Entry: ...
    def make_link(self, rel: str, target: str, expect: Key | None) -> Entry: ...
    def remove(self, rel: str, expect: Key) -> None: ...
    def rename(self, src: str, dst: str, expect: Key) -> None: ...
    def flush(self) -> None: ...


def _copy(src: BinaryIO, dst: BinaryIO) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    while block := src.read(CHUNK):
        h.update(block)
        dst.write(block)
        size += len(block)
    return size, h.hexdigest()


class HostSide:
    """The host's folder."""

    name = "host"

    def __init__(self, root: str, rules: IgnoreRules) -> None:
        self.root = root
        self.rules = rules
        self.hostname = socket.gethostname().split(".")[0] or "host"
        self.hashed = 0
        self.created = False

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(self.root, *args)
        except fsops.Unsafe as e:
            raise UnsafePath(self.name, e.rel, e.parent) from e

    def begin(self) -> None:
        if not os.path.isdir(self.root):
            os.makedirs(self.root)
            self.created = True

    def alive(self) -> bool:
        return True

    def scan(self, scopes: list[str]) -> dict[str, Entry]:
        return tree.scan(self.root, self.rules, scopes)

    def stat(self, rels: list[str]) -> dict[str, Entry]:
        found = {rel: tree.lstat(self.root, rel) for rel in rels}
        return {rel: e for rel, e in found.items() if e is not None}

    def digests(self, rels: list[str]) -> dict[str, str | None]:
        self.hashed += len(rels)
        return {rel: tree.digest(self.root, rel) for rel in rels}

    def open_read(self, rel: str, size: int) -> BinaryIO:
        fd = os.open(tree.local(self.root, rel), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")

    def write_file(
        self, rel: str, src: BinaryIO, mode: int, mtime_ns: int, size: int, expect: Key | None
    ) -> tuple[Entry, str]:
        self._guard(fsops.parents, rel)
        tmp = fsops.temp_name(rel)
        path = tree.local(self.root, tmp)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                _, digest = _copy(src, f)
        except BaseException as e:
            fsops.discard(self.root, tmp)
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(self.name, rel, size, shutil.disk_usage(self.root).free) from e
            raise
        return self._guard(fsops.commit, tmp, rel, mode, mtime_ns, expect), digest

    def make_dir(self, rel: str, mode: int, expect: Key | None) -> Entry:
        return self._guard(fsops.make_dir, rel, mode, expect)

    def make_link(self, rel: str, target: str, expect: Key | None) -> Entry:
        return self._guard(fsops.make_link, rel, target, expect)

    def remove(self, rel: str, expect: Key) -> None:
        self._guard(fsops.remove, rel, expect)

    def rename(self, src: str, dst: str, expect: Key) -> None:
        self._guard(fsops.rename, src, dst, expect)

    def flush(self) -> None:
        fsops.sync_fs(self.root)


class GuestSide:
    """The guest's folder: bytes over SFTP, everything else by the agent."""

    name = "guest"

    def __init__(self, sftp: paramiko.SFTPClient, agent: AgentClient, root: str) -> None:
        self.sftp = sftp
        self.agent = agent
        self.root = root
        self.hostname = agent.hostname.split(".")[0] or "guest"
        self.created = agent.created
        self._dirs: set[str] = set()  # parents known to exist in this pass

    @property
    def hashed(self) -> int:
        return self.agent.hashed

    def _path(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel else self.root

    def _call(self, op: str, rel: str, **fields: Any) -> dict[str, Any]:
        reply = self.agent.request(op, path=rel, **fields)
        if reply.get("changed"):
            raise Changed(rel)
        if "unsafe" in reply:
            self._dirs.clear()
            raise UnsafePath(self.name, rel, str(reply["unsafe"]))
        return reply

    def begin(self) -> None:
        self._dirs.clear()

    def alive(self) -> bool:
        channel = self.sftp.get_channel()
        return self.agent.alive and channel is not None and not channel.closed

    def _entries(self, op: str, rels: list[str]) -> dict[str, Entry]:
        reply = self.agent.request(op, rels)
        return {rel: Entry.from_json(doc) for rel, doc in reply["entries"].items()}

    def scan(self, scopes: list[str]) -> dict[str, Entry]:
        return self._entries("scan", scopes)

    def stat(self, rels: list[str]) -> dict[str, Entry]:
        return self._entries("stat", rels)

    def digests(self, rels: list[str]) -> dict[str, str | None]:
        self.agent.hashed += len(rels)
        digests: dict[str, str | None] = self.agent.request("hash", rels)["digests"]
        return digests

    def free_space(self) -> int:
        return int(self.agent.request("df")["free"])

    def open_read(self, rel: str, size: int) -> BinaryIO:
        f = self.sftp.open(self._path(rel), "rb", bufsize=CHUNK)
        if size > PREFETCH_ABOVE:
            f.prefetch(size)  # the size from the scan: no extra stat round trip
        return f  # type: ignore[return-value]  # SFTPFile reads like a binary file

    def _parents(self, rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent and parent not in self._dirs:
            self._call("parents", rel)
            self._dirs.add(parent)

    def _full_or(self, rel: str, size: int, e: Exception) -> SyncError:
        if self.agent.alive and (free := self.free_space()) < size + DISK_MARGIN:
            return DiskFull(self.name, rel, size, free)
        return SyncError(f"writing {rel} in the guest failed: {e}")

    def write_file(
        self, rel: str, src: BinaryIO, mode: int, mtime_ns: int, size: int, expect: Key | None
    ) -> tuple[Entry, str]:
        self._parents(rel)
        tmp = fsops.temp_name(rel)
        try:
            with self.sftp.open(self._path(tmp), "wb") as f:
                f.set_pipelined(True)
                written, digest = _copy(src, f)  # type: ignore[arg-type]
        except OSError as e:
            self.agent.request("discard", tmp=tmp)
            raise self._full_or(rel, size, e) from e
        except BaseException:
            if self.agent.alive:
                self.agent.request("discard", tmp=tmp)
            raise
        reply = self._call(
            "commit", rel, tmp=tmp, digest=digest, mode=mode, mtime_ns=mtime_ns, expect=expect
        )
        if reply.get("short"):
            raise self._full_or(rel, size, OSError(f"{written} bytes sent, fewer arrived"))
        return Entry.from_json(reply["entry"]), digest

    def make_dir(self, rel: str, mode: int, expect: Key | None) -> Entry:
        entry = Entry.from_json(self._call("mkdir", rel, mode=mode, expect=expect)["entry"])
        self._dirs.add(rel)
        return entry

    def make_link(self, rel: str, target: str, expect: Key | None) -> Entry:
        return Entry.from_json(self._call("symlink", rel, target=target, expect=expect)["entry"])

    def remove(self, rel: str, expect: Key) -> None:
        self._call("remove", rel, expect=expect)
        self._dirs.discard(rel)

    def rename(self, src: str, dst: str, expect: Key) -> None:
        """Checked by the agent, done by SFTP: OpenSSH's rename never replaces a target,
        and a source changed in between only moves, unchanged, to the new name (the next
        pass sees its new lstat key there)."""
        self._call("check-rename", dst, src=src, expect=expect)
        self.sftp.rename(self._path(src), self._path(dst))

    def flush(self) -> None:
        self.agent.request("sync")
