"""The window shell: the banner for an unreachable engine, page switching, settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.gui import prefs
from app.gui.context import AppContext
from app.gui.pages.containers import ContainersPage
from app.gui.pages.settings import SettingsPage
from app.gui.window import MainWindow, page_classes
from tests.engine_process import EngineProcess
from tests.gui.conftest import WAIT_MS


@pytest.fixture
def nowhere(qapp: QApplication, tmp_path: Path) -> Iterator[AppContext]:
    """A context pointed at a socket nobody listens on."""
    context = AppContext(host=f"unix://{tmp_path}/absent.sock", settings=QSettings())
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def windows() -> Iterator[list[MainWindow]]:
    """Windows made by the test, their pages' threads stopped after it."""
    made: list[MainWindow] = []
    yield made
    for window in made:
        window.shutdown()


def window_for(qtbot: QtBot, ctx: AppContext, windows: list[MainWindow]) -> MainWindow:
    window = MainWindow(ctx, pages=[ContainersPage(), SettingsPage()])
    qtbot.addWidget(window)
    windows.append(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    return window


def test_an_unreachable_engine_shows_a_banner_with_retry(
    qtbot: QtBot, nowhere: AppContext, windows: list[MainWindow]
) -> None:
    window = window_for(qtbot, nowhere, windows)
    with qtbot.waitSignal(nowhere.events.disconnected, timeout=WAIT_MS):
        nowhere.start()
    assert window.banner.isVisible()
    text = window.banner.message.text()
    assert "Cannot reach the engine" in text and "absent.sock" in text
    with qtbot.waitSignal(nowhere.events.disconnected, timeout=WAIT_MS):
        qtbot.mouseClick(window.banner.retry, Qt.MouseButton.LeftButton)
    assert window.banner.retry.isEnabled()  # answered: ready for another try
    containers = window.pages[0]
    assert isinstance(containers, ContainersPage)
    assert containers.empty.text() == "Loading containers…"


def test_switching_engines_in_settings_connects_and_hides_the_banner(
    qtbot: QtBot, nowhere: AppContext, gui_engine: EngineProcess, windows: list[MainWindow]
) -> None:
    window = window_for(qtbot, nowhere, windows)
    with qtbot.waitSignal(nowhere.events.disconnected, timeout=WAIT_MS):
        nowhere.start()
    settings = window.pages[1]
    assert isinstance(settings, SettingsPage)
    qtbot.keyClick(window, Qt.Key.Key_6, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() is settings
    settings.host.setText(str(gui_engine.socket))  # a bare path is taken as unix://
    with qtbot.waitSignal(nowhere.events.connected, timeout=WAIT_MS):
        settings.connect_button.click()
    assert not window.banner.isVisible()
    assert nowhere.settings.value(prefs.HOST) == gui_engine.host
    assert settings.state.text() == f"Connected to {gui_engine.host}"


def test_pages_shortcuts_and_the_theme_setting(
    qtbot: QtBot, nowhere: AppContext, windows: list[MainWindow]
) -> None:
    window = window_for(qtbot, nowhere, windows)
    containers, settings = window.pages
    assert isinstance(containers, ContainersPage) and isinstance(settings, SettingsPage)
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() is containers
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert containers.filter.hasFocus()
    settings.theme.setCurrentIndex(settings.theme.findData("dark"))
    assert nowhere.settings.value(prefs.THEME) == "dark"
    window_color = QApplication.palette().color(QPalette.ColorRole.Window)
    assert window_color.lightness() < 80
    settings.theme.setCurrentIndex(settings.theme.findData("light"))
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 200
    settings.close_to_tray.setChecked(False)
    assert nowhere.settings.value(prefs.CLOSE_TO_TRAY, type=bool) is False


def test_the_sidebar_lists_the_pages_that_exist_in_order() -> None:
    names = [cls.__name__ for cls in page_classes()]
    assert names[0] == "ContainersPage" and names[-1] == "SettingsPage"
    shortcuts = [cls.shortcut for cls in page_classes()]
    assert len(set(shortcuts)) == len(shortcuts)


def test_dockyard_desktop_starts_connects_and_saves_a_screenshot(
    gui_engine: EngineProcess, tmp_path: Path
) -> None:
    """The entry point end to end, in its own process: theme, window, tray, events."""
    gui_engine.docker("run", "-d", "--name", "shown", "busybox", "sleep", "60")
    shot = tmp_path / "containers.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "app.gui.app", "-H", gui_engine.host, "--screenshot", str(shot)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    image = QImage(str(shot))
    assert image.width() >= 980 and image.height() >= 560
    saved = QSettings(
        str(tmp_path / "Dockyard" / "dockyard-desktop.conf"), QSettings.Format.IniFormat
    )
    assert saved.value(prefs.HOST) == gui_engine.host
