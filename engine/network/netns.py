"""Named network namespaces kept alive by a bind mount on a file, like `ip netns add`.

A container's netns is prepared before its process exists (so the veths, the
addresses and the DNS listener are ready when it starts) and outlives it (so a
restart or a hot-plug finds it), hence a bind mount rather than a process
holding it. The path is any file, so it lives under the engine's own state
(`<exec_root>/netns/<id>`), not in the host's /run/netns.

A netns is made on a short-lived thread: unshare(CLONE_NEWNET) changes only the
calling thread, so the engine's own threads never leave the host's netns. A
mount namespace copied from ours while the netns is mounted (a container
starting at that moment) holds the netns a little longer, until that
container's init detaches its old root; nothing depends on it vanishing at once.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.network.netlink import Netlink
from engine.runtime.syscalls import CLONE_NEWNET, MNT_DETACH, MS_BIND, LinuxSyscalls

_SYS: LinuxSyscalls | None = None


def _sys() -> LinuxSyscalls:
    global _SYS
    if _SYS is None:
        _SYS = LinuxSyscalls()
    return _SYS


def create(path: Path) -> None:
    """A new netns with `lo` up, bind-mounted at `path`.

    EEXIST if a netns is already mounted there; a leftover plain file (a crash
    between the two steps) is reused.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if exists(path):
        raise OSError(errno.EEXIST, f"a network namespace is already mounted at {path}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
    os.close(fd)
    failure: list[BaseException] = []
    thread = threading.Thread(target=_make, args=(path, failure), name="netns-create")
    thread.start()
    thread.join()
    if failure:
        remove(path)
        raise failure[0]


def _make(path: Path, failure: list[BaseException]) -> None:
    """Runs on its own thread, which ends inside the new netns and takes it nowhere."""
    try:
        sys = _sys()
        sys.unshare(CLONE_NEWNET)
        sys.mount("/proc/thread-self/ns/net", str(path), "", MS_BIND, "")
        _lo_up()
    except BaseException as e:  # handed to the creating thread
        failure.append(e)


def _lo_up() -> None:
    with Netlink() as nl:
        lo = nl.require_link("lo")
        nl.set_link(lo.index, up=True, label="lo")


def remove(path: Path) -> None:
    """Unmount and delete the netns file; a missing or unmounted one is fine.

    The namespace itself goes once nothing else holds it (no process in it, no
    open fd, no other mount of it).
    """
    try:
        _sys().umount2(str(path), MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    path.unlink(missing_ok=True)


def exists(path: Path) -> bool:
    """True when `path` is a mounted netns (not a leftover plain file).

    Every namespace file lives on the one nsfs superblock, so its device
    number tells a mounted netns from the empty file under it.
    """
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except FileNotFoundError:
        return False


@contextmanager
def entered(path: Path) -> Iterator[None]:
    """The calling thread runs inside the netns at `path` until the block ends.

    Sockets made inside stay bound to that netns after the block. Only this
    thread moves (setns on a thread is per-thread for network namespaces), and
    it always moves back, even when the block raises.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise OSError(errno.ENOENT, f"no network namespace at {path}") from None
        try:
            _enter(target, path)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _sys().setns(own, CLONE_NEWNET)
    finally:
        os.close(own)


def _enter(fd: int, path: Path) -> None:
    try:
        _sys().setns(fd, CLONE_NEWNET)
    except OSError as e:
        raise OSError(
            e.errno, f"enter network namespace {path}: {os.strerror(e.errno or 0)}"
        ) from None
