"""The container-setup order, checked against the recording syscall fake."""

from __future__ import annotations

from engine.runtime import init
from engine.runtime.capabilities import DEFAULT, mask
from engine.runtime.spec import Mount
from engine.runtime.syscalls import (
    CLONE_NEWNET,
    CLONE_NEWNS,
    MS_BIND,
    MS_RDONLY,
    MS_REMOUNT,
    PR_CAPBSET_DROP,
    PR_SET_NO_NEW_PRIVS,
    RecordingSyscalls,
)
from engine.runtime.user import ExecUser
from tests.runtime_specs import paper_spec


def index(calls: list[tuple[object, ...]], pred: object) -> int:
    for i, c in enumerate(calls):
        if pred(c):  # type: ignore[operator]
            return i
    raise AssertionError(f"no call matches in {calls}")


def mount_at(target: str):  # type: ignore[no-untyped-def]
    return lambda c: c[0] == "mount" and c[2] == target


def test_setup_order() -> None:
    sc = RecordingSyscalls(dirs={"/proc/acpi"}, files={"/proc/keys": b""})
    s = paper_spec(
        mounts=[Mount(target="/data", source="/src")], sysctls={"net.core.somaxconn": "1"}
    )
    init.prepare_filesystem(s, sc)
    calls = sc.calls
    assert calls[0][0] == "unshare" and calls[0][1] & CLONE_NEWNS and calls[0][1] & CLONE_NEWNET
    assert calls[1] == ("sethostname", "abcdef012345")
    order = [
        index(calls, mount_at("/")),
        index(calls, lambda c: c[0] == "mount" and c[3] == "overlay"),
        index(calls, mount_at("/nonexistent-rootfs/proc")),
        index(calls, mount_at("/nonexistent-rootfs/sys")),
        index(calls, mount_at("/nonexistent-rootfs/dev")),
        index(calls, mount_at("/nonexistent-rootfs/data")),
        index(calls, lambda c: c[0] == "pivot_root"),
        index(calls, lambda c: c[0] == "umount2"),
        index(calls, lambda c: c[0] == "write_file"),
        index(calls, mount_at("/proc/acpi")),
        index(calls, mount_at("/proc/keys")),
    ]
    assert order == sorted(order)
    overlay = calls[order[1]]
    assert overlay[5] == "lowerdir=/l2:/l1,upperdir=/u,workdir=/w"
    assert calls[order[8]] == ("write_file", "/proc/sys/net/core/somaxconn", b"1")
    assert calls[order[10]][1] == "/dev/null"  # a masked file gets /dev/null bound over it


def test_privileged_skips_masks_and_host_network_binds_sys() -> None:
    sc = RecordingSyscalls(dirs={"/proc/acpi"})
    init.prepare_filesystem(paper_spec(privileged=True, network_mode="host"), sc)
    assert not sc.calls[0][1] & CLONE_NEWNET
    assert not any(c[0] == "mount" and c[2] == "/proc/acpi" for c in sc.calls)
    sys_mount = next(c for c in sc.calls if c[0] == "mount" and c[2].endswith("/sys"))
    assert sys_mount[1] == "/sys" and sys_mount[4] & MS_BIND


def test_prepared_netns_is_joined_before_any_unshare() -> None:
    sc = RecordingSyscalls()
    init.prepare_filesystem(paper_spec(netns_path="/run/dy/netns/abc"), sc)
    assert sc.calls[:3] == [
        ("open_file", "/run/dy/netns/abc"),
        ("setns", 101, CLONE_NEWNET),
        ("close", 101),
    ]
    unshare = next(c for c in sc.calls if c[0] == "unshare")
    assert unshare[1] & CLONE_NEWNS and not unshare[1] & CLONE_NEWNET


def test_host_network_ignores_a_netns_path() -> None:
    sc = RecordingSyscalls()
    init.prepare_filesystem(paper_spec(network_mode="host", netns_path="/x"), sc)
    assert "setns" not in sc.names()


def test_readonly_rootfs_is_the_last_mount() -> None:
    sc = RecordingSyscalls()
    init.prepare_filesystem(paper_spec(readonly_rootfs=True), sc)
    mounts = [c for c in sc.calls if c[0] == "mount"]
    assert mounts[-1] == ("mount", "", "/", "", MS_BIND | MS_REMOUNT | MS_RDONLY, "")


def test_become_user_order() -> None:
    sc = RecordingSyscalls()
    caps = mask(DEFAULT)
    init.become_user(sc, ExecUser(uid=1000, gid=1000, sgids=[2000]), caps, True)
    names = sc.names()
    last_drop = max(
        i for i, c in enumerate(sc.calls) if c[0] == "prctl" and c[1] == PR_CAPBSET_DROP
    )
    assert last_drop < names.index("setgroups") < names.index("setgid") < names.index("setuid")
    assert names.index("setuid") < names.index("capset")
    assert sc.calls[names.index("capset")] == ("capset", 0, 0, 0)  # non-root: nothing effective
    assert sc.calls[-1] == ("prctl", PR_SET_NO_NEW_PRIVS, 1, 0)
    dropped = {c[2] for c in sc.calls if c[0] == "prctl" and c[1] == PR_CAPBSET_DROP}
    assert not dropped & {i for i in range(41) if caps & (1 << i)}


def test_root_keeps_default_caps_and_privileged_has_no_nnp() -> None:
    sc = RecordingSyscalls()
    init.become_user(sc, ExecUser(), mask(DEFAULT), False)
    assert ("capset", 0xA80425FB, 0xA80425FB, 0) in sc.calls
    assert not any(c[0] == "prctl" and c[1] == PR_SET_NO_NEW_PRIVS for c in sc.calls)


def test_ulimits() -> None:
    sc = RecordingSyscalls()
    init.apply_rlimits(sc, [{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
    assert sc.calls == [("setrlimit", 7, 1024, 2048)]
