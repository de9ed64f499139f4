"""Settings: which engine to talk to, the theme, tray behaviour, and the shortcuts.

Everything is saved in QSettings as soon as it changes (no Apply button to forget); the
engine address takes effect when Connect is pressed, since a half-typed socket path must
not trigger a reconnect on every keystroke. A docker context picked from the list (the
user's `docker context ls`, each with its endpoint) connects at once: it is one choice.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app import dockercontexts
from app.engine_client import DEFAULT_HOST
from app.gui import prefs, theme
from app.gui.context import AppContext, context_host
from app.gui.pages.base import Page
from app.gui.pages.containers_actions import ACTIONS
from app.gui.views.firstrun import FirstRunDialog
from app.gui.views.support import AboutDialog, collect_diagnostics, reset_to_defaults

GLOBAL_SHORTCUTS = (
    ("Ctrl+1 … Ctrl+6", "Switch page"),
    ("Ctrl+F", "Filter the current page"),
    ("Ctrl+Q", "Quit Dockyard"),
    ("Enter", "Containers: show the logs of the current row"),
)
TYPED = ""  # the context list's entry for "the address typed below"


class SettingsPage(Page):
    title = "Settings"
    icon_name = "settings"
    shortcut = "Ctrl+6"

    def __init__(self) -> None:
        super().__init__()
        self.context = QComboBox()
        self.context.setToolTip("The docker contexts of `docker context ls`, or an address")
        self.context.activated.connect(self._context_chosen)
        self.host = QLineEdit()
        self.host.setPlaceholderText(DEFAULT_HOST + "  ·  tcp://HOST:PORT  ·  ssh://USER@HOST")
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.apply_host)
        self.host.returnPressed.connect(self.apply_host)
        self.state = QLabel()
        self.theme = QComboBox()
        for name in theme.THEMES:
            self.theme.addItem(name.capitalize(), name)
        self.close_to_tray = QCheckBox("Keep running in the tray when the window is closed")
        self.notify_exits = QCheckBox("Notify when a container exits with an error")
        self.shortcuts = _shortcut_table()
        self.about_button = QPushButton("About Dockyard")
        self.setup_button = QPushButton("First-run setup…")
        self.diagnostics_button = QPushButton("Collect diagnostics…")
        self.reset_button = QPushButton("Reset to factory defaults…")
        support_row = QHBoxLayout()
        for button in (
            self.about_button,
            self.setup_button,
            self.diagnostics_button,
            self.reset_button,
        ):
            support_row.addWidget(button)
        support_row.addStretch(1)
        title = QLabel(self.title)
        title.setObjectName("pageTitle")
        host_row = QHBoxLayout()
        host_row.addWidget(self.host, 1)
        host_row.addWidget(self.connect_button)
        form = QFormLayout()
        form.addRow("Engine", self.context)
        form.addRow("Address", host_row)
        form.addRow("", self.state)
        form.addRow("Theme", self.theme)
        form.addRow("", self.close_to_tray)
        form.addRow("", self.notify_exits)
        form.addRow("Support", support_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 12)
        layout.addWidget(title)
        layout.addSpacing(8)
        layout.addLayout(form)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Keyboard shortcuts"))
        layout.addWidget(self.shortcuts, 1)

    def attach(self, ctx: AppContext) -> None:
        super().attach(ctx)
        s = ctx.settings
        self.refresh_contexts()
        ctx.host_changed.connect(lambda _h: self._show_choice())
        self.theme.setCurrentIndex(max(0, self.theme.findData(s.value(prefs.THEME, "system"))))
        self.close_to_tray.setChecked(bool(s.value(prefs.CLOSE_TO_TRAY, True, type=bool)))
        self.notify_exits.setChecked(bool(s.value(prefs.NOTIFY_EXITS, True, type=bool)))
        self.theme.currentIndexChanged.connect(self._theme_changed)
        self.close_to_tray.toggled.connect(lambda on: s.setValue(prefs.CLOSE_TO_TRAY, on))
        self.notify_exits.toggled.connect(lambda on: s.setValue(prefs.NOTIFY_EXITS, on))
        ctx.events.connected.connect(lambda: self.state.setText(f"Connected to {ctx.describe()}"))
        self.about_button.clicked.connect(lambda: AboutDialog(self).exec())
        self.setup_button.clicked.connect(self.open_setup)
        self.diagnostics_button.clicked.connect(lambda: collect_diagnostics(self, ctx))
        self.reset_button.clicked.connect(lambda: reset_to_defaults(self, ctx))
        ctx.events.disconnected.connect(lambda why: self.state.setText(f"Not connected: {why}"))

    def activated(self) -> None:
        self.refresh_contexts()  # one made with `docker context create` since shows up

    def refresh_contexts(self) -> None:
        """List the docker contexts with their endpoints; select the one in use."""
        self.context.clear()
        self.context.addItem("The address below", TYPED)
        for c in dockercontexts.list_contexts(os.environ):
            endpoint = c.host or (context_host(c.name) if c.name == dockercontexts.DEFAULT else "")
            mark = "  (docker's current)" if c.current else ""
            self.context.addItem(f"{c.name} — {endpoint or 'no docker endpoint'}{mark}", c.name)
            self.context.setItemData(
                self.context.count() - 1, c.description, Qt.ItemDataRole.ToolTipRole
            )
        self._show_choice()

    def _show_choice(self) -> None:
        chosen = self.ctx.context or TYPED
        if self.context.findData(chosen) < 0:  # a saved context that is gone
            self.context.addItem(f"{chosen} — not found", chosen)
        self.context.setCurrentIndex(self.context.findData(chosen))
        self.host.setText(self.ctx.host)

    def _context_chosen(self, index: int) -> None:
        name = str(self.context.itemData(index) or TYPED)
        if name == TYPED:
            self.host.setFocus()
            self.host.selectAll()
            return
        self.state.setText(f'Connecting to docker context "{name}"…')
        self.ctx.set_context(name)

    def open_setup(self) -> None:
        dialog = FirstRunDialog(self)
        dialog.machine_ready.connect(self.ctx.set_host)
        dialog.show()

    def apply_host(self) -> None:
        host = self.host.text().strip() or DEFAULT_HOST
        if "://" not in host:
            host = "unix://" + host
            self.host.setText(host)
        self.state.setText(f"Connecting to {host}…")
        self.ctx.set_host(host)

    def _theme_changed(self) -> None:
        choice = str(self.theme.currentData())
        self.ctx.settings.setValue(prefs.THEME, choice)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply(app, choice)


def _shortcut_table() -> QTableWidget:
    rows = [*GLOBAL_SHORTCUTS, *((a.shortcut, f"Containers: {a.tip}") for a in ACTIONS)]
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(["Keys", "Action"])
    table.verticalHeader().hide()
    table.horizontalHeader().setStretchLastSection(True)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setShowGrid(False)
    table.setAlternatingRowColors(True)
    table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
    table.horizontalHeader().setDefaultAlignment(
        Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    )
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
    table.setColumnWidth(0, 160)
    for i, (keys, what) in enumerate(rows):
        table.setItem(i, 0, QTableWidgetItem(keys))
        table.setItem(i, 1, QTableWidgetItem(what))
    return table
