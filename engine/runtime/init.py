"""The container-setup sequence, run in the shim's forked child (the container's PID 1).

Everything this process will need is imported at the top: after pivot_root
the host's Python library is out of reach, so a lazy import would fail.

One ordered list of small steps; the order is the point, and each step's
comment says why it sits where it does. The shim has already unshared the PID
namespace (so this process is PID 1) and joined it to the container's cgroup.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import termios
from typing import NoReturn

from engine.runtime import capabilities, rootfs
from engine.runtime.command import CommandError, execute
from engine.runtime.reaper import run_reaper
from engine.runtime.spec import ContainerSpec
from engine.runtime.syscalls import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWUTS,
    Syscalls,
)
from engine.runtime.user import ExecUser, resolve, with_home

RLIMITS = {
    "cpu": 0,
    "fsize": 1,
    "data": 2,
    "stack": 3,
    "core": 4,
    "rss": 5,
    "nproc": 6,
    "nofile": 7,
    "memlock": 8,
    "as": 9,
    "locks": 10,
    "sigpending": 11,
    "msgqueue": 12,
    "nice": 13,
    "rtprio": 14,
    "rttime": 15,
}


def namespace_flags(spec: ContainerSpec) -> int:
    """Every namespace but the cgroup one, which must wait until we are in our cgroup,
    and the network one when we join a prepared one (see `join_network`)."""
    flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC
    if spec.network_mode != "host" and not spec.netns_path:
        flags |= CLONE_NEWNET
    return flags


def join_network(spec: ContainerSpec, sc: Syscalls) -> None:
    """Enter the network namespace the engine prepared (bridge networks: veths already
    plugged in; `container:<id>`: the other container's), so the process starts with its
    addresses in place. Before the mount namespace: the netns file is a host path, and
    sysfs mounted later must show this namespace's interfaces."""
    if not spec.netns_path or spec.network_mode == "host":
        return
    fd = sc.open_file(spec.netns_path)
    try:
        sc.setns(fd, CLONE_NEWNET)
    finally:
        sc.close(fd)


def prepare_filesystem(spec: ContainerSpec, sc: Syscalls) -> None:
    """Namespaces, then the whole mount tree, then pivot_root and the kernel knobs.

    Runs while the shim is still moving us into our cgroup (see `run`): no
    step here depends on which cgroup we are in.
    """
    join_network(spec, sc)
    sc.unshare(namespace_flags(spec))
    # UTS is ours now: naming it cannot touch the host.
    sc.sethostname(spec.hostname or spec.id[:12])
    if spec.domainname:
        sc.setdomainname(spec.domainname)
    # Before any mount: keep our mounts from propagating to the host.
    rootfs.make_root_slave(sc)
    # The image (layers + writable upper) becomes the future "/".
    rootfs.mount_overlay(sc, spec)
    # Kernel filesystems go on top of the overlay, while the host paths are
    # still reachable for /sys of a host-network container.
    rootfs.mount_proc(sc, spec.rootfs)
    rootfs.mount_sys(sc, spec.rootfs, spec.network_mode == "host")
    rootfs.mount_dev(sc, spec.rootfs, spec.shm_size)
    # User mounts need host sources, so they precede pivot_root; they follow
    # /dev and /proc so a volume on e.g. /dev/shm wins.
    rootfs.mount_all(sc, spec.rootfs, spec.mounts)
    rootfs.bind_etc_files(sc, spec.rootfs, spec)
    # Everything needing the host filesystem is done: switch roots and cut
    # the host tree off entirely.
    rootfs.pivot(sc, spec.rootfs)
    # Sysctls write /proc/sys, so they come before /proc/sys turns read-only.
    apply_sysctls(sc, spec.sysctls)
    if not spec.privileged:
        # Masks use the container's /dev/null, so they follow pivot_root.
        rootfs.mask_paths(sc)
        rootfs.readonly_paths(sc)
    # Last mount change: after it nothing more can be created in "/".
    if spec.readonly_rootfs:
        rootfs.remount_root_readonly(sc)
    apply_rlimits(sc, spec.ulimits)


def enter_cgroup_namespace(sc: Syscalls) -> None:
    """Only once the shim has joined us: the new namespace is rooted at the cgroup
    we are in when we unshare it, and that must be the container's own."""
    sc.unshare(CLONE_NEWCGROUP)


def apply_sysctls(sc: Syscalls, sysctls: dict[str, str]) -> None:
    for key, value in sorted(sysctls.items()):
        sc.write_file("/proc/sys/" + key.replace(".", "/"), value.encode())


def apply_rlimits(sc: Syscalls, ulimits: list[dict[str, object]]) -> None:
    for u in ulimits:
        name = str(u.get("Name", ""))
        if name not in RLIMITS:
            raise OSError(22, f"unknown ulimit {name!r}")
        sc.setrlimit(RLIMITS[name], int(str(u.get("Soft", 0))), int(str(u.get("Hard", 0))))


def resolve_user(sc: Syscalls, user: str) -> ExecUser:
    """After pivot_root: the image's /etc/passwd, never the host's."""
    return resolve(user, sc.read_file("/etc/passwd"), sc.read_file("/etc/group"))


def enter_cwd(sc: Syscalls, cwd: str) -> None:
    """Docker creates a missing WORKDIR; chdir while still root so 0700 dirs work."""
    path = cwd or "/"
    if not sc.isdir(path):
        sc.mkdir(path, 0o755)
    sc.chdir(path)


def become_user(sc: Syscalls, user: ExecUser, caps: int, no_new_privs: bool) -> None:
    """Bounding set first (needs CAP_SETPCAP), ids next (need SETUID/SETGID), caps last."""
    capabilities.drop_bounding(sc, caps, capabilities.last_cap())
    sc.setgroups(user.sgids)
    sc.setgid(user.gid)
    sc.setuid(user.uid)
    capabilities.apply_final(sc, caps, user.uid, no_new_privs)


def container_caps(spec: ContainerSpec, privileged: bool) -> int:
    """Never more than the engine itself holds: capset refuses to grant beyond the bounding
    set, and `--privileged` means "everything the engine has", as with Docker."""
    names = capabilities.effective_names(spec.cap_add, spec.cap_drop, privileged)
    return capabilities.mask(names) & capabilities.own_bounding_set()


def open_console(user: ExecUser) -> int:
    """A pty from the container's own devpts, so `tty` says /dev/pts/0.

    The slave becomes fds 0-2 and our controlling terminal; the master goes
    back to whoever owns the container's stdio.
    """
    master, slave = os.openpty()
    os.fchown(slave, user.uid, -1)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    return master


def reset_signals() -> None:
    """Python ignores SIGPIPE/SIGXFSZ; exec'd programs must start with defaults."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def exec_env(spec: ContainerSpec, user: ExecUser) -> list[str]:
    env = with_home(spec.env, user.home)
    if spec.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    return env


def exec_or_report(args: list[str], env: list[str], chan: socket.socket) -> NoReturn:
    """execve; on failure tell the shim why (the channel is CLOEXEC: EOF means success)."""
    try:
        execute(args, env)
    except CommandError as e:
        _send(chan, f"exec:{e.exit_code}:{e.message}".encode())
        os._exit(e.exit_code)


def _send(chan: socket.socket, data: bytes, fds: list[int] | None = None) -> None:
    try:
        if fds:
            socket.send_fds(chan, [data], fds)
        else:
            chan.send(data)
    except OSError:
        pass


def _expect(chan: socket.socket, word: bytes) -> None:
    got = chan.recv(64)
    if got != word:
        os._exit(1)  # the shim went away or changed its mind: never run


def run(spec: ContainerSpec, sc: Syscalls, chan: socket.socket) -> NoReturn:
    """Whole life of the container's first process: setup, hold, exec."""
    reset_signals()
    os.setsid()
    os.umask(0)  # modes of /dev nodes and dirs are exact; restored before exec
    try:
        # The filesystem first, while the shim makes our cgroup and moves us
        # in (it can take an RCU grace period); nothing of the image runs yet.
        prepare_filesystem(spec, sc)
        _expect(chan, b"joined")
        enter_cgroup_namespace(sc)
        user = resolve_user(sc, spec.user)
        master = open_console(user) if spec.tty else -1
        enter_cwd(sc, spec.cwd)
        become_user(sc, user, container_caps(spec, spec.privileged), not spec.privileged)
        env = exec_env(spec, user)
    except Exception as e:  # any setup failure is reported, never raised past fork
        _send(chan, f"error:{e}".encode())
        os._exit(1)
    _send(chan, b"ready", [master] if master >= 0 else None)
    if master >= 0:
        os.close(master)
    _expect(chan, b"go")
    os.umask(0o022)
    if spec.init:
        run_reaper(lambda: exec_or_report(spec.args, env, chan), chan)
    exec_or_report(spec.args, env, chan)
