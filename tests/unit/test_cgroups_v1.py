"""V1Manager against a temp directory laid out like a v1 (hybrid) /sys/fs/cgroup.

The "kernel" here is the fixture: it makes each controller root and, for a
container, the files the kernel would create in a new cgroup with their
default values. The tests check what the manager wrote.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cgroups import freezer
from engine.cgroups.manager import V1Manager, detect
from engine.errors import EngineError, InvalidParameter, NotFound
from engine.runtime.spec import Resources

MiB = 1 << 20
BIG = "9223372036854771712"
DEFAULTS = {
    "memory": {
        "memory.limit_in_bytes": BIG,
        "memory.memsw.limit_in_bytes": BIG,
        "memory.usage_in_bytes": str(5 * MiB),
        "memory.max_usage_in_bytes": str(7 * MiB),
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    },
    "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.shares": "1024"},
    "cpuacct": {"cpuacct.usage": "123456789"},
    "pids": {"pids.max": "max", "pids.current": "3"},
    "freezer": {"freezer.state": "THAWED"},
    "devices": {"devices.deny": "", "devices.allow": "", "devices.list": "a *:* rwm"},
}


def fake_cgroup(d: Path, files: dict[str, str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "cgroup.procs").write_text("")
    for name, value in files.items():
        (d / name).write_text(value + "\n")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for ctrl in (*DEFAULTS, "blkio", "systemd"):
        fake_cgroup(tmp_path / ctrl, {})
    (tmp_path / "unified").mkdir()
    return tmp_path


def kernel_makes(root: Path, cid: str, parent: str = "dockyard") -> None:
    for ctrl, files in DEFAULTS.items():
        fake_cgroup(root / ctrl / parent / cid, files)


def read(root: Path, ctrl: str, cid: str, name: str) -> str:
    return (root / ctrl / "dockyard" / cid / name).read_text().strip()


@pytest.fixture
def mgr(root: Path) -> V1Manager:
    m = detect("dockyard", root)
    assert isinstance(m, V1Manager)
    return m


def test_detect_picks_v1_for_hybrid_layout(root: Path) -> None:
    mgr = detect("dockyard", root)
    assert isinstance(mgr, V1Manager)
    assert mgr.version == "1"


def test_detect_refuses_an_empty_root(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="no usable cgroup hierarchy"):
        detect("dockyard", tmp_path)


def test_create_writes_every_limit(root: Path, mgr: V1Manager) -> None:
    kernel_makes(root, "c1")
    res = Resources(memory=64 * MiB, nano_cpus=500_000_000, cpu_shares=512, pids_limit=20)
    mgr.create("c1", res)
    assert read(root, "memory", "c1", "memory.limit_in_bytes") == str(64 * MiB)
    assert read(root, "memory", "c1", "memory.memsw.limit_in_bytes") == str(64 * MiB)
    assert read(root, "cpu", "c1", "cpu.cfs_period_us") == "100000"
    assert read(root, "cpu", "c1", "cpu.cfs_quota_us") == "50000"
    assert read(root, "cpu", "c1", "cpu.shares") == "512"
    assert read(root, "pids", "c1", "pids.max") == "20"


def test_create_makes_dirs_only_in_our_controllers(root: Path, mgr: V1Manager) -> None:
    mgr.create("c1", Resources())
    for ctrl in DEFAULTS:
        assert (root / ctrl / "dockyard" / "c1").is_dir()
    assert not (root / "blkio" / "dockyard").exists()
    assert not (root / "systemd" / "dockyard").exists()
    assert not (root / "unified" / "dockyard").exists()


def test_devices_deny_all_then_allow_the_list(root: Path, mgr: V1Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    assert read(root, "devices", "c1", "devices.deny") == "a"
    assert read(root, "devices", "c1", "devices.allow") == "c 10:200 rwm"  # the last rule
    kernel_makes(root, "c2")
    mgr.create("c2", Resources(all_devices=True))
    assert read(root, "devices", "c2", "devices.allow") == "a"
    assert read(root, "devices", "c2", "devices.deny") == ""


def test_unlimited_swap_and_update(root: Path, mgr: V1Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources(memory=64 * MiB, memory_swap=-1))
    assert read(root, "memory", "c1", "memory.memsw.limit_in_bytes") == "-1"
    mgr.update("c1", Resources(memory=128 * MiB, memory_swap=256 * MiB, pids_limit=-1))
    assert read(root, "memory", "c1", "memory.limit_in_bytes") == str(128 * MiB)
    assert read(root, "memory", "c1", "memory.memsw.limit_in_bytes") == str(256 * MiB)
    assert read(root, "pids", "c1", "pids.max") == "max"


def test_bad_values_write_nothing(root: Path, mgr: V1Manager) -> None:
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        mgr.create("c1", Resources(memory=4 * MiB))
    with pytest.raises(InvalidParameter, match="invalid PIDs limit"):
        mgr.create("c1", Resources(pids_limit=-5))
    assert not (root / "memory" / "dockyard").exists()


def test_bad_update_leaves_limits_alone(root: Path, mgr: V1Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources(memory=64 * MiB))
    with pytest.raises(InvalidParameter):
        mgr.update("c1", Resources(memory=-1))
    assert read(root, "memory", "c1", "memory.limit_in_bytes") == str(64 * MiB)


@pytest.mark.parametrize("cid", ["", "..", "a/b", "."])
def test_bad_ids_are_refused(mgr: V1Manager, cid: str) -> None:
    with pytest.raises(InvalidParameter, match="invalid container id"):
        mgr.create(cid, Resources())


def test_bad_parent_is_refused(root: Path) -> None:
    with pytest.raises(InvalidParameter, match="invalid cgroup parent"):
        V1Manager("/", root)
    with pytest.raises(InvalidParameter):
        V1Manager("a/../b", root)


def test_nested_parent(root: Path) -> None:
    m = V1Manager("/outer/inner", root)
    m.create("c1", Resources())
    assert (root / "pids" / "outer" / "inner" / "c1").is_dir()
    m.remove("c1")
    m.prune()
    assert not (root / "pids" / "outer").exists()


def test_limit_on_missing_controller_fails_and_rolls_back(root: Path, mgr: V1Manager) -> None:
    (root / "pids" / "cgroup.procs").unlink()
    (root / "pids").rmdir()
    with pytest.raises(EngineError, match=r"pids\.max"):
        mgr.create("c1", Resources(pids_limit=10))
    assert not (root / "memory" / "dockyard" / "c1").exists()
    mgr.create("c2", Resources())  # no pids limit asked: fine without the controller


def test_join_and_procs_files(root: Path, mgr: V1Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    mgr.join("c1", 4242)
    files = mgr.procs_files("c1")
    assert sorted(p.parent.parent.parent.name for p in files) == sorted(DEFAULTS)
    assert all(p.read_text() == "4242" for p in files)


def test_join_unknown_container_is_not_found(mgr: V1Manager) -> None:
    with pytest.raises(NotFound):
        mgr.join("nope", 1)


def test_freeze_thaw_writes_state(root: Path, mgr: V1Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    mgr.freeze("c1")
    assert read(root, "freezer", "c1", "freezer.state") == "FROZEN"
    assert mgr.is_frozen("c1")
    mgr.thaw("c1")
    assert not mgr.is_frozen("c1")


def test_oom_killed_reads_oom_control(root: Path, mgr: V1Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    assert not mgr.oom_killed("c1")
    oom = root / "memory" / "dockyard" / "c1" / "memory.oom_control"
    oom.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert mgr.oom_killed("c1")


def test_stats(root: Path, mgr: V1Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources(memory=64 * MiB, pids_limit=50))
    st = mgr.stats("c1")
    assert (st.memory_usage, st.memory_limit, st.memory_max_usage) == (5 * MiB, 64 * MiB, 7 * MiB)
    assert st.cpu_usage_ns == 123456789
    assert (st.pids_current, st.pids_limit) == (3, 50)
    assert st.system_cpu_usage_ns > 0 and st.online_cpus >= 1


def test_stats_unlimited_memory_shows_host_memory(root: Path, mgr: V1Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    assert 0 < mgr.stats("c1").memory_limit < int(BIG)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_kill_all_signals_listed_pids(
    root: Path, mgr: V1Manager, sleeper: subprocess.Popen[bytes]
) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    (root / "pids" / "dockyard" / "c1" / "cgroup.procs").write_text(f"{sleeper.pid}\n")
    assert mgr.pids("c1") == [sleeper.pid]
    mgr.kill_all("c1", signal.SIGTERM)
    assert sleeper.wait() == -signal.SIGTERM
    assert read(root, "freezer", "c1", "freezer.state") == "THAWED"


def test_remove_is_idempotent(root: Path, mgr: V1Manager) -> None:
    mgr.create("c1", Resources())
    mgr.remove("c1")
    mgr.remove("c1")
    mgr.remove("never-created")
    assert not any((root / c / "dockyard" / "c1").exists() for c in DEFAULTS)


def test_co_mounted_cpu_cpuacct_is_one_hierarchy(tmp_path: Path) -> None:
    for ctrl in ("memory", "cpu,cpuacct", "pids", "freezer"):
        fake_cgroup(tmp_path / ctrl, {})
    os.symlink("cpu,cpuacct", tmp_path / "cpu")
    os.symlink("cpu,cpuacct", tmp_path / "cpuacct")
    m = V1Manager("dockyard", tmp_path)
    assert [d.parent.parent.name for d in m.dirs("c1")] == ["memory", "cpu", "pids", "freezer"]
    m.create("c1", Resources())
    m.remove("c1")


def test_thaw_of_a_cgroup_gone_with_its_container_is_quiet(root: Path, mgr: V1Manager) -> None:
    """Its shim removes the cgroup as a container ends; a stop of a paused container may
    thaw just after (or while) that happens: nothing is frozen any more."""
    mgr.thaw("never-made")
    kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    mgr.freeze("c1")
    freezer_dir = root / "freezer" / "dockyard" / "c1"
    for f in freezer_dir.iterdir():
        f.unlink()
    freezer_dir.rmdir()  # gone between the lookup and the write, as the shim does it
    freezer.thaw_v1(freezer_dir)
