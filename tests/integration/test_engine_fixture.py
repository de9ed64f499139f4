"""The engine fixture's promises: a working daemon for the docker CLI, restart, and a
teardown that leaves no process, cgroup, mount or temp dir behind even after a crash."""

from __future__ import annotations

import pytest

from tests.engine_process import EngineProcess, alive, mounts_under, wait_for

pytestmark = pytest.mark.integration


def test_teardown_after_engine_crash_leaves_nothing(registry_with_images: str) -> None:
    eng = EngineProcess()
    try:
        eng.start()
        image = f"{registry_with_images}/busybox"
        eng.docker("pull", "-q", image)
        cid = eng.docker("run", "-d", image, "sleep", "100000").stdout.strip()
        assert wait_for(lambda: eng.recorded_pids() != [])
        [pid] = eng.recorded_pids()
        shims = eng.shim_pids()
        assert alive(pid) and shims, f"container {cid} should run under a shim"
        eng.kill9()  # the daemon dies; the container and its shim live on
        assert alive(pid)
    finally:
        eng.close()
    assert wait_for(lambda: not alive(pid))
    assert not any(alive(s) for s in shims)
    assert not eng.dir.exists()
    assert mounts_under(eng.dir) == []
    assert eng.cgroup_dirs() == []


def test_restart_keeps_state_and_docker_works(
    engine: EngineProcess, registry_with_images: str
) -> None:
    image = f"{registry_with_images}/busybox"
    engine.docker("pull", "-q", image)
    engine.restart()
    assert image in engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    out = engine.docker("run", "--rm", image, "echo", "after restart").stdout
    assert out == "after restart\n"
