"""`ListPage`: what the images, volumes and networks pages share.

A title, a filter box, a row of actions, a sortable table over a KeyedTableModel, a notice
line for results and errors, and an empty state. The data flow is the containers page's, in
its simplest form: one `fetch(client)` on the thread pool at connect, when the page is first
shown, and after each burst of relevant engine events (coalesced, COALESCE_MS); its answer
updates the model by difference, so selection and scroll survive a refresh. Actions run on
the pool too and report in the notice line; their effect arrives as events.

A subclass sets `title`, `icon_name`, `shortcut`, `noun` and `empty_hint`, gives the model
(`columns`, `key`), implements `fetch`, names the EventHub signals that should refresh it
(`event_names`), and adds its actions with `add_action`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
)

from app.engine_client import EngineClient
from app.gui.context import AppContext
from app.gui.models.table import ROW_ROLE, SORT_ROLE, Column, KeyedTableModel
from app.gui.pages.base import Page

COALESCE_MS = 150


class ListPage(Page):
    noun = "items"  # "images": the empty state and messages name what is listed
    empty_hint = ""  # a line under "No images yet." saying how to get some
    event_names: tuple[str, ...] = ()  # EventHub signals that refresh the page

    def __init__(self, columns: list[Column], key: Callable[[Any], str]) -> None:
        super().__init__()
        self.model = KeyedTableModel(columns, key)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setDynamicSortFilter(True)
        self.view = _table(self.proxy)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText(f"Filter {self.noun}   (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(lambda t: self.proxy.setFilterFixedString(t.strip()))
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.empty = QLabel()
        self.empty.setObjectName("emptyState")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty)
        self.tools = QHBoxLayout()
        self.loaded = False
        self.failed_load = ""
        self._selection_actions: list[tuple[QAction, Callable[[list[Any]], bool]]] = []
        self._generation = 0
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(COALESCE_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        # The seam tests replace: a yes/no question before anything is deleted.
        self.confirm: Callable[[str, str], bool] = self._ask
        self._build()

    def _build(self) -> None:
        bar = self.title_bar(self.filter)
        tools_row = QHBoxLayout()
        tools_row.addLayout(self.tools)
        tools_row.addStretch(1)
        tools_row.addWidget(self.notice)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 12)
        layout.addLayout(bar)
        layout.addLayout(tools_row)
        layout.addWidget(self.stack, 1)
        self.view.selectionModel().selectionChanged.connect(self._update_actions)
        for sig in (self.model.modelReset, self.model.rowsInserted, self.model.rowsRemoved):
            sig.connect(self._update_empty)
        self._update_empty()

    def add_action(
        self,
        text: str,
        tip: str,
        shortcut: str,
        slot: Callable[[], None],
        enabled: Callable[[list[Any]], bool] | None = None,
    ) -> QAction:
        """A toolbar button (and shortcut on this page); `enabled(selected rows)` when given."""
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            tip = f"{tip} ({shortcut})"
        action.setToolTip(tip)
        action.triggered.connect(lambda _=False: slot())
        self.addAction(action)
        button = QToolButton()
        button.setDefaultAction(action)
        button.setAutoRaise(True)
        self.tools.addWidget(button)
        if enabled is not None:
            self._selection_actions.append((action, enabled))
            action.setEnabled(enabled([]))
        return action

    # -- Page ----------------------------------------------------------------------------
    def attach(self, ctx: AppContext) -> None:
        super().attach(ctx)
        ctx.events.connected.connect(self.refresh)
        for name in self.event_names:
            getattr(ctx.events, name).connect(self.on_event)
        ctx.host_changed.connect(lambda _h: self._clear())
        if ctx.events.is_connected:
            self.refresh()

    def activated(self) -> None:
        if not self.loaded:
            self.refresh()

    def focus_filter(self) -> None:
        self.filter.setFocus()
        self.filter.selectAll()

    def shutdown(self) -> None:
        self._refresh_timer.stop()

    # -- data ----------------------------------------------------------------------------
    def fetch(self, client: EngineClient) -> list[Any]:
        """The rows, read on a pool thread (never touches widgets)."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Re-read the list; an older answer still in flight is ignored when it comes."""
        self._refresh_timer.stop()
        self._generation += 1
        gen = self._generation
        self.ctx.run(self.fetch, lambda rows: self._loaded(gen, rows), self._load_failed)

    def on_event(self, _event: dict[str, Any]) -> None:
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _loaded(self, gen: int, rows: list[Any]) -> None:
        if gen != self._generation:
            return
        self.loaded = True
        self.failed_load = ""
        self.model.replace(rows)
        self._update_actions()
        self._update_empty()

    def _load_failed(self, error: Exception) -> None:
        self.failed_load = message_of(error)
        self._update_empty()

    def _clear(self) -> None:
        self.loaded = False
        self.model.replace([])

    # -- selection and results -------------------------------------------------------------
    def selected_rows(self) -> list[Any]:
        rows = []
        for index in self.view.selectionModel().selectedRows():
            row = self.proxy.data(index, ROW_ROLE)
            if row is not None:
                rows.append(row)
        return rows

    def select_key(self, key: str) -> bool:
        """Select the row of `key` (tests, deep links); False when there is none."""
        source = self.model.find(key)
        if source < 0:
            return False
        index = self.proxy.mapFromSource(self.model.index(source, 0))
        self.view.setCurrentIndex(index)
        self.view.selectionModel().select(
            index,
            self.view.selectionModel().SelectionFlag.ClearAndSelect
            | self.view.selectionModel().SelectionFlag.Rows,
        )
        return True

    def run_action(
        self,
        what: str,
        job: Callable[[EngineClient], Any],
        done: Callable[[Any], str] | None = None,
    ) -> None:
        """`job` on the pool; the notice says `done(result)` or why `what` failed."""
        self.notice.setText(f"{what[0].upper()}{what[1:]}…")

        def ok(result: Any) -> None:
            self.notice.setText(done(result) if done is not None else "")
            self.refresh()

        def failed(error: Exception) -> None:
            self.notice.setText(f"Could not {what}: {message_of(error)}")
            self.refresh()

        self.ctx.run(job, ok, failed)

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def ask_with_option(
        self, title: str, text: str, option: str, detail: str = ""
    ) -> tuple[bool, bool]:
        """A Yes/Cancel question (Cancel the default) with one checkbox, such as a remove's
        force or a prune's "everything": (answered Yes, box checked)."""
        box = QMessageBox(self)
        box.setWindowTitle(title)
        box.setText(text)
        if detail:
            box.setInformativeText(detail)
        checkbox = QCheckBox(option)
        box.setCheckBox(checkbox)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes, checkbox.isChecked()

    def _update_actions(self, *_: object) -> None:
        rows = self.selected_rows()
        for action, enabled in self._selection_actions:
            action.setEnabled(enabled(rows))

    def _update_empty(self, *_: object) -> None:
        if self.model.rowCount() > 0:
            self.stack.setCurrentWidget(self.view)
            return
        if self.failed_load:
            text = f"Could not list the {self.noun}: {self.failed_load}"
        elif self.loaded:
            text = f"No {self.noun} yet." + (f"\n\n{self.empty_hint}" if self.empty_hint else "")
        else:
            text = f"Loading {self.noun}…"
        self.empty.setText(text)
        self.stack.setCurrentWidget(self.empty)


def message_of(error: Exception) -> str:
    """The engine's words for an error (EngineError.message), else the exception's text."""
    return str(getattr(error, "message", "") or error or type(error).__name__)


def shown_names(names: list[str], limit: int = 5) -> str:
    """ "a, b, c and 4 more": names in a question without an endless line."""
    head = ", ".join(names[:limit])
    return head + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _table(proxy: QSortFilterProxyModel) -> QTableView:
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setShowGrid(False)
    view.setWordWrap(False)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 10)
    header = view.horizontalHeader()
    header.setHighlightSections(False)
    header.setStretchLastSection(True)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    return view


def set_widths(view: QTableView, widths: list[int]) -> None:
    for column, width in enumerate(widths):
        view.setColumnWidth(column, width)
