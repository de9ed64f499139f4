"""The guest half of file-event replay for 9p and virtiofs shares (standard library only).

Why it exists: a 9p or virtiofs mount shows host-side changes to the guest when it next
looks, but the guest kernel never learns that they happened, so an inotify watch in a
container that bind-mounts the folder stays silent. Only an operation made *in the guest*
on that mount raises an inotify event there. The host watches the folder and sends this
agent one JSON line per change (over SSH: `python3 -u -c <this file>`); the agent makes
the smallest guest operation that raises a real event, without changing the file's bytes:

  touch {"path", "mtime_ns"}  (host create or modify)
      utimensat(atime=UTIME_OMIT, mtime=<the file's own mtime>): the kernel reports a
      change of mtime alone as IN_MODIFY. Content, size and mtime stay as they are; only
      ctime moves. The mtime is the newer of the host's and the guest's view, because a
      virtiofs guest may hold attributes cached for up to a second.
  gone {"path", "dir"}  (host delete, or the old name of a rename)
      the name is already gone, so nothing can be removed; a placeholder is made under
      that name with O_EXCL and mode 000 and removed at once: IN_CREATE then IN_DELETE.
      O_EXCL never takes over a file the user re-created; mode 000 makes a non-root host
      program that opens the name in the same instant fail instead of writing into the
      placeholder; and the removal checks that the name is still our empty placeholder.

Limits (documented in docs/shares.md): a host create arrives as IN_MODIFY on the new name,
not IN_CREATE (the name already exists on the shared file system, and the kernel has no
way to announce an existing name); a read-only share gets no events (every operation
above is a write); one placeholder create+delete is briefly visible on the host.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys

UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc = ctypes.CDLL(None, use_errno=True)


def set_mtime(path: str, mtime_ns: int) -> None:
    """utimensat with atime left alone: the kernel's fsnotify reports it as IN_MODIFY."""
    times = (Timespec * 2)(
        Timespec(0, UTIME_OMIT), Timespec(mtime_ns // 1_000_000_000, mtime_ns % 1_000_000_000)
    )
    if _libc.utimensat(AT_FDCWD, os.fsencode(path), times, AT_SYMLINK_NOFOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)


def touch(path: str, mtime_ns: int) -> str:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    set_mtime(path, max(st.st_mtime_ns, mtime_ns))
    return "touched"


def gone(path: str, is_dir: bool) -> str:
    if os.path.lexists(path):
        return "exists"  # re-created since: its own event follows
    try:
        if is_dir:
            os.mkdir(path, 0)
            ours = os.lstat(path)
        else:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0)
            ours = os.fstat(fd)
            os.close(fd)
    except FileExistsError:
        return "exists"
    except FileNotFoundError:
        return "no parent"  # its folder went too; the folder's own event covers it
    now = os.lstat(path)
    if (now.st_ino, now.st_dev) != (ours.st_ino, ours.st_dev) or (now.st_size and not is_dir):
        return "taken"
    (os.rmdir if is_dir else os.unlink)(path)
    return "replayed"


def apply(op: dict[str, object]) -> str:
    path = str(op["path"])
    if op["op"] == "touch":
        return touch(path, int(str(op.get("mtime_ns", 0))))
    if op["op"] == "gone":
        return gone(path, bool(op.get("dir")))
    raise ValueError(f"unknown op {op['op']!r}")


def main() -> None:
    for line in sys.stdin:
        try:
            result = apply(json.loads(line))
        except (OSError, ValueError, KeyError) as e:
            code = errno.errorcode.get(getattr(e, "errno", 0) or 0, "")
            result = f"error {code} {e}"
        print(result, flush=True)


if __name__ == "__main__":
    main()
