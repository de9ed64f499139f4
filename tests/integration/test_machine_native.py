"""Acceptance 1 and 2 with `--backend native`: the engine runs on this host, started by
`dockyard machine start`, and the real docker CLI reaches it through the `dockyard`
context; then stale pidfiles, a failing engine and removal leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from machine import dockercontext
from tests.engine_process import mounts_under, wait_for
from tests.machine_harness import MachineHarness, acceptance, machine_harness


@pytest.fixture
def h() -> Iterator[MachineHarness]:
    with machine_harness() as harness:
        yield harness


def assert_nothing_left(h: MachineHarness) -> None:
    assert h.processes() == []
    assert mounts_under(h.eng.dir) == []
    assert not Path("/sys/class/net", h.eng.bridge).exists()
    assert not h.dir.exists()
    assert dockercontext.read(env=h.env) is None


def test_acceptance_native(h: MachineHarness, registry_with_images: str) -> None:
    acceptance(h, ["--backend", "native", *h.native_engine_args()], registry_with_images)
    status = json.loads(h.dockyard("status", "--json").stdout)
    assert status["state"] == "running" and status["backend"] == "native"
    assert [s["name"] for s in status["stages"]] == ["spawn", "engine"]
    assert all(s["status"] == "done" for s in status["stages"])
    ctx = dockercontext.read(env=h.env)
    assert ctx is not None
    assert ctx["Endpoints"]["docker"]["Host"] == f"unix://{h.dir / 'docker.sock'}"
    h.docker("run", "-d", "--name", "left-running", "busybox", "sleep", "1000")
    assert "removed" in h.dockyard("rm").stdout
    assert_nothing_left(h)


def test_start_twice_is_a_no_op_and_a_stale_pidfile_is_ignored(h: MachineHarness) -> None:
    h.dockyard("start", "--backend", "native", *h.native_engine_args())
    pid = int((h.dir / "engine.pid").read_text())
    again = h.dockyard("start").stdout
    assert f"already running (pid {pid})" in again
    # The engine dies without cleaning up; its pidfile stays, naming a dead pid.
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), timeout=10)
    assert (h.dir / "engine.pid").exists()
    assert "stopped" in h.dockyard("status").stdout
    assert not (h.dir / "engine.pid").exists()
    # A pidfile naming a live process that is not our engine (pid reuse) is stale too.
    (h.dir / "engine.pid").write_text(f"{os.getpid()}\n")
    assert "stopped" in h.dockyard("status").stdout
    out = h.dockyard("start").stdout
    assert "is running" in out
    assert h.docker("ps").returncode == 0
    first = int((h.dir / "engine.pid").read_text())
    # Our pidfile lost (the CLI died right after the spawn): the engine is found anyway.
    (h.dir / "engine.pid").unlink()
    assert f"running (pid {first})" in h.dockyard("status").stdout
    assert f"already running (pid {first})" in h.dockyard("start").stdout
    assert "is running" in h.dockyard("restart").stdout
    assert int((h.dir / "engine.pid").read_text()) != first
    assert h.docker("ps").returncode == 0
    h.dockyard("rm")
    assert_nothing_left(h)


def test_an_engine_that_cannot_start_fails_its_stage_with_the_log(h: MachineHarness) -> None:
    res = h.dockyard(
        "start",
        "--backend",
        "native",
        *h.native_engine_args(),
        "--engine-arg=--bip=not-a-cidr",
        check=False,
    )
    assert res.returncode == 1
    assert "error: engine: the engine exited with status" in res.stderr
    assert "hint: " in res.stderr and "dockyard machine logs" in res.stderr
    assert "--- last lines of the log ---" in res.stderr
    assert h.processes() == []
    assert "stopped" in h.dockyard("status").stdout
    assert "failed" in h.dockyard("status").stdout  # the engine stage of the last start


def test_rm_refuses_while_a_mount_remains(h: MachineHarness, tmp_path: Path) -> None:
    h.dockyard("create", "--backend", "native", *h.native_engine_args())
    target = h.dir / "bound"
    target.mkdir()
    keep = tmp_path / "precious"
    keep.mkdir()
    (keep / "file").write_text("keep me")
    subprocess.run(["mount", "--bind", str(keep), str(target)], check=True)
    try:
        res = h.dockyard("rm", check=False)
        assert res.returncode == 1
        assert "mounts remain" in res.stderr and "nothing was deleted" in res.stderr
        assert (keep / "file").read_text() == "keep me"
        assert (h.dir / "machine.yaml").exists()
    finally:
        subprocess.run(["umount", str(target)], check=False)
    h.dockyard("rm")
    assert (keep / "file").read_text() == "keep me"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
