"""Logs windows: one top-level window per container, opened by `AppContext.open_logs(id)`.

Why windows and not a sidebar page: logs are looked at next to something else (the
containers table, a terminal, another container's logs), so each container gets a window of
its own that can sit beside the main one. Asking again for the same container raises its
window instead of opening a second stream.

Wiring (the main window does it once): `LogWindows(ctx)`; it listens to
`ctx.logs_requested` itself.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.gui.context import AppContext
from app.gui.views.logs_panel import LogsPanel


class LogsWindow(QWidget):
    """A top-level window around one LogsPanel; closing it ends the stream."""

    closed = Signal(str)  # container id

    def __init__(self, ctx: AppContext, container: str) -> None:
        super().__init__(None)
        self.setWindowTitle(f"Logs — {container[:12]}")
        self.resize(980, 620)
        self.panel = LogsPanel(ctx.client, container, settings=ctx.settings, parent=self)
        self.panel.stream.opened.connect(self._titled)  # a bound method: queued to this thread
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)
        QShortcut(QKeySequence.StandardKey.Close, self, self.close)
        self.panel.start()

    def _titled(self, name: str) -> None:
        self.setWindowTitle(f"Logs — {name}")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.panel.stop()
        self.closed.emit(self.panel.container)
        super().closeEvent(event)


class LogWindows(QObject):
    """Opens (or raises) the logs window of each container `ctx.open_logs` names."""

    opened = Signal(object)  # the LogsWindow, shown

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self._ctx = ctx
        self.windows: dict[str, LogsWindow] = {}
        ctx.logs_requested.connect(self.open)

    def open(self, container: str) -> LogsWindow:
        window = self.windows.get(container)
        if window is None:
            window = LogsWindow(self._ctx, container)
            window.closed.connect(self._forget)
            self.windows[container] = window
        window.show()
        window.raise_()
        window.activateWindow()
        self.opened.emit(window)
        return window

    def close_all(self) -> None:
        for window in list(self.windows.values()):
            window.close()

    def _forget(self, container: str) -> None:
        window = self.windows.pop(container, None)
        if window is not None:
            window.deleteLater()
