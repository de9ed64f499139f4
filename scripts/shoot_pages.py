#!/usr/bin/env python3
"""The Qt half of `make screenshots` (scripts/screenshots.py runs it under Xvfb): the real
app's window on a populated engine, one PNG per page, plus the logs window, the images page
with a pull in its dialog, and the containers page in the dark theme too.

Each shot waits for what it shows to be there (the events stream connected, the lists
loaded, a pull finished, a few samples in the machine's graphs) rather than for a guess.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QEventLoop, QPoint, QTimer  # noqa: E402
from PySide6.QtGui import QColor, QPainter, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from app.engine_client import EngineClient  # noqa: E402
from app.gui import theme  # noqa: E402
from app.gui.app import make_app  # noqa: E402
from app.gui.context import AppContext  # noqa: E402
from app.gui.pages.containers import ContainersPage  # noqa: E402
from app.gui.pages.images import ImagesPage  # noqa: E402
from app.gui.pages.machine import MachinePage  # noqa: E402
from app.gui.window import MainWindow  # noqa: E402

SIZE = (1180, 720)


def settle(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(ready: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        settle(100)


def save(pixmap: QPixmap, out: Path, name: str) -> None:
    path = out / f"{name}.png"
    if not pixmap.save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(f"saved {path}", flush=True)


def with_dialog(window: QPixmap, dialog: QWidget) -> QPixmap:
    """The window dimmed, with the dialog over its middle (no window manager under Xvfb
    to draw one over the other, and a window grab leaves dialogs out)."""
    shot = QPixmap(window)
    p = QPainter(shot)
    p.fillRect(shot.rect(), QColor(0, 0, 0, 70))
    front = dialog.grab()
    at = QPoint((shot.width() - front.width()) // 2, (shot.height() - front.height()) // 2)
    p.setPen(QColor(0, 0, 0, 90))
    p.drawRect(at.x() - 1, at.y() - 1, front.width() + 1, front.height() + 1)
    p.drawPixmap(at, front)
    p.end()
    return shot


def container_id(host: str, name: str) -> str:
    docs = EngineClient(host, timeout=10).get("/containers/json", {"all": True})
    for doc in docs:
        if f"/{name}" in (doc.get("Names") or []):
            return str(doc["Id"])
    raise SystemExit(f"no container named {name}")


def shoot(app: QApplication, window: MainWindow, ctx: AppContext, args: argparse.Namespace) -> None:
    """The machine first: its graphs take half a minute to fill, which also gives the
    containers page's uptimes and exit times a realistic age by the time it is taken."""
    out: Path = args.out
    machine = window.page("Machine")
    assert isinstance(machine, MachinePage)
    window.show_page("Machine")
    wait_until(lambda: len(machine.memory.values) >= 15, "the machine's graphs", 90)
    save(window.grab(), out, "machine")
    machine.tabs.setCurrentIndex(3)  # the ports, and where each is reachable
    settle(800)
    save(window.grab(), out, "machine-ports")
    machine.tabs.setCurrentIndex(0)

    images = window.page("Images")
    assert isinstance(images, ImagesPage)
    window.show_page("Images")
    settle(1500)
    dialog = images.open_pull(args.pull)
    dialog.start_pull()
    wait_until(lambda: not dialog.running, "the pull", 120)
    settle(1200)
    save(with_dialog(window.grab(), dialog), out, "images")
    dialog.close()

    for title in ("Volumes", "Networks", "Settings"):
        window.show_page(title)
        settle(1500)
        save(window.grab(), out, title.lower())

    logs = window.logs.open(container_id(ctx.host, "worker"))
    logs.resize(1000, 560)
    settle(3500)
    save(logs.grab(), out, "logs")
    logs.close()

    containers = window.page("Containers")
    assert isinstance(containers, ContainersPage)
    window.show_page("Containers")
    wait_until(lambda: containers.model.rowCount() > 0, "the containers list")
    containers.view.expandAll()
    settle(5000)  # stats for the rows on screen, stacks expanded
    save(window.grab(), out, "containers")
    theme.apply(app, "dark")
    settle(600)
    save(window.grab(), out, "containers-dark")
    theme.apply(app, "light")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", required=True, help="the engine (unix://PATH)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pull", required=True, help="the image the pull dialog pulls")
    args = ap.parse_args()
    app = make_app(["dockyard-desktop"])
    ctx = AppContext(host=args.host)
    theme.apply(app, "light")
    window = MainWindow(ctx)
    window.resize(*SIZE)
    window.move(0, 0)
    window.show()
    ctx.start()
    try:
        wait_until(lambda: ctx.events.is_connected, "the engine's events")
        shoot(app, window, ctx, args)
    finally:
        window.shutdown()
        ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
