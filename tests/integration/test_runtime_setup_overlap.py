"""The init builds its rootfs while the shim moves it into its cgroup; the end state
must be exactly as if it had waited: in its own cgroups, with a cgroup namespace
rooted there, and a setup error still reported as the init's own reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.runtime.spec import Mount
from tests.integration.test_runtime import (  # noqa: F401 - fixtures
    CGROUP_PARENT,
    Runtime,
    busybox_lower,
    cgroup_dirs,
    runtime,
    sh,
)

pytestmark = pytest.mark.integration


def test_container_is_in_its_cgroups_and_its_cgroup_namespace_is_rooted_there(
    runtime: Runtime,  # noqa: F811
) -> None:
    code, out, err = sh(runtime, "cat /proc/self/cgroup")
    assert code == 0, err
    lines = out.split()
    assert lines and all(line.endswith(":/") for line in lines), out


def test_host_sees_the_init_in_the_container_cgroup(runtime: Runtime) -> None:  # noqa: F811
    spec, h = runtime.launch(["sleep", "1000"])
    h.release()
    for d in cgroup_dirs(spec.id):
        assert h.pid in [int(p) for p in (d / "cgroup.procs").read_text().split()], d
    assert len(cgroup_dirs(spec.id)) >= 3  # memory, cpu, pids at least
    assert Path(f"/sys/fs/cgroup/memory/{CGROUP_PARENT}/{spec.id}").is_dir()


def test_bad_mount_fails_setup_with_its_own_reason_and_no_cgroup_left(
    runtime: Runtime,  # noqa: F811
) -> None:
    missing = str(runtime.tmp / "no-such-source")
    with pytest.raises(EngineError) as info:
        runtime.launch(["true"], mounts=[Mount(target="/data", source=missing)])
    assert "could not be set up" in str(info.value)
    assert "no-such-source" in str(info.value) and "No such file" in str(info.value)
    assert cgroup_dirs(runtime.specs[-1][0].id) == []
