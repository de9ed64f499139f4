"""`Page`: what every sidebar entry is, so the window can host pages it does not know.

A page module `app/gui/pages/<name>.py` defines one `Page` subclass named `<Name>Page`
(ContainersPage, ImagesPage, ...); the window lists the modules in its sidebar order and
skips one that does not exist yet. The window calls `attach(ctx)` once, before the page is
first shown, then `activated()` each time the page comes to the front and `deactivated()`
when it leaves; `focus_filter()` is Ctrl+F on that page; `shutdown()` at quit.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from app.gui.context import AppContext


class Page(QWidget):
    title: str = ""  # the sidebar's text and the window title's suffix
    icon_name: str = ""  # a freedesktop icon name (app/gui/icons.py draws a fallback)
    shortcut: str = ""  # "Ctrl+1" ...: switches to this page from anywhere in the window

    def __init__(self) -> None:
        super().__init__()
        self._ctx: AppContext | None = None

    @property
    def ctx(self) -> AppContext:
        if self._ctx is None:
            raise RuntimeError(f"{type(self).__name__} used before attach()")
        return self._ctx

    def attach(self, ctx: AppContext) -> None:
        """Called once by the window; subclasses connect to ctx's signals here."""
        self._ctx = ctx

    def title_bar(self, beside: QWidget, stretch: int = 1) -> QHBoxLayout:
        """The row that heads a page: its title (styled as pageTitle by the theme), then
        `beside` (a filter box, a machine picker) taking `stretch` of the width."""
        title = QLabel(self.title)
        title.setObjectName("pageTitle")
        bar = QHBoxLayout()
        bar.addWidget(title)
        bar.addSpacing(12)
        bar.addWidget(beside, stretch)
        return bar

    def activated(self) -> None:
        """The page is now in front (refresh what is cheap, start live updates)."""

    def deactivated(self) -> None:
        """Another page is in front (pause live updates that only this page shows)."""

    def focus_filter(self) -> None:
        """Ctrl+F: put the keyboard in this page's filter box, if it has one."""

    def shutdown(self) -> None:
        """The app is quitting: stop this page's threads and timers (called once)."""
