"""`dockyard reset --yes` against a running native machine in a temp DOCKYARD_HOME: the
engine stops, the machine's data and the docker context go, the app's settings are
cleared; without --yes nothing is touched."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from machine import dockercontext
from tests.engine_process import mounts_under
from tests.machine_harness import REPO, MachineHarness, machine_harness


@pytest.fixture
def h() -> Iterator[MachineHarness]:
    with machine_harness() as harness:
        yield harness


def dockyard(h: MachineHarness, *args: str, config_home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(h.env, XDG_CONFIG_HOME=str(config_home))
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_reset_removes_a_running_machine_and_the_settings(
    h: MachineHarness, tmp_path: Path, registry_with_images: str
) -> None:
    settings = tmp_path / "config" / "Dockyard" / "dockyard-desktop.conf"
    settings.parent.mkdir(parents=True)
    settings.write_text("[General]\nhost=unix:///somewhere\ntheme=dark\n")
    h.dockyard("start", "--backend", "native", *h.native_engine_args())
    h.docker("pull", f"{registry_with_images}/busybox")
    h.docker(
        "run", "-d", "--name", "left-running", f"{registry_with_images}/busybox", "sleep", "1000"
    )
    pid = int((h.dir / "engine.pid").read_text())

    refused = dockyard(h, "reset", config_home=tmp_path / "config")
    assert refused.returncode == 1
    assert "run `dockyard reset --yes` to confirm" in refused.stderr
    assert Path(f"/proc/{pid}").exists() and h.dir.is_dir()

    res = dockyard(h, "reset", "--yes", config_home=tmp_path / "config")
    assert res.returncode == 0, res
    assert "machine default removed" in res.stdout
    assert "Dockyard is back to factory defaults" in res.stdout
    assert h.processes() == []
    assert mounts_under(h.eng.dir) == []
    assert not h.home.exists()
    assert dockercontext.read(env=h.env) is None
    assert not settings.exists() or "theme" not in settings.read_text()
