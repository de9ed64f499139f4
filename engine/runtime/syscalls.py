"""The seam between the container-setup steps and the kernel.

Every effect the init sequence has on the kernel or the container's files goes
through one `Syscalls` object, so the order of the steps (which matters:
unshare before mount, mount before pivot_root, caps before exec ...) is a plain
unit test against `RecordingSyscalls`, while `LinuxSyscalls` does it for real.
Python 3.11 has no os.unshare/os.setns, hence ctypes on libc; pivot_root and
capset have no glibc wrapper, hence syscall(2) with per-arch numbers.
"""

from __future__ import annotations

import ctypes
import os
import resource as _resource
from typing import Any, Protocol

# clone(2) namespace flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# prctl(2) options
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# (pivot_root, capget, capset) per machine; the generic table covers arm64/riscv.
_SYSCALL_NUMBERS = {
    "x86_64": (155, 125, 126),
    "aarch64": (41, 90, 91),
    "riscv64": (41, 90, 91),
    "armv7l": (218, 184, 185),
}


class Syscalls(Protocol):
    """Everything the init sequence does to the kernel, one method per call."""

    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int) -> None: ...
    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None: ...
    def umount2(self, target: str, flags: int) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def sethostname(self, name: str) -> None: ...
    def setdomainname(self, name: str) -> None: ...
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> int: ...
    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def mknod(self, path: str, mode: int, device: int) -> None: ...
    def mkdir(self, path: str, mode: int) -> None: ...
    def touch(self, path: str) -> None: ...
    def symlink(self, target: str, path: str) -> None: ...
    def chdir(self, path: str) -> None: ...
    def open_dir(self, path: str) -> int: ...
    def open_file(self, path: str) -> int: ...
    def fchdir(self, fd: int) -> None: ...
    def close(self, fd: int) -> None: ...
    def chroot(self, path: str) -> None: ...
    def write_file(self, path: str, data: bytes) -> None: ...
    def read_file(self, path: str) -> bytes | None: ...
    def lexists(self, path: str) -> bool: ...
    def isdir(self, path: str) -> bool: ...
    def setrlimit(self, resource: int, soft: int, hard: int) -> None: ...
    def setgroups(self, gids: list[int]) -> None: ...
    def setgid(self, gid: int) -> None: ...
    def setuid(self, uid: int) -> None: ...


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


class LinuxSyscalls:
    """The real thing: ctypes on libc for what os lacks, os for the rest."""

    def __init__(self) -> None:
        self._c = _libc()
        self._c.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
        self._c.syscall.restype = ctypes.c_long
        self._c.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        self._nr = _SYSCALL_NUMBERS.get(os.uname().machine, _SYSCALL_NUMBERS["aarch64"])

    def _check(self, rc: int, what: str) -> int:
        if rc < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return rc

    def unshare(self, flags: int) -> None:
        self._check(self._c.unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int) -> None:
        self._check(self._c.setns(fd, nstype), "setns")

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        rc = self._c.mount(
            source.encode() or None,
            target.encode(),
            fstype.encode() or None,
            flags,
            data.encode() or None,
        )
        self._check(rc, f"mount {fstype or 'bind'} {source} on {target}")

    def umount2(self, target: str, flags: int) -> None:
        self._check(self._c.umount2(target.encode(), flags), f"umount {target}")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        rc = self._c.syscall(self._nr[0], new_root.encode(), put_old.encode())
        self._check(rc, "pivot_root")

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        self._check(self._c.sethostname(raw, len(raw)), "sethostname")

    def setdomainname(self, name: str) -> None:
        raw = name.encode()
        self._check(self._c.setdomainname(raw, len(raw)), "setdomainname")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> int:
        return self._check(self._c.prctl(option, arg2, arg3, 0, 0), f"prctl {option}")

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (ctypes.c_uint32 * 6)(
            effective & 0xFFFFFFFF,
            permitted & 0xFFFFFFFF,
            inheritable & 0xFFFFFFFF,
            effective >> 32,
            permitted >> 32,
            inheritable >> 32,
        )
        self._check(self._c.syscall(self._nr[2], header, data), "capset")

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)

    def mkdir(self, path: str, mode: int) -> None:
        os.makedirs(path, mode, exist_ok=True)

    def touch(self, path: str) -> None:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def open_dir(self, path: str) -> int:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def open_file(self, path: str) -> int:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def fchdir(self, fd: int) -> None:
        os.fchdir(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def chroot(self, path: str) -> None:
        os.chroot(path)

    def write_file(self, path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def read_file(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def lexists(self, path: str) -> bool:
        return os.path.lexists(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        _resource.setrlimit(resource, (soft, hard))

    def setgroups(self, gids: list[int]) -> None:
        os.setgroups(gids)

    def setgid(self, gid: int) -> None:
        os.setgid(gid)

    def setuid(self, uid: int) -> None:
        os.setuid(uid)


class RecordingSyscalls:
    """A fake that records each call as (name, args...) and touches nothing.

    `files` answers read_file, `dirs` answers isdir/lexists, so steps that
    look before they leap can be steered by a test.
    """

    def __init__(self, files: dict[str, bytes] | None = None, dirs: set[str] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.files = files or {}
        self.dirs = dirs or set()

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def unshare(self, flags: int) -> None:
        self.calls.append(("unshare", flags))

    def setns(self, fd: int, nstype: int) -> None:
        self.calls.append(("setns", fd, nstype))

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        self.calls.append(("mount", source, target, fstype, flags, data))

    def umount2(self, target: str, flags: int) -> None:
        self.calls.append(("umount2", target, flags))

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self.calls.append(("pivot_root", new_root, put_old))

    def sethostname(self, name: str) -> None:
        self.calls.append(("sethostname", name))

    def setdomainname(self, name: str) -> None:
        self.calls.append(("setdomainname", name))

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> int:
        self.calls.append(("prctl", option, arg2, arg3))
        return 0

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self.calls.append(("capset", effective, permitted, inheritable))

    def mknod(self, path: str, mode: int, device: int) -> None:
        self.calls.append(("mknod", path, mode, device))

    def mkdir(self, path: str, mode: int) -> None:
        self.calls.append(("mkdir", path, mode))

    def touch(self, path: str) -> None:
        self.calls.append(("touch", path))

    def symlink(self, target: str, path: str) -> None:
        self.calls.append(("symlink", target, path))

    def chdir(self, path: str) -> None:
        self.calls.append(("chdir", path))

    def open_dir(self, path: str) -> int:
        self.calls.append(("open_dir", path))
        return 100 + len(self.calls)

    def open_file(self, path: str) -> int:
        self.calls.append(("open_file", path))
        return 100 + len(self.calls)

    def fchdir(self, fd: int) -> None:
        self.calls.append(("fchdir", fd))

    def close(self, fd: int) -> None:
        self.calls.append(("close", fd))

    def chroot(self, path: str) -> None:
        self.calls.append(("chroot", path))

    def write_file(self, path: str, data: bytes) -> None:
        self.calls.append(("write_file", path, data))

    def read_file(self, path: str) -> bytes | None:
        return self.files.get(path)

    def lexists(self, path: str) -> bool:
        return path in self.dirs or path in self.files

    def isdir(self, path: str) -> bool:
        return path in self.dirs

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        self.calls.append(("setrlimit", resource, soft, hard))

    def setgroups(self, gids: list[int]) -> None:
        self.calls.append(("setgroups", list(gids)))

    def setgid(self, gid: int) -> None:
        self.calls.append(("setgid", gid))

    def setuid(self, uid: int) -> None:
        self.calls.append(("setuid", uid))
