"""The settings page's engine choice: a docker context over SSH (a real sshd whose docker
CLI reaches the test's engine, tests/ssh_engine.py) picked from the list, and the banner
naming the context whose engine cannot be reached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from app.gui import prefs
from app.gui.context import AppContext
from app.gui.pages.containers import ContainersPage
from app.gui.pages.settings import SettingsPage
from app.gui.window import MainWindow
from machine import dockercontext
from tests.engine_process import EngineProcess, free_port
from tests.gui.conftest import WAIT_MS
from tests.ssh_engine import SshEngine, ssh_engine

LOOP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]


@pytest.fixture
def remote(gui_engine: EngineProcess, tmp_path: Path) -> Iterator[SshEngine]:
    with ssh_engine(gui_engine.host, tmp_path / "ssh") as r:
        yield r


@pytest.fixture
def contexts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A DOCKER_CONFIG of the test's own (the app reads os.environ); no DOCKER_HOST."""
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    monkeypatch.setenv("DOCKER_CONFIG", env["DOCKER_CONFIG"])
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    return env


@pytest.fixture
def window(qtbot: QtBot, ctx: AppContext) -> Iterator[MainWindow]:
    made = MainWindow(ctx, pages=[ContainersPage(), SettingsPage()])
    qtbot.addWidget(made)
    made.show()
    with qtbot.waitSignal(ctx.events.connected, timeout=WAIT_MS):
        ctx.start()
    try:
        yield made
    finally:
        made.shutdown()


def choose(settings: SettingsPage, name: str) -> None:
    """What a click on the context list's entry does."""
    index = settings.context.findData(name)
    assert index >= 0, [settings.context.itemText(i) for i in range(settings.context.count())]
    settings.context.setCurrentIndex(index)
    settings.context.activated.emit(index)


def test_picking_an_ssh_context_shows_the_remote_containers(
    qtbot: QtBot,
    remote: SshEngine,  # before the window: its streams end before the sshd goes
    contexts: dict[str, str],
    gui_engine: EngineProcess,
    ctx: AppContext,
    window: MainWindow,
) -> None:
    dockercontext.write(remote.url, "the engine over SSH", name="remote", env=contexts)
    containers, settings = window.pages
    assert isinstance(containers, ContainersPage) and isinstance(settings, SettingsPage)
    window.show_page(settings.title)
    labels = [settings.context.itemText(i) for i in range(settings.context.count())]
    assert f"remote — {remote.url}" in labels
    ctx.set_host(f"unix://{gui_engine.root}/elsewhere.sock")  # away from the engine first
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT_MS)
    cid = gui_engine.docker("run", "-d", "--name", "via-ssh", "busybox", *LOOP).stdout.strip()
    with qtbot.waitSignal(ctx.events.connected, timeout=WAIT_MS):
        choose(settings, "remote")
    assert (ctx.context, ctx.host) == ("remote", remote.url)
    assert ctx.settings.value(prefs.CONTEXT) == "remote"
    assert not window.banner.isVisible()
    assert settings.state.text() == f'Connected to {remote.url} (docker context "remote")'
    assert settings.host.text() == remote.url
    qtbot.waitUntil(lambda: containers.model.container(cid) is not None, timeout=WAIT_MS)
    row = containers.model.container(cid)
    assert row is not None and row.state == "running"
    restarted = AppContext(settings=QSettings())  # the next start comes back to the context
    assert (restarted.context, restarted.host) == ("remote", remote.url)


def test_the_banner_names_the_context_that_cannot_be_reached(
    qtbot: QtBot,
    ctx: AppContext,
    window: MainWindow,
    contexts: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh of the developer's
    port = free_port()
    dockercontext.write(f"ssh://root@127.0.0.1:{port}", "", name="far", env=contexts)
    settings = window.pages[1]
    assert isinstance(settings, SettingsPage)
    settings.refresh_contexts()
    with qtbot.waitSignal(ctx.events.disconnected, timeout=WAIT_MS):
        choose(settings, "far")
    text = window.banner.message.text()
    assert f'ssh://root@127.0.0.1:{port} (docker context "far")' in text
    assert f"cannot reach 127.0.0.1:{port} over SSH" in text


def test_a_saved_context_that_is_gone_says_so_and_is_kept_in_the_list(
    qtbot: QtBot, qapp: object, contexts: dict[str, str]
) -> None:
    settings = QSettings()
    settings.setValue(prefs.CONTEXT, "vanished")
    ctx = AppContext(settings=settings)
    try:
        assert (ctx.context, ctx.host) == ("vanished", "")
        errors: list[str] = []
        ctx.events.disconnected.connect(errors.append)
        with qtbot.waitSignal(ctx.events.disconnected, timeout=WAIT_MS):
            ctx.start()
        assert 'docker context "vanished" does not exist' in errors[0]
        page = SettingsPage()
        qtbot.addWidget(page)
        page.attach(ctx)
        assert page.context.currentText() == "vanished — not found"
    finally:
        ctx.close()
