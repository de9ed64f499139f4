"""The same file operations on both sides: the host's folder (os) and the guest's (SFTP,
with the agent for scans, stats and hashes).

Every write is safe by construction:
- a file is written to a temporary name beside its target, then renamed over it, so a
  reader (or a crash) sees the old content or the new, never a torn mix;
- just before that rename (or a deletion), the target is checked to still hold what the
  pass planned on (`expect`: its lstat key, None for absent); if the user changed it
  meanwhile, the operation is abandoned (`Changed`) and nothing of theirs is replaced;
- parents are created as directories, and a parent that is a link is never written
  through (`UnsafePath`), so a link can never lead a write out of the share.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import secrets
import shutil
import socket
import stat
from typing import BinaryIO, Protocol

import paramiko

from machine.sync import tree
from machine.sync.agent import AgentClient
from machine.sync.errors import Changed, DiskFull, SyncError, UnsafePath
from machine.sync.ignore import TEMP_PREFIX, IgnoreRules
from machine.sync.tree import DIR, FILE, LINK, Entry, Key

CHUNK = 1 << 18
DISK_MARGIN = 1 << 16  # a write that failed with less than this spare was a full disk


def _temp_name(rel: str) -> str:
    head, _, _ = rel.rpartition("/")
    name = f"{TEMP_PREFIX}{secrets.token_hex(6)}.tmp"
    return f"{head}/{name}" if head else name


def _key(entry: Entry | None) -> Key | None:
    return None if entry is None else entry.key()


class Side(Protocol):
    name: str
    hostname: str

    @property
    def hashed(self) -> int: ...
    def begin(self) -> None: ...
    def alive(self) -> bool: ...
    def scan(self, scopes: list[str]) -> dict[str, Entry]: ...
    def stat(self, rels: list[str]) -> dict[str, Entry]: ...
    def digests(self, rels: list[str]) -> dict[str, str | None]: ...
    def open_read(self, rel: str) -> BinaryIO: ...
    def write_file(
        self, rel: str, src: BinaryIO, mode: int, mtime_ns: int, size: int, expect: Key | None
    ) -> tuple[Entry, str]: ...
    def make_dir(self, rel: str, mode: int, expect: Key | None) -> Entry: ...
    def make_link(self, rel: str, target: str, expect: Key | None) -> Entry: ...
    def remove(self, rel: str, expect: Key) -> None: ...
    def rename(self, src: str, dst: str, expect: Key) -> None: ...


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

    def _path(self, rel: str) -> str:
        return tree.local(self.root, rel)

    def begin(self) -> None:
        os.makedirs(self.root, exist_ok=True)

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

    def open_read(self, rel: str) -> BinaryIO:
        fd = os.open(self._path(rel), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")

    def _expect(self, rel: str, expect: Key | None) -> None:
        if _key(tree.lstat(self.root, rel)) != expect:
            raise Changed(rel)

    def _parents(self, rel: str) -> None:
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            entry = tree.lstat(self.root, parent)
            if entry is None:
                os.mkdir(self._path(parent))
            elif entry.kind != DIR:
                raise UnsafePath(self.name, rel, parent)

    def _clear_dir(self, rel: str, expect: Key | None) -> None:
        """A file or link replacing a synced, now empty, directory."""
        if expect == (DIR,):
            self._expect(rel, expect)
            try:
                os.rmdir(self._path(rel))
            except OSError as e:
                raise Changed(rel) from e

    def write_file(
        self, rel: str, src: BinaryIO, mode: int, mtime_ns: int, size: int, expect: Key | None
    ) -> tuple[Entry, str]:
        self._parents(rel)
        tmp = self._path(_temp_name(rel))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                _, digest = _copy(src, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
            self._clear_dir(rel, expect)
            self._expect(rel, None if expect == (DIR,) else expect)
            os.replace(tmp, self._path(rel))
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(self.name, rel, size, shutil.disk_usage(self.root).free) from e
            raise
        entry = tree.lstat(self.root, rel)
        if entry is None:
            raise Changed(rel)
        return entry, digest

    def make_dir(self, rel: str, mode: int, expect: Key | None) -> Entry:
        self._parents(rel)
        if expect not in (None, (DIR,)):
            self.remove(rel, expect)  # a synced file or link becoming a directory
        with contextlib.suppress(FileExistsError):
            os.mkdir(self._path(rel), mode)
        entry = tree.lstat(self.root, rel)
        if entry is None or entry.kind != DIR:
            raise Changed(rel)
        os.chmod(self._path(rel), mode)
        return entry

    def make_link(self, rel: str, target: str, expect: Key | None) -> Entry:
        self._parents(rel)
        tmp = self._path(_temp_name(rel))
        os.symlink(target, tmp)
        try:
            self._clear_dir(rel, expect)
            self._expect(rel, None if expect == (DIR,) else expect)
            os.replace(tmp, self._path(rel))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return Entry(LINK, target=target)

    def remove(self, rel: str, expect: Key) -> None:
        self._expect(rel, expect)
        try:
            if expect == (DIR,):
                os.rmdir(self._path(rel))
            else:
                os.unlink(self._path(rel))
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise Changed(rel) from e  # something new inside: it syncs first
            raise

    def rename(self, src: str, dst: str, expect: Key) -> None:
        self._parents(dst)
        self._expect(src, expect)
        self._expect(dst, None)
        os.rename(self._path(src), self._path(dst))


class GuestSide:
    """The guest's folder: bytes over SFTP, scans and hashes by the agent."""

    name = "guest"

    def __init__(self, sftp: paramiko.SFTPClient, agent: AgentClient, root: str) -> None:
        self.sftp = sftp
        self.agent = agent
        self.root = root
        self.hostname = agent.hostname.split(".")[0] or "guest"
        self._dirs: set[str] = set()

    @property
    def hashed(self) -> int:
        return self.agent.hashed

    def _path(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel else self.root

    def begin(self) -> None:
        self._dirs.clear()

    def alive(self) -> bool:
        transport = self.sftp.get_channel()
        return self.agent.alive and transport is not None and not transport.closed

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

    def open_read(self, rel: str) -> BinaryIO:
        f = self.sftp.open(self._path(rel), "rb")
        f.prefetch()
        return f  # type: ignore[return-value]  # SFTPFile reads like a binary file

    def _expect(self, rel: str, expect: Key | None) -> None:
        if _key(self.stat([rel]).get(rel)) != expect:
            raise Changed(rel)

    def _parents(self, rel: str) -> None:
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            if parent in self._dirs:
                continue
            try:
                st = self.sftp.lstat(self._path(parent))
            except FileNotFoundError:
                self.sftp.mkdir(self._path(parent))
            else:
                if not stat.S_ISDIR(st.st_mode or 0):
                    raise UnsafePath(self.name, rel, parent)
            self._dirs.add(parent)

    def _clear_dir(self, rel: str, expect: Key | None) -> None:
        if expect == (DIR,):
            self._expect(rel, expect)
            try:
                self.sftp.rmdir(self._path(rel))
            except OSError as e:
                raise Changed(rel) from e

    def _discard(self, tmp: str) -> None:
        with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
            self.sftp.remove(tmp)

    def _verify(self, tmp_rel: str, digest: str, written: int) -> None:
        """Check the guest's copy by its hash before it takes the file's name.

        Why: paramiko drops the error of a pipelined SFTP write when its answer arrives
        while another request is awaited (close, typically), so a write that hit a full
        disk can look complete. The agent hashes the copy in place (no bytes come back)."""
        got = self.agent.request("hash", [tmp_rel])["digests"].get(tmp_rel)
        if got != digest:
            raise OSError(f"the guest's copy differs from what was sent ({written} bytes)")

    def write_file(
        self, rel: str, src: BinaryIO, mode: int, mtime_ns: int, size: int, expect: Key | None
    ) -> tuple[Entry, str]:
        self._parents(rel)
        tmp_rel = _temp_name(rel)
        tmp = self._path(tmp_rel)
        try:
            with self.sftp.open(tmp, "wb") as f:
                f.set_pipelined(True)
                written, digest = _copy(src, f)  # type: ignore[arg-type]
            self._verify(tmp_rel, digest, written)
            self.sftp.chmod(tmp, mode)
            seconds = mtime_ns // 1_000_000_000
            self.sftp.utime(tmp, (seconds, seconds))
        except OSError as e:
            self._discard(tmp)
            if self.agent.alive and (free := self.free_space()) < size + DISK_MARGIN:
                raise DiskFull(self.name, rel, size, free) from e
            raise SyncError(f"writing {rel} in the guest failed: {e}") from e
        except BaseException:
            self._discard(tmp)
            raise
        try:
            self._clear_dir(rel, expect)
            self._expect(rel, None if expect == (DIR,) else expect)
            self.sftp.posix_rename(tmp, self._path(rel))
        except BaseException:
            self._discard(tmp)
            raise
        return Entry(FILE, written, seconds * 1_000_000_000, mode), digest

    def make_dir(self, rel: str, mode: int, expect: Key | None) -> Entry:
        self._parents(rel)
        if expect not in (None, (DIR,)):
            self.remove(rel, expect)
        try:
            self.sftp.mkdir(self._path(rel), mode)
        except OSError:
            if _key(self.stat([rel]).get(rel)) != (DIR,):
                raise
        self.sftp.chmod(self._path(rel), mode)
        self._dirs.add(rel)
        return Entry(DIR, mode=mode)

    def make_link(self, rel: str, target: str, expect: Key | None) -> Entry:
        self._parents(rel)
        tmp = self._path(_temp_name(rel))
        self.sftp.symlink(target, tmp)
        try:
            self._clear_dir(rel, expect)
            self._expect(rel, None if expect == (DIR,) else expect)
            self.sftp.posix_rename(tmp, self._path(rel))
        except BaseException:
            self._discard(tmp)
            raise
        return Entry(LINK, target=target)

    def remove(self, rel: str, expect: Key) -> None:
        self._expect(rel, expect)
        try:
            if expect == (DIR,):
                self.sftp.rmdir(self._path(rel))
                self._dirs.discard(rel)
            else:
                self.sftp.remove(self._path(rel))
        except FileNotFoundError:
            pass
        except OSError as e:
            if expect == (DIR,):
                raise Changed(rel) from e  # not empty: something new inside syncs first
            raise

    def rename(self, src: str, dst: str, expect: Key) -> None:
        self._parents(dst)
        self._expect(src, expect)
        self._expect(dst, None)
        self.sftp.rename(self._path(src), self._path(dst))  # OpenSSH: never replaces
