"""The containers page: every container, grouped by compose project, with live updates.

Data flow: a full list at connect (and after each reconnect) resets the model; each
container event afterwards marks its container dirty, and dirty containers are re-read in
one `/containers/json?filters={"id": [...]}` call per burst, then applied as row inserts,
updates or removals. Live CPU/memory comes from StatsPoller for the running rows on screen.
Actions run on the thread pool; their effect arrives as events like any other change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPoint,
    QProcess,
    QProcessEnvironment,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    QUrl,
)
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QStackedWidget,
    QToolButton,
    QTreeView,
    QVBoxLayout,
)

from app.gui import terminal
from app.gui.context import AppContext
from app.gui.models.container_row import ContainerRow, row_from_summary
from app.gui.models.containers import (
    COLUMNS,
    CPU,
    IMAGE,
    MEMORY,
    NAME,
    PORTS,
    ROW_ROLE,
    SORT_ROLE,
    STATUS,
    ContainersModel,
)
from app.gui.pages.base import Page
from app.gui.pages.containers_actions import ACTIONS, calls_for, enabled_actions, pause_verb
from app.gui.views.json_viewer import JsonViewer
from app.gui.workers.stats import MAX_TARGETS, StatsPoller

REFRESH_ACTIONS = {
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "kill",
    "rename",
    "pause",
    "unpause",
    "update",
    "health_status",
    "oom",
}
COALESCE_MS = 40  # a burst of events (compose up, 1,000 starts) becomes one list call
UPTIME_TICK_MS = 30_000
STATS_TICK_MS = 2_000


class ContainersPage(Page):
    title = "Containers"
    icon_name = "containers"
    shortcut = "Ctrl+1"

    def __init__(self) -> None:
        super().__init__()
        self.model = ContainersModel()
        self.proxy = _proxy(self.model)
        self.view = _tree(self.proxy)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name, image, status or port   (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter_changed)
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.empty = QLabel()
        self.empty.setObjectName("emptyState")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.actions_by_key: dict[str, QAction] = {}
        # Seams the tests replace: the confirmation and the browser.
        self.confirm_remove: Callable[[list[str]], bool] = self._ask_remove
        self.open_url: Callable[[str], object] = lambda url: QDesktopServices.openUrl(QUrl(url))
        self._dirty: set[str] = set()
        self._generation = 0
        self._loaded = False
        self._refreshing = False  # a full list is in flight: row updates wait for it
        self._stats: StatsPoller | None = None
        self._viewers: list[JsonViewer] = []
        self._flush_timer = _single_shot(COALESCE_MS, self._flush)
        self._uptime_timer = QTimer(self)
        self._uptime_timer.setInterval(UPTIME_TICK_MS)
        self._uptime_timer.timeout.connect(self.model.tick)
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_TICK_MS)
        self._stats_timer.timeout.connect(self._aim_stats)
        self._build()

    # -- layout ------------------------------------------------------------------------

    def _build(self) -> None:
        bar = self.title_bar(self.filter)
        for spec in ACTIONS:
            action = QAction(spec.text, self)
            action.setShortcut(QKeySequence(spec.shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.setToolTip(f"{spec.tip} ({spec.shortcut})")
            action.triggered.connect(lambda _=False, k=spec.key: self.trigger(k))
            self.addAction(action)
            self.actions_by_key[spec.key] = action
        tools = QHBoxLayout()
        for key in ("start", "stop", "restart", "pause", "remove", "logs", "terminal", "inspect"):
            button = QToolButton()
            button.setDefaultAction(self.actions_by_key[key])
            button.setAutoRaise(True)
            tools.addWidget(button)
        tools.addStretch(1)
        tools.addWidget(self.notice)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 12)
        layout.addLayout(bar)
        layout.addLayout(tools)
        layout.addWidget(self.stack, 1)
        self.view.selectionModel().selectionChanged.connect(self._update_actions)
        self.view.clicked.connect(self._clicked)
        self.view.activated.connect(self._activated)  # double-click, or Enter on a row
        self.view.customContextMenuRequested.connect(self._context_menu)
        for sig in (self.proxy.modelReset, self.proxy.rowsInserted, self.proxy.rowsRemoved):
            sig.connect(self._update_empty)
        self.proxy.layoutChanged.connect(self._update_empty)
        self._update_actions()
        self._update_empty()

    # -- Page --------------------------------------------------------------------------

    def attach(self, ctx: AppContext) -> None:
        super().attach(ctx)
        ctx.events.connected.connect(self.refresh)
        ctx.events.container.connect(self.on_event)
        ctx.host_changed.connect(self._host_changed)
        self._stats = StatsPoller(lambda: ctx.client(timeout=5.0))
        self._stats.sampled.connect(self.model.set_stats)
        self._stats.start()
        self._uptime_timer.start()
        self._stats_timer.start()
        if ctx.events.is_connected:
            self.refresh()

    def focus_filter(self) -> None:
        self.filter.setFocus()
        self.filter.selectAll()

    def shutdown(self) -> None:
        self._uptime_timer.stop()
        self._stats_timer.stop()
        self._flush_timer.stop()
        if self._stats is not None:
            self._stats.stop()
            self._stats = None

    # -- data --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read every container (at connect and after a reconnect): one model reset."""
        self._generation += 1
        gen = self._generation
        self._dirty.clear()
        self._refreshing = True
        self.ctx.run(
            lambda c: c.get("/containers/json", {"all": True}),
            lambda docs: self._loaded_all(gen, docs),
            lambda error: self._list_failed(gen, error),
        )

    def _list_failed(self, gen: int, error: Exception) -> None:
        if gen == self._generation:
            self._refreshing = False
            self._failed("list the containers")(error)
            self._flush_timer.start()

    def _loaded_all(self, gen: int, docs: list[dict[str, Any]]) -> None:
        if gen != self._generation:
            return
        self._loaded = True
        self._refreshing = False
        self.model.reset([row_from_summary(d) for d in docs])
        self._update_actions()
        QTimer.singleShot(0, self._aim_stats_now)  # once the view has laid the rows out
        if self._dirty:  # changed while the list was read: the list may predate them
            self._flush_timer.start()

    def on_event(self, ev: dict[str, Any]) -> None:
        action = str(ev.get("Action", "")).split(":")[0]
        cid = str((ev.get("Actor") or {}).get("ID", ""))
        if not cid:
            return
        if action == "destroy":
            self._dirty.discard(cid)
            self.model.remove(cid)
        elif action in REFRESH_ACTIONS:
            self._dirty.add(cid)
            self._flush_timer.start()

    def _flush(self) -> None:
        if self._refreshing:
            return  # _loaded_all flushes after the reset, so no update is lost under it
        ids, self._dirty = sorted(self._dirty), set()
        if not ids:
            return
        gen = self._generation
        params = {"all": True, "filters": json.dumps({"id": ids})}
        self.ctx.run(
            lambda c: c.get("/containers/json", params),
            lambda docs: self._loaded_some(gen, ids, docs),
            self._failed("update the containers"),
        )

    def _loaded_some(self, gen: int, ids: list[str], docs: list[dict[str, Any]]) -> None:
        if gen != self._generation:
            return  # a full refresh superseded this answer
        found = {str(d["Id"]) for d in docs}
        for doc in docs:
            self.model.upsert(row_from_summary(doc))
        for cid in ids:
            if cid not in found:
                self.model.remove(cid)
        self._update_actions()

    # -- selection and actions ---------------------------------------------------------

    def selected_rows(self) -> list[ContainerRow]:
        """The selected containers; a selected stack stands for all of its containers."""
        seen: dict[str, ContainerRow] = {}
        for proxy_index in self.view.selectionModel().selectedIndexes():
            source = self.proxy.mapToSource(proxy_index.siblingAtColumn(0))
            for row in self.model.stack_members(source):
                seen.setdefault(row.id, row)
        return list(seen.values())

    def select(self, container_id: str) -> None:
        """Select one container's row (tests, the tray's "logs" and deep links)."""
        index = self.proxy.mapFromSource(self.model.index_of(container_id))
        if index.isValid():
            self.view.expand(index.parent())
            self.view.setCurrentIndex(index)
            self.view.selectionModel().select(
                index,
                self.view.selectionModel().SelectionFlag.ClearAndSelect
                | self.view.selectionModel().SelectionFlag.Rows,
            )

    def trigger(self, key: str) -> None:
        rows = self.selected_rows()
        if key not in enabled_actions(rows):
            return
        if key == "logs":
            self.ctx.open_logs(rows[0].id)
        elif key == "terminal":
            self.open_terminal(rows[0])
        elif key == "inspect":
            self.inspect(rows[0])
        elif key == "browse":
            url = next(p.url for r in rows for p in r.ports if p.url)
            self.open_url(url)
        elif key == "remove" and not self.confirm_remove([r.name for r in rows]):
            return
        else:
            for method, path, params in calls_for(key, rows):
                self.ctx.call(method, path, params, None, self._failed(f"{key} {path[12:24]}"))

    def open_terminal(self, row: ContainerRow) -> None:
        argv = terminal.terminal_argv(row.id, self.ctx.host, terminal.launch_env(self.ctx.host))
        manual = terminal.manual_command(row.id, self.ctx.host)
        if argv is None:
            QGuiApplication.clipboard().setText(manual)
            self.notice.setText("No terminal found: the command is on the clipboard")
            return
        proc = QProcess(self)
        proc.setProgram(argv[0])
        proc.setArguments(argv[1:])
        env = QProcessEnvironment.systemEnvironment()  # the terminal needs DISPLAY, PATH ...
        env.insert("DOCKER_HOST", self.ctx.host)
        env.remove("DOCKER_CONTEXT")
        proc.setProcessEnvironment(env)
        if not proc.startDetached():
            QGuiApplication.clipboard().setText(manual)
            self.notice.setText(f"Could not start {argv[0]}: the command is on the clipboard")

    def inspect(self, row: ContainerRow) -> None:
        self.ctx.run(
            lambda c: c.inspect_container(row.id),
            lambda doc: self._show_json(f"Inspect {row.name}", doc),
            self._failed(f"inspect {row.name}"),
        )

    def _show_json(self, title: str, doc: Any) -> None:
        viewer = JsonViewer(title, doc, self)
        viewer.finished.connect(lambda _r: self._viewers.remove(viewer))
        self._viewers.append(viewer)
        viewer.show()

    def _ask_remove(self, names: list[str]) -> bool:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        answer = QMessageBox.question(
            self,
            "Remove containers",
            f"Remove {shown}? Running containers are stopped first. This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _failed(self, what: str) -> Callable[[Exception], None]:
        def show(error: Exception) -> None:
            message = getattr(error, "message", "") or str(error)
            self.notice.setText(f"Could not {what}: {message}")

        return show

    def _update_actions(self, *_: object) -> None:
        rows = self.selected_rows()
        on = enabled_actions(rows)
        for key, action in self.actions_by_key.items():
            action.setEnabled(key in on)
        self.actions_by_key["pause"].setText("Resume" if pause_verb(rows) == "unpause" else "Pause")

    def _host_changed(self, _host: str) -> None:
        self._loaded = False
        self._generation += 1  # answers from the previous engine are dropped
        self.model.reset([])

    def _update_empty(self, *_: object) -> None:
        if self.proxy.rowCount() > 0:
            self.stack.setCurrentWidget(self.view)
            return
        if not self._loaded:
            text = "Loading containers…"
        elif self.model.rowCount() > 0:
            text = f"No containers match “{self.filter.text().strip()}”."
        else:
            text = "No containers yet.\n\nRun one with  docker run -d --name web -p 8080:80 nginx"
        self.empty.setText(text)
        self.stack.setCurrentWidget(self.empty)

    def _filter_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        if text.strip():
            self.view.expandAll()
        self._update_empty()

    # -- the view's clicks -------------------------------------------------------------

    def _clicked(self, proxy_index: QModelIndex) -> None:
        if proxy_index.column() != PORTS:
            return
        row = self.proxy.data(proxy_index, ROW_ROLE)
        urls = [p.url for p in row.ports if p.url] if row is not None else []
        if urls:
            self.open_url(urls[0])

    def _activated(self, proxy_index: QModelIndex) -> None:
        row = self.proxy.data(proxy_index.siblingAtColumn(0), ROW_ROLE)
        if row is not None and proxy_index.column() != PORTS:
            self.ctx.open_logs(row.id)

    def _context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        for spec in ACTIONS:
            menu.addAction(self.actions_by_key[spec.key])
            if spec.key in ("pause", "remove"):
                menu.addSeparator()
        menu.exec(self.view.viewport().mapToGlobal(pos))

    # -- live stats --------------------------------------------------------------------

    def _aim_stats(self) -> None:
        """Point the stats poller at the running rows on screen (none while hidden)."""
        if self._stats is None:
            return
        self._stats.set_targets(self.visible_running_ids() if self.isVisible() else [])

    def _aim_stats_now(self) -> None:
        self._aim_stats()
        if self._stats is not None:
            self._stats.poll_now()

    def visible_running_ids(self) -> list[str]:
        ids: list[str] = []
        index = self.view.indexAt(QPoint(1, 1))
        height = self.view.viewport().height()
        while index.isValid() and len(ids) < MAX_TARGETS:
            if self.view.visualRect(index).top() > height:
                break
            row = self.proxy.data(index.siblingAtColumn(0), ROW_ROLE)
            if row is not None and row.state == "running":
                ids.append(row.id)
            index = self.view.indexBelow(index)
        return ids


def _proxy(model: ContainersModel) -> QSortFilterProxyModel:
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setRecursiveFilteringEnabled(True)
    proxy.setFilterKeyColumn(-1)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    proxy.setDynamicSortFilter(True)
    return proxy


def _tree(proxy: QSortFilterProxyModel) -> QTreeView:
    view = QTreeView()
    view.setModel(proxy)
    view.setUniformRowHeights(True)  # what keeps 1,000 rows cheap to lay out
    view.setAlternatingRowColors(True)
    view.setSortingEnabled(True)
    view.sortByColumn(NAME, Qt.SortOrder.AscendingOrder)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    view.setAllColumnsShowFocus(True)
    view.setMouseTracking(True)
    header = view.header()
    header.setStretchLastSection(False)
    widths = {NAME: 200, IMAGE: 160, STATUS: 190, PORTS: 140, CPU: 60, MEMORY: 84}
    for column in range(len(COLUMNS)):
        view.setColumnWidth(column, widths[column])
    header.setMinimumSectionSize(50)
    header.setSectionResizeMode(IMAGE, QHeaderView.ResizeMode.Stretch)
    header.setSectionResizeMode(STATUS, QHeaderView.ResizeMode.Interactive)
    return view


def _single_shot(ms: int, slot: Callable[[], None]) -> QTimer:
    timer = QTimer()
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    return timer
