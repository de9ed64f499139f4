"""The main window: a sidebar of pages, the unreachable-engine banner, and the shortcuts.

Pages are found by module name in sidebar order (`PAGES`); a module that does not exist yet
is left out, so each page lands on its own. Closing the window keeps the app in the tray when
there is one (and the setting says so); quitting is the tray's or Ctrl+Q's job.
"""

from __future__ import annotations

import importlib
import importlib.util

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui import prefs
from app.gui.context import AppContext
from app.gui.icons import page_icon
from app.gui.pages.base import Page
from app.gui.pages.logs import LogWindows
from app.gui.views.banner import Banner

PAGES = ("containers", "images", "volumes", "networks", "machine", "settings")


def page_classes(names: tuple[str, ...] = PAGES) -> list[type[Page]]:
    """For each page module that exists, `<Name>Page` in it, else the one Page subclass it
    defines; a module that defines none is an error worth seeing at startup."""
    found: list[type[Page]] = []
    for name in names:
        module_name = f"app.gui.pages.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        conventional = getattr(module, f"{name.capitalize()}Page", None)
        defined = [
            v
            for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, Page) and v.__module__ == module_name
        ]
        page = conventional or (defined[0] if len(defined) == 1 else None)
        if page is None:
            raise LookupError(f"{module_name} must define {name.capitalize()}Page (a Page)")
        found.append(page)
    return found


class MainWindow(QMainWindow):
    quit_requested = Signal()

    def __init__(self, ctx: AppContext, pages: list[Page] | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.tray_available = False  # set by the tray: closing then hides instead
        self.setWindowTitle("Dockyard")
        self.setMinimumSize(QSize(980, 560))
        self.pages = pages if pages is not None else [cls() for cls in page_classes()]
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(170)
        self.sidebar.setIconSize(QSize(18, 18))
        self.stack = QStackedWidget()
        self.banner = Banner()
        self._current: Page | None = None
        self.logs = LogWindows(ctx)  # opens a logs window on ctx.open_logs(container id)
        self._build()
        self._wire()
        geometry = ctx.settings.value(prefs.GEOMETRY)
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1180, 720)

    def _build(self) -> None:
        for page in self.pages:
            item = QListWidgetItem(page_icon(page.icon_name), page.title)
            item.setToolTip(f"{page.title} ({page.shortcut})" if page.shortcut else page.title)
            self.sidebar.addItem(item)
            self.stack.addWidget(page)
            page.attach(self.ctx)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.stack, 1)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.sidebar)
        row.addWidget(right, 1)
        self.setCentralWidget(central)
        self.sidebar.currentRowChanged.connect(self._show_index)
        if self.pages:
            self.sidebar.setCurrentRow(0)

    def _wire(self) -> None:
        events = self.ctx.events
        events.connected.connect(self.banner.clear)
        events.disconnected.connect(
            lambda why: self.banner.show_unreachable(self.ctx.describe(), why)
        )
        self.banner.retry_clicked.connect(self.ctx.retry)
        self.ctx.page_requested.connect(self.show_page)
        for i, page in enumerate(self.pages):
            if page.shortcut:
                QShortcut(QKeySequence(page.shortcut), self, lambda i=i: self.show_index(i))
        QShortcut(QKeySequence.StandardKey.Find, self, self._focus_filter)
        QShortcut(QKeySequence("Ctrl+Q"), self, self.quit_requested.emit)

    # -- pages ---------------------------------------------------------------------------

    def page(self, title: str) -> Page | None:
        return next((p for p in self.pages if p.title == title), None)

    def current_page(self) -> Page | None:
        return self._current

    def show_page(self, title: str) -> None:
        page = self.page(title)
        if page is not None:
            self.show_index(self.pages.index(page))

    def show_index(self, i: int) -> None:
        self.sidebar.setCurrentRow(i)

    def _show_index(self, i: int) -> None:
        if not 0 <= i < len(self.pages):
            return
        if self._current is not None:
            self._current.deactivated()
        self._current = self.pages[i]
        self.stack.setCurrentWidget(self._current)
        self.setWindowTitle(f"Dockyard — {self._current.title}")
        self._current.activated()

    def _focus_filter(self) -> None:
        if self._current is not None:
            self._current.focus_filter()

    def bring_to_front(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    # -- closing -------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.ctx.settings.setValue(prefs.GEOMETRY, self.saveGeometry())
        keep = self.ctx.settings.value(prefs.CLOSE_TO_TRAY, True, type=bool)
        if self.tray_available and keep:
            event.ignore()
            self.hide()
            return
        event.accept()
        self.quit_requested.emit()

    def shutdown(self) -> None:
        """Stop every page's threads and timers (the app is quitting)."""
        self.logs.close_all()
        for page in self.pages:
            page.shutdown()
