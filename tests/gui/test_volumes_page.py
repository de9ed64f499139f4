"""The volumes page against a real engine: users and sizes listed, remove from the GUI (and
a refusal for a volume in use), prune with the space freed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from app.gui.context import AppContext
from app.gui.models.volumes import VolumeRow
from app.gui.pages.volumes import VolumesPage
from tests.engine_process import EngineProcess
from tests.gui.conftest import WAIT_MS, shown_list_page


@pytest.fixture
def page(qtbot: QtBot, ctx: AppContext) -> Iterator[VolumesPage]:
    yield from shown_list_page(qtbot, ctx, VolumesPage())


def rows(page: VolumesPage) -> dict[str, VolumeRow]:
    return {r.name: r for r in page.model.rows()}


def volumes(engine: EngineProcess) -> set[str]:
    return set(engine.docker("volume", "ls", "-q").stdout.split())


def test_lists_users_and_sizes(qtbot: QtBot, page: VolumesPage, gui_engine: EngineProcess) -> None:
    assert page.stack.currentWidget() is page.empty and "No volumes yet" in page.empty.text()
    gui_engine.docker("volume", "create", "data")
    qtbot.waitUntil(lambda: "data" in rows(page), timeout=WAIT_MS)
    assert rows(page)["data"].users == ()
    gui_engine.docker(
        "run", "--name", "writer", "-v", "data:/data", "busybox",
        "sh", "-c", "dd if=/dev/zero of=/data/blob bs=1024 count=64 2>/dev/null",
    )  # fmt: skip
    qtbot.waitUntil(lambda: rows(page)["data"].users == ("writer",), timeout=WAIT_MS)
    page.refresh()  # the size is measured at each refresh
    qtbot.waitUntil(lambda: rows(page)["data"].size >= 64 * 1024, timeout=WAIT_MS)
    row = page.model.find("data")
    assert page.model.index(row, 2).data() == "writer"
    assert page.model.index(row, 3).data().endswith("KiB")


def test_remove_a_volume_from_the_gui(
    qtbot: QtBot, page: VolumesPage, gui_engine: EngineProcess
) -> None:
    gui_engine.docker("volume", "create", "scratch")
    gui_engine.docker("volume", "create", "keep")
    qtbot.waitUntil(lambda: {"scratch", "keep"} <= set(rows(page)), timeout=WAIT_MS)
    page.ask_remove = lambda _rows: False
    assert page.select_key("scratch")
    page.remove_selected()
    assert "scratch" in volumes(gui_engine)  # cancelled

    page.ask_remove = lambda selected: [r.name for r in selected] == ["scratch"]
    page.remove_selected()
    qtbot.waitUntil(lambda: "scratch" not in rows(page), timeout=WAIT_MS)
    assert volumes(gui_engine) == {"keep"}
    assert page.notice.text() == "Removed scratch"
    assert set(rows(page)) == {"keep"}


def test_a_volume_in_use_is_refused_and_kept(
    qtbot: QtBot, page: VolumesPage, gui_engine: EngineProcess
) -> None:
    gui_engine.docker("create", "--name", "holder", "-v", "held:/data", "busybox", "true")
    qtbot.waitUntil(lambda: rows(page).get("held", None) is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: rows(page)["held"].users == ("holder",), timeout=WAIT_MS)
    page.ask_remove = lambda _rows: True
    assert page.select_key("held")
    page.remove_selected()
    qtbot.waitUntil(lambda: page.notice.text().startswith("Could not remove"), timeout=WAIT_MS)
    assert "held" in volumes(gui_engine)
    assert "held" in rows(page)


def test_prune_shows_the_space_freed(
    qtbot: QtBot, page: VolumesPage, gui_engine: EngineProcess
) -> None:
    gui_engine.docker(
        "run", "--rm", "-v", "junk:/data", "busybox",
        "sh", "-c", "dd if=/dev/zero of=/data/blob bs=1024 count=32 2>/dev/null",
    )  # fmt: skip
    gui_engine.docker("create", "--name", "holder", "-v", "busy:/data", "busybox", "true")
    qtbot.waitUntil(lambda: {"junk", "busy"} <= set(rows(page)), timeout=WAIT_MS)
    page.ask_prune = lambda: (True, True)
    page.prune()
    qtbot.waitUntil(lambda: page.notice.text().startswith("Pruned"), timeout=WAIT_MS)
    assert page.notice.text().startswith("Pruned 1 volume ·")
    assert "32.0 KiB freed" in page.notice.text()
    qtbot.waitUntil(lambda: set(rows(page)) == {"busy"}, timeout=WAIT_MS)
    assert volumes(gui_engine) == {"busy"}
