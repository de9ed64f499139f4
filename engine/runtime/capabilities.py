"""Which capabilities a container gets, and how they are applied.

The set follows Docker (moby's TweakCapabilities): the default 14, `--cap-add`
/ `--cap-drop` by name with or without "CAP_" and the word "ALL", every known
capability when privileged. Applying follows runc: drop the bounding set while
still fully privileged, keep the permitted set across setuid, then capset.
Like Docker since 20.10.14, the inheritable set stays empty and a non-root user
gets nothing effective (its caps live only in the bounding set).
"""

from __future__ import annotations

from engine.errors import InvalidParameter
from engine.runtime.syscalls import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAPBSET_DROP,
    PR_SET_KEEPCAPS,
    PR_SET_NO_NEW_PRIVS,
    Syscalls,
)

NAMES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]
NUMBER = {"CAP_" + name: i for i, name in enumerate(NAMES)}

DEFAULT = [
    "CAP_" + n
    for n in [
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    ]
]


def normalize(name: str) -> str:
    """ "net_admin", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "all" -> "ALL"; unknown -> 400."""
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in NUMBER:
        raise InvalidParameter(f'unknown capability: "{name}"')
    return full


def effective_names(cap_add: list[str], cap_drop: list[str], privileged: bool) -> list[str]:
    """The container's capability names, in Docker's order of precedence."""
    if privileged:
        return list(NUMBER)
    adds = [normalize(c) for c in cap_add]
    drops = [normalize(c) for c in cap_drop]
    if "ALL" in adds:
        return [c for c in NUMBER if c not in drops]
    if "ALL" in drops:
        return list(dict.fromkeys(adds))
    kept = [c for c in DEFAULT if c not in drops]
    return list(dict.fromkeys(kept + adds))


def mask(names: list[str]) -> int:
    bits = 0
    for name in names:
        bits |= 1 << NUMBER[name]
    return bits


def own_bounding_set() -> int:
    """This process's bounding set (CapBnd); all bits if it cannot be read."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << 64) - 1


def last_cap() -> int:
    """The kernel's highest capability; dropping beyond it fails with EINVAL."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def drop_bounding(sc: Syscalls, keep: int, last: int) -> None:
    """Shrink the bounding set; needs CAP_SETPCAP, so it runs before any other drop."""
    for cap in range(last + 1):
        if not keep & (1 << cap):
            sc.prctl(PR_CAPBSET_DROP, cap)
    # Keep the permitted set across setuid so capset can still pick from it.
    sc.prctl(PR_SET_KEEPCAPS, 1)


def apply_final(sc: Syscalls, keep: int, uid: int, no_new_privs: bool) -> None:
    """After setuid: set effective/permitted, clear ambient, then no_new_privs."""
    sc.prctl(PR_SET_KEEPCAPS, 0)
    sc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    granted = keep if uid == 0 else 0
    sc.capset(granted, granted, 0)
    if no_new_privs:
        sc.prctl(PR_SET_NO_NEW_PRIVS, 1)
