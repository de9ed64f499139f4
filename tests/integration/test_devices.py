"""The v1 devices allow-list: a container may create device nodes but open only harmless ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cgroups import devices
from engine.runtime.spec import Resources
from tests.engine_process import EngineProcess

DEVICES = Path("/sys/fs/cgroup/devices")

pytestmark = pytest.mark.skipif(
    not (DEVICES / "devices.list").exists(), reason="no v1 devices hierarchy on this host"
)


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    yield shared_engine


def _device_list(eng: EngineProcess, cid: str) -> set[str]:
    path = DEVICES / eng.cgroup_parent / cid / "devices.list"
    return set(path.read_text().split("\n")) - {""}


def test_default_container_gets_only_the_allow_list(eng: EngineProcess) -> None:
    cid = eng.docker("run", "-d", "busybox", "sleep", "100").stdout.strip()
    try:
        assert _device_list(eng, cid) == set(devices.ALLOWED)
        # /dev/null is on the list; a freshly made node of the host's memory is not.
        out = eng.docker(
            "exec",
            cid,
            "sh",
            "-c",
            "echo ok > /dev/null && echo null-ok; mknod /tmp/mem c 1 1 && "
            "head -c 1 /tmp/mem; echo rc=$?",
            check=False,
        )
        assert "null-ok" in out.stdout
        assert "rc=1" in out.stdout and "Operation not permitted" in out.stderr
    finally:
        eng.docker("rm", "-f", cid)


def test_privileged_container_may_open_any_device(eng: EngineProcess) -> None:
    cid = eng.docker("run", "-d", "--privileged", "busybox", "sleep", "100").stdout.strip()
    try:
        assert _device_list(eng, cid) == {"a *:* rwm"}
    finally:
        eng.docker("rm", "-f", cid)


def test_rules_deny_everything_before_allowing() -> None:
    writes = devices.rules(Resources())
    assert writes[0] == ("devices.deny", "a")
    assert ("devices.allow", "c 1:3 rwm") in writes
    assert devices.rules(Resources(all_devices=True)) == [("devices.allow", "a")]
