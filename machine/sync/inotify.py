"""Linux inotify through ctypes (the guest has no third-party packages).

Only what the guest watcher needs: a non-blocking, close-on-exec instance, watches added
and removed, and the kernel's packed events decoded.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
)
_HEADER = struct.Struct("iIII")


@dataclass(frozen=True)
class Event:
    wd: int
    mask: int
    cookie: int
    name: str


def _libc() -> ctypes.CDLL:
    """The C library the interpreter already links (musl or glibc). Not
    ctypes.util.find_library: it runs ldconfig or a compiler, half a second per start."""
    return ctypes.CDLL(None, use_errno=True)


def decode(data: bytes) -> list[Event]:
    events: list[Event] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        raw = data[offset : offset + length].split(b"\0", 1)[0]
        offset += length
        events.append(Event(wd, mask, cookie, os.fsdecode(raw)))
    return events


class Inotify:
    """One inotify instance; `fd` is non-blocking, for select()."""

    def __init__(self) -> None:
        self._libc = _libc()
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd

    def add(self, path: str, mask: int = WATCH_MASK) -> int | None:
        """The watch descriptor, or None when the directory vanished or is not one."""
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd >= 0:
            return int(wd)
        err = ctypes.get_errno()
        if err in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
            return None
        if err == errno.ENOSPC:
            raise OSError(err, "out of inotify watches: raise fs.inotify.max_user_watches")
        raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")

    def remove(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self.fd, wd)  # EINVAL when already gone: fine

    def read(self) -> list[Event]:
        try:
            return decode(os.read(self.fd, 1 << 16))
        except BlockingIOError:
            return []

    def close(self) -> None:
        os.close(self.fd)
