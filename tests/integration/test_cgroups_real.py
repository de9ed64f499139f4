"""The cgroup managers on this host's real hierarchies, as root.

v1: the hybrid layout's per-controller hierarchies under /sys/fs/cgroup.
v2: this host's cgroup2 mount (/sys/fs/cgroup/unified) offers no cpu/memory/pids
controllers (they are bound to v1), so only v2's core features are tested for
real here -- cgroup.procs, cgroup.freeze/events, cgroup.kill, rmdir -- and the
limit files are covered by the unit tests on a fake v2 tree.

Every test uses the parent "dockyard-test-cg"; the fixtures kill the processes
they started (by PID) and remove every cgroup, even on failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from engine.cgroups.base import BaseManager
from engine.cgroups.manager import V1Manager, V2Manager, detect
from engine.errors import EngineError
from engine.runtime.spec import Resources

PARENT = "dockyard-test-cg"
ROOT = Path("/sys/fs/cgroup")
UNIFIED = ROOT / "unified"
MiB = 1 << 20

Spawn = Callable[..., "subprocess.Popen[str]"]

needs_v1 = pytest.mark.skipif(
    not (ROOT / "memory" / "cgroup.procs").is_file(), reason="no v1 memory hierarchy here"
)
needs_unified = pytest.mark.skipif(
    not (UNIFIED / "cgroup.controllers").is_file(), reason="no cgroup2 mount at unified/"
)


def cleanup(mgr: BaseManager, cids: list[str]) -> None:
    for cid in cids:
        mgr.remove(cid)
    mgr.prune()


@pytest.fixture
def v1() -> Iterator[V1Manager]:
    mgr = detect(PARENT)
    assert isinstance(mgr, V1Manager), "this host is documented as v1 hybrid"
    try:
        yield mgr
    finally:
        cleanup(mgr, ["limits", "proc", "oom", "forks", "stats", "gone", "term"])


@pytest.fixture
def v2() -> Iterator[V2Manager]:
    mgr = V2Manager(PARENT, UNIFIED)
    try:
        yield mgr
    finally:
        cleanup(mgr, ["core", "limited"])


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a process that joins the given cgroup files before exec, like the runtime will."""
    started: list[subprocess.Popen[str]] = []

    def run(argv: list[str], procs_files: Sequence[Path] = ()) -> subprocess.Popen[str]:
        def enter() -> None:
            for f in procs_files:
                fd = os.open(f, os.O_WRONLY)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)

        proc = subprocess.Popen(
            argv, preexec_fn=enter, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.append(proc)
        return proc

    try:
        yield run
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def in_cgroups(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return {ctrl: path for _, ctrl, path in (line.split(":", 2) for line in lines)}


@needs_v1
def test_create_applies_limits(v1: V1Manager) -> None:
    v1.create(
        "limits", Resources(memory=64 * MiB, nano_cpus=500_000_000, cpu_shares=512, pids_limit=20)
    )
    mem = ROOT / "memory" / PARENT / "limits"
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(64 * MiB)
    if (mem / "memory.memsw.limit_in_bytes").exists():
        assert (mem / "memory.memsw.limit_in_bytes").read_text().strip() == str(64 * MiB)
    cpu = ROOT / "cpu" / PARENT / "limits"
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (cpu / "cpu.shares").read_text().strip() == "512"
    assert (ROOT / "pids" / PARENT / "limits" / "pids.max").read_text().strip() == "20"


@needs_v1
def test_update_raises_and_lowers_memory_and_swap(v1: V1Manager) -> None:
    """memory <= memsw must hold after every single write; the manager orders them."""
    mem = ROOT / "memory" / PARENT / "limits"
    v1.create("limits", Resources(memory=32 * MiB))
    v1.update("limits", Resources(memory=128 * MiB, memory_swap=256 * MiB))
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(128 * MiB)
    v1.update("limits", Resources(memory=16 * MiB))
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(16 * MiB)
    v1.update("limits", Resources())
    assert int((mem / "memory.limit_in_bytes").read_text()) > 1 << 60


@needs_v1
def test_join_freeze_thaw_and_pids(v1: V1Manager, spawn: Spawn) -> None:
    v1.create("proc", Resources())
    proc = spawn(["sleep", "60"])
    v1.join("proc", proc.pid)
    paths = in_cgroups(proc.pid)
    for ctrl in ("memory", "cpu", "cpuacct", "pids", "freezer", "devices"):
        assert paths[ctrl] == f"/{PARENT}/proc"
    assert paths["blkio"] == "/"  # controllers we do not use are left alone
    assert v1.pids("proc") == [proc.pid]
    v1.freeze("proc")
    assert v1.is_frozen("proc")
    assert "D (disk sleep)" in Path(f"/proc/{proc.pid}/status").read_text()
    v1.thaw("proc")
    assert not v1.is_frozen("proc")
    assert "S (sleeping)" in Path(f"/proc/{proc.pid}/status").read_text()


@needs_v1
def test_kill_all_sends_the_signal(v1: V1Manager, spawn: Spawn) -> None:
    v1.create("term", Resources())
    proc = spawn(["sleep", "60"], v1.procs_files("term"))
    v1.kill_all("term", signal.SIGTERM)
    assert proc.wait() == -signal.SIGTERM
    assert not v1.is_frozen("term")


@needs_v1
def test_memory_hog_is_oom_killed(v1: V1Manager, spawn: Spawn) -> None:
    v1.create("oom", Resources(memory=32 * MiB))
    assert not v1.oom_killed("oom")
    hog = spawn([sys.executable, "-c", "b = b'x' * (200 << 20)"], v1.procs_files("oom"))
    assert hog.wait() == -signal.SIGKILL
    assert v1.oom_killed("oom")


FORK_LOOP = """
import os, signal
children = []
while True:
    try:
        pid = os.fork()
    except BlockingIOError:
        break
    if pid == 0:
        signal.pause()
        os._exit(0)
    children.append(pid)
    if len(children) > 100:
        break
print(len(children), flush=True)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
"""


@needs_v1
def test_pids_max_stops_a_fork_loop(v1: V1Manager, spawn: Spawn) -> None:
    """Children forked later by a joined process count against pids.max."""
    v1.create("forks", Resources(pids_limit=10))
    loop = spawn([sys.executable, "-c", FORK_LOOP], v1.procs_files("forks"))
    out, err = loop.communicate()
    assert loop.returncode == 0, err
    assert int(out) == 9  # the loop itself is the tenth


@needs_v1
def test_stats_are_real_numbers(v1: V1Manager, spawn: Spawn) -> None:
    v1.create("stats", Resources(memory=64 * MiB, pids_limit=30))
    script = "b = b'x' * (8 << 20); sum(range(3_000_000)); print('ready', flush=True); input()"
    proc = spawn([sys.executable, "-c", script], v1.procs_files("stats"))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    st = v1.stats("stats")
    # usage can dip below the 8 MiB held (this host's kernel reclaims oddly); the peak cannot
    assert st.memory_usage > 0 and st.memory_max_usage >= 8 * MiB
    assert st.memory_limit == 64 * MiB
    assert st.cpu_usage_ns > 0 and st.system_cpu_usage_ns > st.cpu_usage_ns
    assert (st.pids_current, st.pids_limit) == (1, 30)
    assert st.online_cpus >= 1


@needs_v1
def test_remove_kills_leftovers_and_leaves_no_directory(v1: V1Manager, spawn: Spawn) -> None:
    v1.create("gone", Resources(memory=32 * MiB))
    proc = spawn(["sleep", "60"], v1.procs_files("gone"))
    v1.freeze("gone")  # even a paused container is removable
    v1.remove("gone")
    assert proc.wait() == -signal.SIGKILL
    assert not any(d.exists() for d in v1.dirs("gone"))
    v1.remove("gone")


@needs_unified
def test_v2_core_on_the_real_cgroup2_mount(v2: V2Manager, spawn: Spawn) -> None:
    v2.create("core", Resources())
    proc = spawn(["sleep", "60"])
    v2.join("core", proc.pid)
    assert in_cgroups(proc.pid)[""] == f"/{PARENT}/core"
    assert v2.pids("core") == [proc.pid]
    v2.freeze("core")
    assert v2.is_frozen("core")
    v2.thaw("core")
    assert not v2.is_frozen("core")
    assert v2.stats("core").pids_current == 0  # no pids controller delegated here
    v2.remove("core")  # SIGKILL through cgroup.kill
    assert proc.wait() == -signal.SIGKILL
    assert not v2.dir("core").exists()


@needs_unified
def test_v2_limit_without_the_controller_is_refused(v2: V2Manager) -> None:
    if "memory" in (UNIFIED / "cgroup.controllers").read_text().split():
        pytest.skip("this cgroup2 mount has the memory controller")
    with pytest.raises(EngineError, match=r"memory\.max"):
        v2.create("limited", Resources(memory=64 * MiB))
    assert not v2.dir("limited").exists()
