"""The networks page against a real engine: built-ins listed and not removable, create
(name, subnet, internal) from the form, containers attached shown, remove; bad form input
pointed at in the form, and the engine's refusals shown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from app.gui.context import AppContext
from app.gui.models.networks import NetworkRow, create_body
from app.gui.pages.networks import NetworksPage
from app.gui.views.network_dialog import NetworkDialog
from tests.engine_process import EngineProcess
from tests.gui.conftest import WAIT_MS, shown_list_page


@pytest.fixture
def page(qtbot: QtBot, ctx: AppContext) -> Iterator[NetworksPage]:
    yield from shown_list_page(qtbot, ctx, NetworksPage())


def by_name(page: NetworksPage) -> dict[str, NetworkRow]:
    return {r.name: r for r in page.model.rows()}


def test_built_ins_are_listed_and_cannot_be_removed(qtbot: QtBot, page: NetworksPage) -> None:
    assert {"bridge", "host", "none"} <= set(by_name(page))
    assert by_name(page)["bridge"].subnets  # the default bridge has its subnet
    remove = page.actions()[1]
    assert remove.text() == "Remove"
    assert page.select_key(by_name(page)["bridge"].id)
    assert not remove.isEnabled()


def test_create_show_members_and_remove(
    qtbot: QtBot, page: NetworksPage, gui_engine: EngineProcess
) -> None:
    page.ask_create = lambda: create_body("backend", "10.231.7.0/24", True)
    page.create_network()
    qtbot.waitUntil(lambda: "backend" in by_name(page), timeout=WAIT_MS)
    row = by_name(page)["backend"]
    assert row.subnets == ("10.231.7.0/24",) and row.internal and row.driver == "bridge"
    assert page.notice.text() == "Created backend"

    gui_engine.docker(
        "run", "-d", "--name", "member", "--network", "backend", "busybox", "sleep", "600"
    )
    qtbot.waitUntil(lambda: by_name(page)["backend"].containers == ("member",), timeout=WAIT_MS)

    page.ask_create = lambda: create_body("backend", "", False)
    page.create_network()  # the name is taken: the engine's refusal is shown
    qtbot.waitUntil(lambda: page.notice.text().startswith("Could not create"), timeout=WAIT_MS)

    page.ask_remove = lambda names: names == ["backend"]
    assert page.select_key(row.id)
    page.remove_selected()  # a running container is attached: refused, kept
    qtbot.waitUntil(lambda: page.notice.text().startswith("Could not remove"), timeout=WAIT_MS)
    assert "backend" in by_name(page)

    gui_engine.docker("rm", "-f", "member")
    assert page.select_key(row.id)
    page.remove_selected()
    qtbot.waitUntil(lambda: "backend" not in by_name(page), timeout=WAIT_MS)
    assert "backend" not in gui_engine.docker("network", "ls", "--format", "{{.Name}}").stdout


def test_the_form_points_at_bad_input(qtbot: QtBot, page: NetworksPage) -> None:
    dialog = NetworkDialog(page)
    qtbot.addWidget(dialog)
    for name, subnet, wanted in (
        ("", "", "Give the network a name"),
        ("bad name!", "", "not a valid name"),
        ("host", "", "built-in"),
        ("ok", "10.0.0.1/24", "not a subnet"),
        ("ok", "banana", "not a subnet"),
    ):
        dialog.name.setText(name)
        dialog.subnet.setText(subnet)
        dialog.accept()
        assert wanted in dialog.error.text()
        assert dialog.body is None
    dialog.name.setText("good")
    dialog.subnet.setText("10.9.0.0/16")
    dialog.internal.setChecked(True)
    dialog.accept()
    assert dialog.body == {
        "Name": "good",
        "Driver": "bridge",
        "Internal": True,
        "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.9.0.0/16"}]},
    }
