"""The first-run wizard end to end against a real native machine: the host checks with
their fixes, the machine created with the host's defaults and booted with the progress
bar following its stages, then "Run hello-world" showing a container's output. A taken
port blocks Continue with its fix shown."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.firstrun import hello
from app.gui.views.firstrun import FirstRunDialog
from machine import config, paths
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


def test_checks_machine_and_hello_world(
    qtbot: QtBot, h: MachineHarness, registry_with_images: str
) -> None:
    args = [a.split("=", 1)[1] for a in h.native_engine_args()]
    dialog = FirstRunDialog(
        backend="native", image=f"{registry_with_images}/busybox", engine_args=args
    )
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.checks_done, timeout=WAIT_MS):
        dialog.show()
    names = [r.name for r in dialog.results]
    assert names == ["accelerator", "firmware", "qemu", "disk", "ports"]
    assert "<b>accelerator</b>" in dialog.check_list.text()
    assert dialog.continue_button.isEnabled()
    qtbot.mouseClick(dialog.continue_button, Qt.MouseButton.LeftButton)
    assert dialog.steps.currentIndex() == 1
    cpus = config.default_cpus(config.host_cpus())
    assert f"{cpus} CPU" in dialog.machine_text.text()

    with qtbot.waitSignal(dialog.machine_ready, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert dialog.progress.value() == dialog.progress.maximum() == 2
    cfg = config.load(paths.Host.current(), "default")
    assert (cfg.backend, cfg.cpus) == ("native", cpus)
    assert cfg.memory_mib == config.default_memory_mib(config.host_memory_mib())
    assert dialog.steps.currentIndex() == 2

    with qtbot.waitSignal(dialog.hello_done, timeout=WAIT_MS) as shown:
        qtbot.mouseClick(dialog.hello_button, Qt.MouseButton.LeftButton)
    assert shown.args == [hello.MESSAGE + "\n"]
    assert hello.MESSAGE in dialog.output.toPlainText()
    assert "pulling" in dialog.output.toPlainText()
    assert h.docker("ps", "-a", "-q").stdout == ""  # the container was removed
    h.dockyard("rm")


def test_a_taken_port_blocks_continue_with_its_fix(qtbot: QtBot) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        dialog = FirstRunDialog(backend="qemu", wanted_ports=(port,))
        qtbot.addWidget(dialog)
        with qtbot.waitSignal(dialog.checks_done, timeout=WAIT_MS):
            dialog.show()
    assert not dialog.continue_button.isEnabled()
    text = dialog.check_list.text()
    assert f"port {port} on 127.0.0.1 is already in use" in text
    assert f"Fix: stop the program listening on {port}" in text
