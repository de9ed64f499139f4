"""Fixtures for the desktop app's tests (pytest-qt) against a real engine.

- Qt runs offscreen unless the caller chose a platform (QT_QPA_PLATFORM=xcb under Xvfb).
- No session D-Bus: notifications and the tray must not reach a developer's desktop.
- Settings are isolated per test: an INI file under the test's tmp dir and an organization
  name of the test's own, so no test sees another's (or the user's) saved state.
- No machines: DOCKYARD_HOME is an empty dir of the test's own (the machine page reads it).
- One global timeout for every `qtbot.waitSignal`/`waitUntil`: `WAIT_MS`.
- `gui_engine`: a fresh engine (tests/conftest.py's `engine`) with busybox tagged `busybox`;
  `ctx`: an AppContext pointed at it, closed (stream stopped, calls drained) after the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent/dockyard-test-bus"
pytest.importorskip("PySide6")

from PySide6.QtCore import QCoreApplication, QSettings

from app.gui.context import AppContext
from tests.engine_process import EngineProcess

WAIT_MS = 10_000  # the one timeout for every waitSignal/waitUntil in tests/gui

if TYPE_CHECKING:
    from pytestqt.qtbot import QtBot

    from app.gui.pages.listing import ListPage

P = TypeVar("P", bound="ListPage")


def shown_list_page(qtbot: QtBot, ctx: AppContext, page: P) -> Iterator[P]:
    """A list page attached to the test's engine, shown and loaded; shut down afterwards
    (each page test's `page` fixture yields from this)."""
    qtbot.addWidget(page)
    page.attach(ctx)
    ctx.start()
    page.resize(1000, 600)
    page.show()
    page.activated()
    qtbot.waitUntil(lambda: page.loaded, timeout=WAIT_MS)
    yield page
    page.shutdown()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """QSettings() in the code under test reads and writes only this test's INI file."""
    folder = tmp_path / "settings"
    folder.mkdir()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    QCoreApplication.setOrganizationName(f"dockyard-test-{abs(hash(request.node.nodeid))}")
    QCoreApplication.setApplicationName("dockyard-desktop")
    yield folder


@pytest.fixture(autouse=True)
def isolated_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The machine page reads machines under DOCKYARD_HOME: an empty one of this test's own,
    so a machine on the developer's computer never shows up in (or is driven by) a test."""
    home = tmp_path / "dockyard-home"
    monkeypatch.setenv("DOCKYARD_HOME", str(home))
    return home


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/gui is marked `gui` (`pytest -m gui` runs just the app's)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture
def gui_engine(request: pytest.FixtureRequest, registry_with_images: str) -> EngineProcess:
    """A fresh engine with the busybox test image available as `busybox` (root only: the
    check comes before the engine fixture starts anything)."""
    if os.geteuid() != 0:
        pytest.skip("the GUI tests drive a real engine, which needs root")
    engine: EngineProcess = request.getfixturevalue("engine")
    engine.docker("pull", f"{registry_with_images}/busybox")
    engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    return engine


@pytest.fixture
def ctx(qapp: object, gui_engine: EngineProcess) -> Iterator[AppContext]:
    """An AppContext on `gui_engine`'s socket; not started (call `ctx.start()` or let a
    window do it)."""
    context = AppContext(host=gui_engine.host, settings=QSettings())
    try:
        yield context
    finally:
        context.close()
