"""V2Manager against a temp directory laid out like a pure cgroup v2 /sys/fs/cgroup.

The fixture plays the kernel: the root lists its controllers, and a new
cgroup gets the interface files with their defaults. Writes that need the
kernel's reaction (cgroup.events after cgroup.freeze) are simulated by the test.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from engine.cgroups import freezer
from engine.cgroups.manager import V2Manager, detect
from engine.errors import EngineError, InvalidParameter, NotFound
from engine.runtime.spec import Resources

MiB = 1 << 20
LEAF = {
    "memory.max": "max",
    "memory.swap.max": "max",
    "memory.current": str(9 * MiB),
    "memory.peak": str(11 * MiB),
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0",
    "cpu.max": "max 100000",
    "cpu.weight": "100",
    "cpu.stat": "usage_usec 2500\nuser_usec 2000\nsystem_usec 500",
    "pids.max": "max",
    "pids.current": "2",
    "cgroup.freeze": "0",
    "cgroup.events": "populated 1\nfrozen 0",
    "cgroup.kill": "",
    "cgroup.procs": "",
}


def fake_node(d: Path, controllers: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "cgroup.controllers").write_text(controllers + "\n")
    (d / "cgroup.subtree_control").write_text("\n")
    (d / "cgroup.procs").write_text("")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    fake_node(tmp_path, "cpuset cpu io memory hugetlb pids rdma misc")
    fake_node(tmp_path / "dockyard", "cpu io memory pids")
    return tmp_path


def kernel_makes(root: Path, cid: str) -> Path:
    d = root / "dockyard" / cid
    d.mkdir(parents=True, exist_ok=True)
    for name, value in LEAF.items():
        (d / name).write_text(value + "\n")
    return d


@pytest.fixture
def mgr(root: Path) -> V2Manager:
    m = detect("dockyard", root)
    assert isinstance(m, V2Manager)
    return m


def test_detect_picks_v2(root: Path) -> None:
    mgr = detect("dockyard", root)
    assert isinstance(mgr, V2Manager)
    assert mgr.version == "2"


def test_create_enables_controllers_top_down(root: Path, mgr: V2Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    # Only the wanted controllers the node offers, in one write.
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory +pids +io"
    assert (root / "dockyard" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids +io"
    assert not (root / "dockyard" / "c1" / "cgroup.subtree_control").exists()


def test_already_enabled_controllers_are_not_rewritten(root: Path, mgr: V2Manager) -> None:
    (root / "cgroup.subtree_control").write_text("cpu io memory pids\n")
    kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    assert (root / "cgroup.subtree_control").read_text() == "cpu io memory pids\n"


def test_only_offered_controllers_are_enabled(tmp_path: Path) -> None:
    fake_node(tmp_path, "hugetlb pids")  # like a hybrid host's unified hierarchy
    m = V2Manager("dockyard", tmp_path)
    m.create("c1", Resources())
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+pids"


def test_create_writes_limits(root: Path, mgr: V2Manager) -> None:
    d = kernel_makes(root, "c1")
    res = Resources(memory=64 * MiB, nano_cpus=1_500_000_000, cpu_shares=1024, pids_limit=7)
    mgr.create("c1", res)
    assert (d / "memory.max").read_text() == str(64 * MiB)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert (d / "cpu.weight").read_text() == "39"
    assert (d / "pids.max").read_text() == "7"


def test_update_to_unlimited(root: Path, mgr: V2Manager) -> None:
    d = kernel_makes(root, "c1")
    mgr.create("c1", Resources(memory=64 * MiB, memory_swap=96 * MiB, pids_limit=7))
    assert (d / "memory.swap.max").read_text() == str(32 * MiB)
    mgr.update("c1", Resources(pids_limit=-1))
    assert (d / "memory.max").read_text() == "max"
    assert (d / "pids.max").read_text() == "max"
    assert (d / "cpu.max").read_text() == "max 100000"


def test_update_of_unknown_container_is_not_found(mgr: V2Manager) -> None:
    with pytest.raises(NotFound):
        mgr.update("nope", Resources())


def test_bad_values_write_nothing(root: Path, mgr: V2Manager) -> None:
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        mgr.create("c1", Resources(memory=1))
    assert not (root / "dockyard" / "c1").exists()
    assert (root / "cgroup.subtree_control").read_text() == "\n"


def test_limit_without_controller_is_a_clear_error(tmp_path: Path) -> None:
    fake_node(tmp_path, "hugetlb")
    m = V2Manager("dockyard", tmp_path)
    with pytest.raises(EngineError, match=r"memory\.max"):
        m.create("c1", Resources(memory=64 * MiB))
    assert not (tmp_path / "dockyard" / "c1").exists()


def test_join_writes_the_leaf_only(root: Path, mgr: V2Manager) -> None:
    d = kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    mgr.join("c1", 777)
    assert mgr.procs_files("c1") == [d / "cgroup.procs"]
    assert (d / "cgroup.procs").read_text() == "777"
    assert (root / "dockyard" / "cgroup.procs").read_text() == ""


def test_freeze_waits_for_frozen_event(root: Path, mgr: V2Manager) -> None:
    d = kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    (d / "cgroup.events").write_text("populated 1\nfrozen 1\n")  # the kernel settled
    mgr.freeze("c1")
    assert (d / "cgroup.freeze").read_text() == "1"
    assert mgr.is_frozen("c1")


def test_freeze_that_never_settles_is_undone(
    root: Path, mgr: V2Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    monkeypatch.setattr(freezer, "SETTLE_TIMEOUT", 0.0)
    with pytest.raises(EngineError, match="did not settle"):
        mgr.freeze("c1")
    assert (d / "cgroup.freeze").read_text() == "0"


def test_thaw(root: Path, mgr: V2Manager) -> None:
    d = kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    mgr.thaw("c1")
    assert (d / "cgroup.freeze").read_text() == "0"
    assert not mgr.is_frozen("c1")


def test_oom_killed_reads_memory_events(root: Path, mgr: V2Manager) -> None:
    d = kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    assert not mgr.oom_killed("c1")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert mgr.oom_killed("c1")


def test_stats(root: Path, mgr: V2Manager) -> None:
    kernel_makes(root, "c1")
    mgr.create("c1", Resources(memory=64 * MiB, pids_limit=9))
    st = mgr.stats("c1")
    assert (st.memory_usage, st.memory_limit, st.memory_max_usage) == (9 * MiB, 64 * MiB, 11 * MiB)
    assert st.cpu_usage_ns == 2_500_000
    assert (st.pids_current, st.pids_limit) == (2, 9)


def test_kill_all_sigkill_uses_cgroup_kill(root: Path, mgr: V2Manager) -> None:
    d = kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    mgr.kill_all("c1", signal.SIGKILL)
    assert (d / "cgroup.kill").read_text() == "1"


def test_remove_is_idempotent_and_keeps_parent(root: Path, mgr: V2Manager) -> None:
    mgr.create("c1", Resources())
    mgr.remove("c1")
    mgr.remove("c1")
    assert not (root / "dockyard" / "c1").exists()
    assert (root / "dockyard").is_dir()


def test_thaw_of_a_cgroup_gone_with_its_container_is_quiet(root: Path, mgr: V2Manager) -> None:
    mgr.thaw("never-made")
    d = kernel_makes(root, "c1")
    mgr.create("c1", Resources())
    for f in d.iterdir():
        f.unlink()
    d.rmdir()  # gone between the lookup and the write, as the shim does it
    freezer.thaw_v2(d)
