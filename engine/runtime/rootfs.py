"""The container's filesystem view: overlay, /proc, /dev, /sys, mounts, pivot_root.

Every function takes the `Syscalls` seam so the order is unit-testable. All of
it runs inside the container's fresh mount namespace, so nothing here is ever
visible on (or left behind on) the host: when the last process of the
container exits, the namespace and every mount in it vanish.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat

from engine.runtime.spec import ContainerSpec, Mount
from engine.runtime.syscalls import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_SLAVE,
    MS_STRICTATIME,
    Syscalls,
)

# Docker's defaults (moby oci/defaults.go).
MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# name -> (major, minor); created with mknod, as runc does outside user namespaces.
DEVICES = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
DEV_SYMLINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
    "core": "/proc/kcore",
}
_FLAG_WORDS = {
    "ro": MS_RDONLY,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
}
_SAFE = MS_NOSUID | MS_NODEV | MS_NOEXEC


def secure_join(root: str, unsafe: str) -> str:
    """root + unsafe with every symlink resolved as if root were "/".

    A symlink in an image (or a volume) must never send a mount target, or a
    created directory, outside the container's rootfs.
    """
    parts = [p for p in unsafe.split("/") if p]
    resolved = ""
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            resolved = resolved.rsplit("/", 1)[0]
            continue
        candidate = f"{resolved}/{part}"
        try:
            st = os.lstat(root + candidate)
        except OSError:
            resolved = candidate
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved = candidate
            continue
        hops += 1
        if hops > 255:
            raise OSError(40, f"too many symlinks under {root}: {unsafe}")
        target = os.readlink(root + candidate)
        if target.startswith("/"):
            resolved = ""
        parts = [p for p in target.split("/") if p] + parts
    return root.rstrip("/") + (resolved or "/")


def make_root_slave(sc: Syscalls) -> None:
    """Host mounts may still propagate in, but nothing we mount leaks out."""
    sc.mount("", "/", "", MS_SLAVE | MS_REC, "")


def overlay_data(spec: ContainerSpec) -> str:
    lower = ":".join(spec.lowerdirs)
    return f"lowerdir={lower},upperdir={spec.upperdir},workdir={spec.workdir}"


def mount_overlay(sc: Syscalls, spec: ContainerSpec) -> None:
    sc.mount("overlay", spec.rootfs, "overlay", 0, overlay_data(spec))


def mount_proc(sc: Syscalls, rootfs: str) -> None:
    """A fresh proc shows only the container's PID namespace."""
    target = secure_join(rootfs, "/proc")
    sc.mkdir(target, 0o555)
    sc.mount("proc", target, "proc", _SAFE, "")


def mount_sys(sc: Syscalls, rootfs: str, host_network: bool) -> None:
    """sysfs shows the mounter's network namespace, so host networking binds the host's."""
    target = secure_join(rootfs, "/sys")
    sc.mkdir(target, 0o555)
    if host_network:
        sc.mount("/sys", target, "", MS_BIND | MS_REC, "")
        sc.mount("", target, "", MS_BIND | MS_REMOUNT | MS_RDONLY | _SAFE, "")
    else:
        sc.mount("sysfs", target, "sysfs", MS_RDONLY | _SAFE, "")


def mount_dev(sc: Syscalls, rootfs: str, shm_size: int) -> None:
    """A private /dev with only the nodes Docker gives; no host device leaks in."""
    dev = secure_join(rootfs, "/dev")
    sc.mkdir(dev, 0o755)
    sc.mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k")
    for name, (major, minor) in DEVICES.items():
        sc.mknod(f"{dev}/{name}", stat.S_IFCHR | 0o666, os.makedev(major, minor))
    for name, target in DEV_SYMLINKS.items():
        sc.symlink(target, f"{dev}/{name}")
    sc.mkdir(f"{dev}/pts", 0o755)
    sc.mount(
        "devpts",
        f"{dev}/pts",
        "devpts",
        MS_NOSUID | MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )
    sc.mkdir(f"{dev}/shm", 0o1777)
    sc.mount("shm", f"{dev}/shm", "tmpfs", _SAFE, f"mode=1777,size={shm_size}")
    sc.mkdir(f"{dev}/mqueue", 0o755)
    # Optional: kernels without POSIX mqueue still run containers.
    with contextlib.suppress(OSError):
        sc.mount("mqueue", f"{dev}/mqueue", "mqueue", _SAFE, "")


def tmpfs_options(options: list[str]) -> tuple[int, str]:
    """Split Docker's tmpfs options into mount flags and fs data."""
    flags = MS_NOSUID | MS_NODEV
    data: list[str] = []
    for opt in options:
        if opt in _FLAG_WORDS:
            flags |= _FLAG_WORDS[opt]
        elif opt == "rw":
            flags &= ~MS_RDONLY
        elif opt in ("exec", "suid", "dev"):
            flags &= ~_FLAG_WORDS["no" + opt]
        else:
            data.append(opt)
    return flags, ",".join(data)


def _make_target(sc: Syscalls, target: str, as_dir: bool) -> None:
    if sc.lexists(target):
        return
    if as_dir:
        sc.mkdir(target, 0o755)
    else:
        sc.mkdir(posixpath.dirname(target), 0o755)
        sc.touch(target)


def mount_one(sc: Syscalls, rootfs: str, m: Mount) -> None:
    target = secure_join(rootfs, m.target)
    if m.kind == "tmpfs":
        _make_target(sc, target, True)
        flags, data = tmpfs_options(m.options)
        if m.readonly:
            flags |= MS_RDONLY
        sc.mount("tmpfs", target, "tmpfs", flags, data)
        return
    if m.kind not in ("bind", "volume"):
        raise OSError(22, f"unsupported mount type {m.kind!r} for {m.target}")
    _make_target(sc, target, sc.isdir(m.source))
    sc.mount(m.source, target, "", MS_BIND | MS_REC, "")
    if m.readonly:
        sc.mount("", target, "", MS_BIND | MS_REMOUNT | MS_RDONLY, "")


def mount_all(sc: Syscalls, rootfs: str, mounts: list[Mount]) -> None:
    """Parents before children, as Docker sorts them, so nested mounts stack right."""
    for m in sorted(mounts, key=lambda m: len([p for p in m.target.split("/") if p])):
        mount_one(sc, rootfs, m)


def bind_etc_files(sc: Syscalls, rootfs: str, spec: ContainerSpec) -> None:
    """The engine's hosts/hostname/resolv.conf replace the image's."""
    for name, source in (
        ("hosts", spec.hosts_path),
        ("hostname", spec.hostname_path),
        ("resolv.conf", spec.resolv_conf_path),
    ):
        if source:
            target = secure_join(rootfs, f"/etc/{name}")
            _make_target(sc, target, False)
            sc.mount(source, target, "", MS_BIND, "")


def pivot(sc: Syscalls, rootfs: str) -> None:
    """pivot_root(".", ".") as runc does it: no put_old directory in the image.

    The old root ends up stacked on the new one; fchdir to it, make it a
    slave so detaching does not propagate to the host, then detach it.
    """
    old = sc.open_dir("/")
    new = sc.open_dir(rootfs)
    try:
        sc.fchdir(new)
        sc.pivot_root(".", ".")
        sc.fchdir(old)
        sc.mount("", ".", "", MS_SLAVE | MS_REC, "")
        sc.umount2(".", MNT_DETACH)
    finally:
        sc.close(old)
        sc.close(new)
    sc.chdir("/")


def mask_paths(sc: Syscalls) -> None:
    """Hide kernel files that leak host data or offer host control (Docker's list)."""
    for path in MASKED_PATHS:
        if sc.isdir(path):
            sc.mount("tmpfs", path, "tmpfs", MS_RDONLY, "")
        elif sc.lexists(path):
            sc.mount("/dev/null", path, "", MS_BIND, "")


def readonly_paths(sc: Syscalls) -> None:
    for path in READONLY_PATHS:
        if sc.lexists(path):
            sc.mount(path, path, "", MS_BIND | MS_REC, "")
            sc.mount("", path, "", MS_BIND | MS_REMOUNT | MS_RDONLY | _SAFE, "")


def remount_root_readonly(sc: Syscalls) -> None:
    sc.mount("", "/", "", MS_BIND | MS_REMOUNT | MS_RDONLY, "")
