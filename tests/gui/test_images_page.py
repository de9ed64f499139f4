"""The images page against a real engine: the list follows the engine's events, a pull's
per-layer bars and overall bar reach done, remove (plain and forced) and prune with the
space freed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from app.gui.context import AppContext
from app.gui.models.pull import DONE
from app.gui.pages.images import ImagesPage
from app.gui.views.pull_dialog import STEPS
from tests.engine_process import EngineProcess
from tests.gui.conftest import WAIT_MS, shown_list_page


@pytest.fixture
def page(qtbot: QtBot, ctx: AppContext) -> Iterator[ImagesPage]:
    yield from shown_list_page(qtbot, ctx, ImagesPage())


def names(page: ImagesPage) -> set[str]:
    return {r.name for r in page.model.rows()}


def test_lists_images_by_tag_and_follows_events(
    qtbot: QtBot, page: ImagesPage, gui_engine: EngineProcess
) -> None:
    assert "busybox:latest" in names(page)
    row = next(r for r in page.model.rows() if r.name == "busybox:latest")
    assert row.size > 0 and row.id.startswith("sha256:") and len(row.short_id) == 12
    gui_engine.docker("tag", "busybox", "example/extra:v1")
    qtbot.waitUntil(lambda: "example/extra:v1" in names(page), timeout=WAIT_MS)
    gui_engine.docker("rmi", "example/extra:v1")
    qtbot.waitUntil(lambda: "example/extra:v1" not in names(page), timeout=WAIT_MS)


def test_pull_shows_each_layer_and_reaches_done(
    qtbot: QtBot, page: ImagesPage, registry_with_images: str
) -> None:
    image = f"{registry_with_images}/multilayer"
    dialog = page.open_pull(image)
    qtbot.addWidget(dialog)
    seen: list[int] = []
    dialog.overall.valueChanged.connect(seen.append)
    with qtbot.waitSignal(dialog.pulled, timeout=WAIT_MS) as blocker:
        dialog.start_pull()
    assert blocker.args == [image]
    assert dialog.overall.value() == STEPS
    assert any(0 < v < STEPS for v in seen)  # it moved through the layers, not in one jump
    layers = dialog.model.layers
    assert len(layers) >= 2
    assert all(layer.status in DONE and layer.fraction == 1.0 for layer in layers)
    assert "Downloaded newer image" in dialog.status.text()
    qtbot.waitUntil(lambda: f"{image}:latest" in names(page), timeout=WAIT_MS)
    assert "Pulled" in page.notice.text()

    dialog.start_pull()  # again: every layer already exists, still done
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    assert dialog.overall.value() == STEPS
    assert "up to date" in dialog.status.text()


def test_a_failed_pull_says_why(qtbot: QtBot, page: ImagesPage, registry_with_images: str) -> None:
    dialog = page.open_pull(f"{registry_with_images}/no-such-image")
    qtbot.addWidget(dialog)
    dialog.start_pull()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    assert dialog.status.text().startswith("Could not pull")
    assert dialog.overall.value() < STEPS
    assert dialog.pull_button.isEnabled()
    dialog.image_box.setText("")
    dialog.start_pull()
    assert "Type an image name" in dialog.status.text()


def test_remove_untags_and_force_removes_an_image_in_use(
    qtbot: QtBot, page: ImagesPage, gui_engine: EngineProcess
) -> None:
    gui_engine.docker("tag", "busybox", "example/used:v1")
    gui_engine.docker("create", "--name", "holder", "example/used:v1", "true")
    qtbot.waitUntil(lambda: "example/used:v1" in names(page), timeout=WAIT_MS)
    key = next(r.key for r in page.model.rows() if r.name == "example/used:v1")

    asked: list[list[str]] = []
    page.ask_remove = lambda shown: (asked.append(shown), (False, False))[1]
    assert page.select_key(key)
    page.remove_selected()
    assert asked == [["example/used:v1"]]
    assert "example/used:v1" in names(page)  # cancelled: nothing happened

    page.ask_remove = lambda _: (True, False)
    page.remove_selected()  # a tag among several: untagged even though a container uses it
    qtbot.waitUntil(lambda: "example/used:v1" not in names(page), timeout=WAIT_MS)
    assert "busybox:latest" in names(page)


def test_remove_refusal_is_shown_and_force_goes_through(
    qtbot: QtBot, page: ImagesPage, gui_engine: EngineProcess
) -> None:
    gui_engine.docker("create", "--name", "holder", "busybox", "true")
    image_id = next(r.id for r in page.model.rows() if r.name == "busybox:latest")
    untagged = {r.key for r in page.model.rows() if r.id == image_id}
    assert page.select_key(next(iter(untagged)))
    page.view.selectAll()
    page.ask_remove = lambda _: (True, False)
    page.remove_selected()
    qtbot.waitUntil(lambda: "Could not remove" in page.notice.text(), timeout=WAIT_MS)
    assert "must force" in page.notice.text()
    qtbot.waitUntil(lambda: names(page) == {"busybox:latest"}, timeout=WAIT_MS)

    page.view.selectAll()
    page.ask_remove = lambda _: (True, True)
    page.remove_selected()
    qtbot.waitUntil(lambda: page.notice.text().startswith("Removed"), timeout=WAIT_MS)
    # Every tag is gone; the image itself may stay untagged while the container holds it.
    qtbot.waitUntil(lambda: names(page) <= {image_id[7:19]}, timeout=WAIT_MS)
    gui_engine.docker("rm", "holder")
    page.view.selectAll()
    page.remove_selected()
    qtbot.waitUntil(lambda: page.model.rowCount() == 0, timeout=WAIT_MS)
    assert page.stack.currentWidget() is page.empty
    assert "No images yet" in page.empty.text()


def test_prune_all_unused_shows_the_space_freed(
    qtbot: QtBot, page: ImagesPage, gui_engine: EngineProcess, registry_with_images: str
) -> None:
    gui_engine.docker("pull", f"{registry_with_images}/multilayer")
    qtbot.waitUntil(lambda: any("multilayer" in n for n in names(page)), timeout=WAIT_MS)
    page.ask_prune = lambda: (False, True)
    page.prune()
    assert any("multilayer" in n for n in names(page))

    page.ask_prune = lambda: (True, False)  # dangling only: there is none
    page.prune()
    qtbot.waitUntil(lambda: "Nothing to prune" in page.notice.text(), timeout=WAIT_MS)

    page.ask_prune = lambda: (True, True)
    page.prune()
    qtbot.waitUntil(lambda: page.notice.text().startswith("Pruned"), timeout=WAIT_MS)
    assert "freed" in page.notice.text() and "· 0 B freed" not in page.notice.text()
    qtbot.waitUntil(lambda: not any("multilayer" in n for n in names(page)), timeout=WAIT_MS)


def test_cancel_ends_the_pull_and_a_late_outcome_changes_nothing(
    qtbot: QtBot, page: ImagesPage, registry_with_images: str
) -> None:
    dialog = page.open_pull(f"{registry_with_images}/multiarch")
    qtbot.addWidget(dialog)
    dialog.start_pull()
    assert dialog.running and not dialog.pull_button.isEnabled()
    dialog.cancel()
    assert not dialog.running and dialog.pull_button.isEnabled()
    assert dialog.status.text().endswith("cancelled")
    assert dialog.stream is not None and dialog.stream.wait(WAIT_MS)
    qtbot.wait(200)  # anything still queued from the stream arrives now
    assert dialog.status.text().endswith("cancelled")
    assert dialog.overall.value() < STEPS
