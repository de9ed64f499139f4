"""The app's support actions: About shows the package version, Collect diagnostics writes
a bundle, Reset to factory defaults asks first and then clears machines and settings, and
the first-run wizard opens by itself only on a new install."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from app.gui import prefs
from app.gui.app import first_run_due, parse_args
from app.gui.context import AppContext
from app.gui.views import support
from app.version import version
from machine import config, paths
from tests.gui.conftest import WAIT_MS


@pytest.fixture
def ctx(qapp: object) -> Iterator[AppContext]:
    context = AppContext(host="unix:///nonexistent/docker.sock", settings=QSettings())
    yield context
    context.close()


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Message boxes recorded instead of shown (they would wait for a click)."""
    seen: list[str] = []

    def record(_parent: object, title: str, text: str, *_a: object) -> object:
        seen.append(f"{title}: {text}")
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "information", record)
    monkeypatch.setattr(QMessageBox, "warning", record)
    return seen


def test_about_shows_the_version(qtbot: QtBot) -> None:
    dialog = support.AboutDialog()
    qtbot.addWidget(dialog)
    assert f"Dockyard {version()}" in dialog.text.text()
    assert version() != "0+unknown"  # the package metadata is found


def test_collect_diagnostics(
    qtbot: QtBot, ctx: AppContext, answers: list[str], tmp_path: Path
) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    out = tmp_path / "bundle.zip"
    support.collect_diagnostics(parent, ctx, out)
    qtbot.waitUntil(lambda: bool(answers), timeout=WAIT_MS)
    assert answers[0].startswith(f"Diagnostics saved: Saved {out}")
    with zipfile.ZipFile(out) as z:
        assert "summary.json" in z.namelist()


def test_reset_asks_first_then_removes_machines_and_settings(
    qtbot: QtBot,
    ctx: AppContext,
    answers: list[str],
    isolated_machines: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = paths.Host.current()
    config.save(host, config.new("default", backend="native"))
    ctx.settings.setValue(prefs.THEME, "dark")
    parent = QWidget()
    qtbot.addWidget(parent)
    monkeypatch.setattr(support, "confirm_reset", lambda _p: False)
    support.reset_to_defaults(parent, ctx)
    assert config.names(host) == ["default"] and ctx.settings.value(prefs.THEME) == "dark"

    monkeypatch.setattr(support, "confirm_reset", lambda _p: True)
    support.reset_to_defaults(parent, ctx)
    qtbot.waitUntil(lambda: bool(answers), timeout=WAIT_MS)
    assert answers == ["Reset done: Dockyard is back to factory defaults."]
    assert config.names(host) == [] and not isolated_machines.exists()
    assert ctx.settings.value(prefs.THEME) is None


def test_first_run_opens_by_itself_only_on_a_new_install(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    s = ctx.settings
    assert first_run_due(parse_args([]), s)
    assert not first_run_due(parse_args(["--ready-marker"]), s)
    assert not first_run_due(parse_args(["-H", "unix:///x.sock"]), s)
    s.setValue(prefs.FIRSTRUN_DONE, True)
    assert not first_run_due(parse_args([]), s)
    assert first_run_due(parse_args(["--first-run"]), s)
    s.remove(prefs.FIRSTRUN_DONE)
    config.save(paths.Host.current(), config.new("default", backend="native"))
    assert not first_run_due(parse_args([]), s)
