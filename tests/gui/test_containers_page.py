"""Acceptance 1 (containers): the containers page against a real engine.

Containers are made with the real docker CLI; the page learns of them only through the
events stream and its own API calls; actions are triggered as the user would (the page's
QActions and shortcuts on a selection).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from app.gui.context import AppContext
from app.gui.models.containers import PORTS, STATUS
from app.gui.pages.containers import ContainersPage
from app.gui.window import MainWindow
from tests.engine_process import EngineProcess, free_port
from tests.gui.conftest import WAIT_MS

LOOP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]


@pytest.fixture
def page(qtbot: QtBot, ctx: AppContext) -> Iterator[ContainersPage]:
    containers = ContainersPage()
    window = MainWindow(ctx, pages=[containers])
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(ctx.events.connected, timeout=WAIT_MS):
        ctx.start()
    qtbot.waitUntil(lambda: containers._loaded, timeout=WAIT_MS)
    try:
        yield containers
    finally:
        window.shutdown()


def run(eng: EngineProcess, *args: str) -> str:
    return eng.docker("run", "-d", *args).stdout.strip()


def state(page: ContainersPage, cid: str) -> str:
    row = page.model.container(cid)
    return row.state if row is not None else "(no row)"


def test_a_started_container_appears_and_the_gui_stops_it(
    qtbot: QtBot, page: ContainersPage, gui_engine: EngineProcess
) -> None:
    cid = run(gui_engine, "--name", "web", "busybox", *LOOP)
    qtbot.waitUntil(lambda: state(page, cid) == "running", timeout=1000)
    index = page.model.index_of(cid, STATUS)
    assert page.model.data(index).startswith("Up ")
    page.select(cid)
    assert [r.id for r in page.selected_rows()] == [cid]
    assert page.actions_by_key["stop"].isEnabled()
    assert not page.actions_by_key["start"].isEnabled()
    page.actions_by_key["stop"].trigger()
    qtbot.waitUntil(lambda: state(page, cid) == "exited", timeout=WAIT_MS)
    assert page.model.data(page.model.index_of(cid, STATUS)).startswith("Exited (0)")
    assert gui_engine.api("GET", f"/containers/{cid}/json")["State"]["Status"] == "exited"
    page.actions_by_key["start"].trigger()
    qtbot.waitUntil(lambda: state(page, cid) == "running", timeout=WAIT_MS)


def test_pause_resume_restart_and_remove_with_confirmation(
    qtbot: QtBot, page: ContainersPage, gui_engine: EngineProcess
) -> None:
    cid = run(gui_engine, "--name", "worker", "busybox", *LOOP)
    qtbot.waitUntil(lambda: state(page, cid) == "running", timeout=WAIT_MS)
    page.select(cid)
    page.trigger("pause")
    qtbot.waitUntil(lambda: state(page, cid) == "paused", timeout=WAIT_MS)
    assert page.actions_by_key["pause"].text() == "Resume"
    page.trigger("pause")
    qtbot.waitUntil(lambda: state(page, cid) == "running", timeout=WAIT_MS)
    asked: list[list[str]] = []
    page.confirm_remove = lambda names: asked.append(names) is not None  # says no
    page.trigger("remove")
    assert asked == [["worker"]]
    assert gui_engine.api("GET", f"/containers/{cid}/json")["Id"] == cid
    page.confirm_remove = lambda names: True
    page.view.setFocus()
    qtbot.keyClick(page.view, Qt.Key.Key_Delete)  # the Del shortcut
    qtbot.waitUntil(lambda: page.model.container(cid) is None, timeout=WAIT_MS)
    assert gui_engine.docker("ps", "-aq").stdout.strip() == ""


def test_multi_select_acts_on_every_selected_container(
    qtbot: QtBot, page: ContainersPage, gui_engine: EngineProcess
) -> None:
    ids = [run(gui_engine, "--name", f"m{i}", "busybox", *LOOP) for i in range(3)]
    qtbot.waitUntil(lambda: all(state(page, c) == "running" for c in ids), timeout=WAIT_MS)
    page.view.selectAll()
    assert {r.id for r in page.selected_rows()} == set(ids)
    page.trigger("stop")
    qtbot.waitUntil(lambda: all(state(page, c) == "exited" for c in ids), timeout=WAIT_MS)


def test_compose_projects_are_stacks_and_the_filter_finds_members(
    qtbot: QtBot, page: ContainersPage, gui_engine: EngineProcess
) -> None:
    label = "com.docker.compose.project=shop"
    web = run(gui_engine, "--name", "shop-web-1", "--label", label, "busybox", *LOOP)
    db = run(gui_engine, "--name", "shop-db-1", "--label", label, "busybox", *LOOP)
    alone = run(gui_engine, "--name", "alone", "busybox", *LOOP)
    qtbot.waitUntil(
        lambda: all(state(page, c) == "running" for c in (web, db, alone)), timeout=WAIT_MS
    )
    stack = page.model.index_of(web).parent()
    assert stack.isValid() and stack == page.model.index_of(db).parent()
    assert page.model.data(stack) == "shop"
    assert page.model.data(stack.siblingAtColumn(STATUS)) == "2/2 running"
    assert not page.model.index_of(alone).parent().isValid()
    qtbot.keyClick(page, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    page.focus_filter()
    qtbot.keyClicks(page.filter, "db")
    top = [page.proxy.index(r, 0) for r in range(page.proxy.rowCount())]
    assert [i.data() for i in top] == ["shop"]
    assert [page.proxy.index(r, 0, top[0]).data() for r in range(page.proxy.rowCount(top[0]))] == [
        "shop-db-1"
    ]
    page.view.selectionModel().select(
        top[0], page.view.selectionModel().SelectionFlag.ClearAndSelect
    )
    assert {r.id for r in page.selected_rows()} == {web, db}  # a stack stands for its members


def test_port_links_logs_and_inspect(
    qtbot: QtBot, page: ContainersPage, ctx: AppContext, gui_engine: EngineProcess
) -> None:
    port = free_port()
    cid = run(gui_engine, "--name", "site", "-p", f"{port}:80", "busybox", *LOOP)
    qtbot.waitUntil(lambda: state(page, cid) == "running", timeout=WAIT_MS)
    assert page.model.data(page.model.index_of(cid, PORTS)) == f"localhost:{port}"
    opened: list[str] = []
    page.open_url = opened.append
    page._clicked(page.proxy.mapFromSource(page.model.index_of(cid, PORTS)))
    page.select(cid)
    page.trigger("browse")
    assert opened == [f"http://localhost:{port}"] * 2
    with qtbot.waitSignal(ctx.logs_requested, timeout=WAIT_MS) as logs:
        page.trigger("logs")
    assert logs.args == [cid]
    page.trigger("inspect")
    qtbot.waitUntil(lambda: bool(page._viewers), timeout=WAIT_MS)
    viewer = page._viewers[0]
    assert cid in viewer.text.toPlainText()
    viewer.search.setText('"Running"')
    assert viewer.find_next()
    viewer.close()


def test_live_memory_for_a_running_container(
    qtbot: QtBot, page: ContainersPage, gui_engine: EngineProcess
) -> None:
    cid = run(gui_engine, "--name", "busy", "busybox", *LOOP)
    qtbot.waitUntil(lambda: state(page, cid) == "running", timeout=WAIT_MS)
    page._aim_stats()  # what the 2 s timer does
    assert page.visible_running_ids() == [cid]

    def sampled() -> bool:
        row = page.model.container(cid)
        return row is not None and row.memory_bytes is not None and row.cpu_percent is not None

    qtbot.waitUntil(sampled, timeout=WAIT_MS)


def test_a_destroyed_container_goes_and_a_reconnect_refreshes_everything(
    qtbot: QtBot, page: ContainersPage, ctx: AppContext, gui_engine: EngineProcess
) -> None:
    cid = run(gui_engine, "--name", "short", "busybox", *LOOP)
    qtbot.waitUntil(lambda: state(page, cid) == "running", timeout=WAIT_MS)
    gui_engine.docker("rm", "-f", cid)
    qtbot.waitUntil(lambda: page.model.container(cid) is None, timeout=WAIT_MS)
    with qtbot.waitSignal(ctx.events.disconnected, timeout=WAIT_MS):
        gui_engine.stop()
    gui_engine.start()
    made = gui_engine.docker("create", "--name", "made-while-away", "busybox").stdout.strip()
    ctx.retry()
    qtbot.waitUntil(lambda: state(page, made) == "created", timeout=WAIT_MS)


def test_terminal_opens_the_users_terminal_with_the_engine_address(
    qtbot: QtBot,
    page: ContainersPage,
    gui_engine: EngineProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cid = run(gui_engine, "--name", "shell", "busybox", *LOOP)
    qtbot.waitUntil(lambda: state(page, cid) == "running", timeout=WAIT_MS)
    page.select(cid)
    bin_dir, out = tmp_path / "bin", tmp_path / "launched"
    bin_dir.mkdir()
    term = bin_dir / "myterm"  # a terminal that records how it was started
    term.write_text(f'#!/bin/sh\necho "$DOCKER_HOST|$HOME|$*" > {out}\n')
    term.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("TERMINAL", "myterm")
    page.trigger("terminal")
    qtbot.waitUntil(out.exists, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: out.read_text().count("|") == 2, timeout=WAIT_MS)
    host, home, args = out.read_text().strip().split("|")
    assert host == gui_engine.host and home == os.environ["HOME"]
    assert args == f"-e docker exec -it {cid} sh"
    monkeypatch.delenv("TERMINAL")
    page.trigger("terminal")  # no terminal anywhere on PATH: the command goes to the clipboard
    assert (
        QGuiApplication.clipboard().text()
        == f"DOCKER_HOST={gui_engine.host} docker exec -it {cid} sh"
    )
    assert "clipboard" in page.notice.text()


def test_empty_states_say_what_to_do(
    qtbot: QtBot, page: ContainersPage, gui_engine: EngineProcess
) -> None:
    assert page.stack.currentWidget() is page.empty
    assert "No containers yet" in page.empty.text()
    cid = run(gui_engine, "--name", "lonely", "busybox", *LOOP)
    qtbot.waitUntil(lambda: page.stack.currentWidget() is page.view, timeout=WAIT_MS)
    page.filter.setText("nothing-like-this")
    assert page.stack.currentWidget() is page.empty
    assert page.empty.text() == "No containers match “nothing-like-this”."
    page.filter.clear()
    assert page.stack.currentWidget() is page.view
    gui_engine.docker("rm", "-f", cid)
    qtbot.waitUntil(lambda: page.stack.currentWidget() is page.empty, timeout=WAIT_MS)


def test_enter_on_a_row_opens_its_logs(
    qtbot: QtBot, page: ContainersPage, ctx: AppContext, gui_engine: EngineProcess
) -> None:
    cid = run(gui_engine, "--name", "enter", "busybox", *LOOP)
    qtbot.waitUntil(lambda: state(page, cid) == "running", timeout=WAIT_MS)
    page.select(cid)
    page.view.setFocus()
    with qtbot.waitSignal(ctx.logs_requested, timeout=WAIT_MS) as asked:
        qtbot.keyClick(page.view, Qt.Key.Key_Return)
    assert asked.args == [cid]
