"""The machine page against a real native machine (machine/native_backend.py): the engine
runs on this host, started and stopped from the page; DOCKYARD_HOME and DOCKER_CONFIG point
into the test's harness, whose cleanup removes whatever a failure leaves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from app.gui.context import AppContext
from app.gui.machine_control import MachineState
from app.gui.pages.machine import MachinePage
from app.gui.views.stage_timeline import duration_text
from machine import config, paths
from tests.engine_process import free_port
from tests.gui.conftest import WAIT_MS
from tests.machine_harness import MachineHarness, machine_harness


@pytest.fixture
def h(monkeypatch: pytest.MonkeyPatch) -> Iterator[MachineHarness]:
    if os.geteuid() != 0:
        pytest.skip("a native machine runs the engine, which needs root")
    with machine_harness() as harness:
        monkeypatch.setenv("DOCKYARD_HOME", str(harness.home))
        monkeypatch.setenv("DOCKER_CONFIG", str(harness.eng.config_dir))
        monkeypatch.delenv("DOCKER_HOST", raising=False)
        yield harness


def engine_args(h: MachineHarness, *extra: str) -> list[str]:
    """The harness's per-test bridge, cgroup parent and exec root, as engine arguments."""
    return [a.split("=", 1)[1] for a in h.native_engine_args()] + list(extra)


def make_machine(h: MachineHarness, *extra: str) -> config.MachineConfig:
    cfg = config.new("default", backend="native", engine_args=engine_args(h, *extra))
    config.save(paths.Host.current(), cfg)
    return cfg


@pytest.fixture
def page(qtbot: QtBot, h: MachineHarness) -> Iterator[MachinePage]:
    ctx = AppContext(host=f"unix://{h.dir / 'docker.sock'}", settings=QSettings())
    p = MachinePage()
    qtbot.addWidget(p)
    p.attach(ctx)
    p.resize(1100, 650)
    p.show()
    p.activated()
    try:
        yield p
    finally:
        p.shutdown()
        ctx.close()


def wait_state(qtbot: QtBot, page: MachinePage, state: str) -> None:
    qtbot.waitUntil(
        lambda: page.snap is not None and page.snap.state == state and not page.runner.busy,
        timeout=WAIT_MS,
    )


def test_start_shows_the_stages_and_running_then_stop_shows_stopped(
    qtbot: QtBot, h: MachineHarness, page: MachinePage, registry_with_images: str
) -> None:
    make_machine(h)
    page.runner.refresh()
    wait_state(qtbot, page, "stopped")
    assert page.ctx.machine is page.runner  # the tray drives the same machine
    assert page.start_button.isEnabled() and not page.stop_button.isEnabled()

    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert page.runner.state() == MachineState.STARTING
    wait_state(qtbot, page, "running")
    assert page.runner.state() == MachineState.RUNNING
    assert "Running" in page.state_label.text()
    stages = page.timeline.stages
    assert [s["name"] for s in stages] == ["spawn", "engine"]
    assert all(s["status"] == "done" for s in stages)
    assert all(duration_text(s).endswith("s") for s in stages)  # "12 ms", "1.20 s"
    assert page.timeline_title.title().startswith("Last start — ")
    assert page.stop_button.isEnabled() and not page.start_button.isEnabled()
    assert not page.error.isVisible()

    # The log tab follows the engine's own log; the graphs and ports come from its API.
    qtbot.waitUntil(lambda: "--- dockyard:" in page.log.toPlainText(), timeout=WAIT_MS)
    port = free_port()
    h.docker("pull", f"{registry_with_images}/busybox")
    h.docker("tag", f"{registry_with_images}/busybox", "busybox")
    h.docker("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f")
    qtbot.waitUntil(lambda: page.ports_model.rowCount() == 1, timeout=WAIT_MS)
    row = page.ports_model.row(0)
    assert (row.host, row.target, row.state) == (f"127.0.0.1:{port}", "web:80/tcp", "listening")
    qtbot.waitUntil(
        lambda: len(page.memory.values) > 0 and page.memory.values[-1] > 0, timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: len(page.cpu.values) > 0, timeout=WAIT_MS)
    assert "1 container running" in page.memory.note
    h.docker("rm", "-f", "web")  # httpd as pid 1 ignores SIGTERM: stop would wait 10 s for it
    qtbot.waitUntil(lambda: page.ports_model.rowCount() == 0, timeout=WAIT_MS)

    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    assert "Stopping" in page.state_label.text()
    wait_state(qtbot, page, "stopped")
    assert page.runner.state() == MachineState.STOPPED
    assert "Stopped" in page.state_label.text()
    assert page.start_button.isEnabled() and not page.stop_button.isEnabled()
    assert h.processes() == []


def test_an_engine_that_cannot_start_shows_the_failed_stage_and_its_hint(
    qtbot: QtBot, h: MachineHarness, page: MachinePage
) -> None:
    make_machine(h, "--bip=not-a-cidr")
    page.runner.refresh()
    wait_state(qtbot, page, "stopped")
    with qtbot.waitSignal(page.runner.start_failed, timeout=WAIT_MS) as failed:
        page.start_button.click()
    assert str(failed.args[0]).startswith("engine: the engine exited with status")
    wait_state(qtbot, page, "stopped")
    assert page.runner.state() == MachineState.ERROR  # the tray shows the error icon
    assert "Start failed" in page.state_label.text()
    assert page.error.isVisible()
    text = page.error.text()
    assert "<b>engine</b>" in text and "Hint:" in text and "dockyard machine logs" in text
    assert [(s["name"], s["status"]) for s in page.timeline.stages] == [
        ("spawn", "done"),
        ("engine", "failed"),
    ]
    assert page.start_button.isEnabled()  # try again after fixing it
    assert h.processes() == []

    # Opened later (another app, or after `dockyard machine start` failed): the recorded
    # stages show the failed one with its hint.
    again = MachinePage()
    qtbot.addWidget(again)
    again.attach(page.ctx)
    again.show()
    try:
        qtbot.waitUntil(lambda: again.error.isVisible(), timeout=WAIT_MS)
        assert "<b>engine</b>" in again.error.text() and "Hint:" in again.error.text()
        assert again.timeline.stages[-1]["status"] == "failed"
    finally:
        again.shutdown()


def test_a_broken_config_shows_the_config_stage_and_what_to_write(
    qtbot: QtBot, h: MachineHarness, page: MachinePage
) -> None:
    make_machine(h)
    path = h.dir / "machine.yaml"
    path.write_text(path.read_text().replace("cpus: ", "cpus: many #"))
    page.runner.refresh()
    wait_state(qtbot, page, "broken")
    assert page.error.isVisible()
    assert "<b>config</b>" in page.error.text() and "cpus" in page.error.text()
    assert page.runner.state() == MachineState.ERROR
    assert not page.start_button.isEnabled()  # nothing to start until the file is fixed
    page.runner.start()  # the tray's Start: fails in the config stage, starts nothing
    qtbot.waitUntil(lambda: page.runner.error is not None and not page.runner.busy)
    assert "<b>config</b>" in page.error.text()
    assert h.processes() == []
    assert "cpus: many" in path.read_text()  # the user's file is left as it was


def test_create_then_edit_resources_and_shares_in_the_config(
    qtbot: QtBot, h: MachineHarness, page: MachinePage, tmp_path: Path
) -> None:
    wait_state(qtbot, page, "not-created")
    assert page.body_stack.currentIndex() == 1 and "No machine named" in page.empty_text.text()
    page.create_backend.setCurrentIndex(page.create_backend.findData("native"))
    qtbot.mouseClick(page.create_button, Qt.MouseButton.LeftButton)
    wait_state(qtbot, page, "stopped")
    assert page.body_stack.currentIndex() == 0
    host = paths.Host.current()
    assert config.load(host, "default").backend == "native"

    settings = page.settings_tab
    settings.cpus.setValue(1)
    settings.memory.setValue(512)
    with qtbot.waitSignal(page.runner.saved, timeout=WAIT_MS):
        settings.save.click()
    cfg = config.load(host, "default")
    assert (cfg.cpus, cfg.memory_mib) == (1, 512)

    # A value the config refuses: the message names the field, the file is unchanged.
    before = (h.dir / "machine.yaml").read_text()
    page.runner.set_resources(10_000, 512, cfg.disk_gib)
    qtbot.waitUntil(lambda: page.error.isVisible() and not page.runner.busy, timeout=WAIT_MS)
    assert "cpus: 10000 is out of range" in page.error.text()
    assert (h.dir / "machine.yaml").read_text() == before

    folder = tmp_path / "code"
    folder.mkdir()
    settings.ask_share = lambda: (str(folder), "/work", "9p", True)
    with qtbot.waitSignal(page.runner.saved, timeout=WAIT_MS):
        settings.add.click()
    assert settings.shares.rowCount() == 1
    assert settings.shares.item(0, 1).text() == "/work"
    assert settings.shares.item(0, 3).text() == "read-only"
    share = config.load(host, "default").shares[0]
    assert (share.host_path, share.guest_path, share.mode, share.readonly) == (
        str(folder),
        "/work",
        "9p",
        True,
    )
    assert not page.error.isVisible()

    settings.ask_share = lambda: (str(tmp_path / "missing"), "", "9p", False)
    settings.add.click()
    qtbot.waitUntil(lambda: "is not a directory" in page.error.text(), timeout=WAIT_MS)
    assert len(config.load(host, "default").shares) == 1

    settings.shares.selectRow(0)
    with qtbot.waitSignal(page.runner.saved, timeout=WAIT_MS):
        settings.remove.click()
    assert settings.shares.rowCount() == 0
    assert config.load(host, "default").shares == []
