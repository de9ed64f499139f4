"""The child bench/gui.py measures: `dockyard-desktop`'s own main(), with the main window
class wrapped so the process reports on stdout the moment the window first paints (it is on
screen), and, in `idle` mode, the moment the containers page lists N rows.

Usage: python bench/gui_probe.py shown|idle N -- <dockyard-desktop arguments>
Each report is a line `<event> <CLOCK_MONOTONIC seconds>`, comparable with the parent's
own monotonic clock (one clock per boot on Linux). `shown` quits after the first paint;
`idle` keeps running until SIGINT (the app's own Ctrl-C handling).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QEvent, QTimer
from PySide6.QtWidgets import QApplication

import app.gui.app as desktop
from app.gui.pages.containers import ContainersPage
from app.gui.window import MainWindow


def report(event: str) -> None:
    print(f"{event} {time.monotonic():.6f}", flush=True)


def probe_class(mode: str, rows: int) -> type[MainWindow]:
    class Probed(MainWindow):
        painted = False

        def event(self, e: QEvent) -> bool:
            handled = super().event(e)
            if e.type() == QEvent.Type.Paint and not Probed.painted:
                Probed.painted = True
                report("shown")
                if mode == "shown":
                    QTimer.singleShot(0, QApplication.quit)
                else:
                    self._watch_rows()
            return handled

        def _watch_rows(self) -> None:
            page = self.page("Containers")
            timer = QTimer(self)

            def check() -> None:
                if isinstance(page, ContainersPage) and page.model.rowCount() >= rows:
                    timer.stop()
                    report("listed")

            timer.timeout.connect(check)
            timer.start(50)

    return Probed


def main(argv: list[str]) -> int:
    mode, rows, rest = argv[0], int(argv[1]), argv[3:]
    patched: Any = probe_class(mode, rows)
    desktop.MainWindow = patched  # type: ignore[misc]
    return desktop.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
