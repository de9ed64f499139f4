"""The containers table as a two-level tree: compose projects are expandable stacks.

Why a tree model of our own rather than a flat model plus a grouping proxy: a proxy that
groups must rebuild its mapping on every source change, which turns one event into a reset.
Here every change is the smallest Qt notification that describes it, so 1,000 containers
stay smooth and tests/gui/test_model_scale.py can count the signals:
- `reset(rows)`: one modelReset (a full refresh at connect and after a reconnect);
- `upsert(row)` of a known container: one dataChanged for its row (plus one for its stack's
  summary row, only when that summary's text changed); of a new one: one rowsInserted;
- `remove(id)`: one rowsRemoved (the stack's, when its last container goes);
- `set_stats(...)`, `tick()`: one dataChanged per parent, over the columns that changed.

Index layout: top-level items are standalone containers and stacks, in arrival order (the
view sorts through a proxy). A child's internalId is its stack's uid; top-level items have 0.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont

from app.gui.icons import dot_icon
from app.gui.models.container_row import ContainerRow, human_bytes

Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("Name", "Image", "Status", "Ports", "CPU %", "Memory")
NAME, IMAGE, STATUS, PORTS, CPU, MEMORY = range(len(COLUMNS))
ID_ROLE = Qt.ItemDataRole.UserRole + 1  # container id ("" for a stack)
ROW_ROLE = Qt.ItemDataRole.UserRole + 2  # the ContainerRow (None for a stack)
STACK_ROLE = Qt.ItemDataRole.UserRole + 3  # the compose project of a stack row
SORT_ROLE = Qt.ItemDataRole.UserRole + 4  # numbers for the numeric columns
STATE_COLORS = {
    "running": "#2e9d57",
    "paused": "#c9a227",
    "restarting": "#c9a227",
    "created": "#8a8f98",
    "exited": "#8a8f98",
    "dead": "#d0453b",
}
_uids = itertools.count(1)


@dataclass
class Stack:
    project: str
    uid: int = field(default_factory=lambda: next(_uids))
    children: list[str] = field(default_factory=list)


class ContainersModel(QAbstractItemModel):
    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, ContainerRow] = {}
        self._top: list[str] = []  # container ids and "stack:" + project
        self._stacks: dict[str, Stack] = {}
        self._by_uid: dict[int, Stack] = {}

    # -- reads -------------------------------------------------------------------------

    def container(self, cid: str) -> ContainerRow | None:
        return self._rows.get(cid)

    def container_ids(self) -> list[str]:
        return list(self._rows)

    def row_for(self, index: Index) -> ContainerRow | None:
        """The container at `index`, or None for a stack row or an invalid index."""
        if not index.isValid():
            return None
        key = self._key(index)
        return self._rows.get(key) if not key.startswith("stack:") else None

    def stack_members(self, index: Index) -> list[ContainerRow]:
        """A stack row's containers (a container row gives itself)."""
        row = self.row_for(index)
        if row is not None:
            return [row]
        stack = self._stacks.get(self._key(index)[len("stack:") :]) if index.isValid() else None
        return [self._rows[c] for c in stack.children] if stack else []

    def index_of(self, cid: str, column: int = 0) -> QModelIndex:
        row = self._rows.get(cid)
        if row is None:
            return QModelIndex()
        if row.project:
            stack = self._stacks[row.project]
            return self.createIndex(stack.children.index(cid), column, stack.uid)
        return self.createIndex(self._top.index(cid), column, 0)

    # -- changes -----------------------------------------------------------------------

    def reset(self, rows: list[ContainerRow]) -> None:
        """Replace everything (a full refresh): one modelReset; stats carried over."""
        self.beginResetModel()
        old = self._rows
        self._rows, self._top, self._stacks, self._by_uid = {}, [], {}, {}
        for row in rows:
            prev = old.get(row.id)
            if prev is not None:
                row.cpu_percent, row.memory_bytes = prev.cpu_percent, prev.memory_bytes
            self._rows[row.id] = row
            self._place(row.id, row.project)
        self.endResetModel()

    def upsert(self, row: ContainerRow) -> None:
        """Add a container or update it in place."""
        old = self._rows.get(row.id)
        if old is not None and old.project != row.project:
            self.remove(row.id)
            old = None
        if old is None:
            self._insert(row)
            return
        row.cpu_percent, row.memory_bytes = old.cpu_percent, old.memory_bytes
        summary = self._stack_summary(row.project)
        self._rows[row.id] = row
        first, last = self.index_of(row.id, 0), self.index_of(row.id, len(COLUMNS) - 1)
        self.dataChanged.emit(first, last)
        if row.project and self._stack_summary(row.project) != summary:
            self._stack_changed(row.project, 0, len(COLUMNS) - 1)

    def remove(self, cid: str) -> None:
        row = self._rows.get(cid)
        if row is None:
            return
        if not row.project:
            at = self._top.index(cid)
            self.beginRemoveRows(QModelIndex(), at, at)
            self._top.pop(at)
            del self._rows[cid]
            self.endRemoveRows()
            return
        stack = self._stacks[row.project]
        if len(stack.children) == 1:
            at = self._top.index("stack:" + row.project)
            self.beginRemoveRows(QModelIndex(), at, at)
            self._top.pop(at)
            del self._stacks[row.project], self._by_uid[stack.uid], self._rows[cid]
            self.endRemoveRows()
            return
        at = stack.children.index(cid)
        summary = self._stack_summary(row.project)
        self.beginRemoveRows(self._stack_index(row.project), at, at)
        stack.children.pop(at)
        del self._rows[cid]
        self.endRemoveRows()
        if self._stack_summary(row.project) != summary:
            self._stack_changed(row.project, 0, len(COLUMNS) - 1)

    def set_stats(self, stats: dict[str, tuple[float | None, int | None]]) -> None:
        """Live CPU% and memory by container id: one dataChanged per parent touched."""
        touched: dict[int, list[int]] = {}
        for cid, (cpu, mem) in stats.items():
            row = self._rows.get(cid)
            if row is None or (row.cpu_percent, row.memory_bytes) == (cpu, mem):
                continue
            row.cpu_percent, row.memory_bytes = cpu, mem
            index = self.index_of(cid)
            touched.setdefault(int(index.internalId()), []).append(index.row())
            if row.project:
                top = self._top.index("stack:" + row.project)
                touched.setdefault(0, []).append(top)
        for uid, rows in touched.items():
            self._rows_changed(uid, min(rows), max(rows), CPU, MEMORY)

    def tick(self) -> None:
        """Uptimes moved on: one dataChanged per parent over the status column."""
        if self._top:
            self._rows_changed(0, 0, len(self._top) - 1, STATUS, STATUS)
        for stack in self._stacks.values():
            self._rows_changed(stack.uid, 0, len(stack.children) - 1, STATUS, STATUS)

    # -- QAbstractItemModel ------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if column < 0 or column >= len(COLUMNS) or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0) if row < len(self._top) else QModelIndex()
        if parent.internalId() != 0:
            return QModelIndex()
        key = self._top[parent.row()]
        stack = self._stacks.get(key[len("stack:") :]) if key.startswith("stack:") else None
        if stack is None or row >= len(stack.children):
            return QModelIndex()
        return self.createIndex(row, column, stack.uid)

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        stack = self._by_uid.get(int(index.internalId()))
        if stack is None:
            return QModelIndex()
        return self.createIndex(self._top.index("stack:" + stack.project), 0, 0)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self._top)
        if parent.column() > 0 or parent.internalId() != 0:
            return 0
        key = self._top[parent.row()]
        if not key.startswith("stack:"):
            return 0
        return len(self._stacks[key[len("stack:") :]].children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        key = self._key(index)
        if key.startswith("stack:"):
            return self._stack_data(key[len("stack:") :], index.column(), role)
        return self._row_data(self._rows[key], index.column(), role)

    # -- helpers -----------------------------------------------------------------------

    def _key(self, index: Index) -> str:
        uid = int(index.internalId())
        if uid == 0:
            return self._top[index.row()]
        return self._by_uid[uid].children[index.row()]

    def _place(self, cid: str, project: str) -> None:
        if not project:
            self._top.append(cid)
            return
        stack = self._stacks.get(project)
        if stack is None:
            stack = self._stacks[project] = Stack(project)
            self._by_uid[stack.uid] = stack
            self._top.append("stack:" + project)
        stack.children.append(cid)

    def _insert(self, row: ContainerRow) -> None:
        stack = self._stacks.get(row.project) if row.project else None
        if stack is None:  # a new top-level item: a container, or a stack holding it
            at = len(self._top)
            self.beginInsertRows(QModelIndex(), at, at)
            self._rows[row.id] = row
            self._place(row.id, row.project)
            self.endInsertRows()
            return
        summary = self._stack_summary(row.project)
        at = len(stack.children)
        self.beginInsertRows(self._stack_index(row.project), at, at)
        self._rows[row.id] = row
        stack.children.append(row.id)
        self.endInsertRows()
        if self._stack_summary(row.project) != summary:
            self._stack_changed(row.project, 0, len(COLUMNS) - 1)

    def _stack_index(self, project: str, column: int = 0) -> QModelIndex:
        return self.createIndex(self._top.index("stack:" + project), column, 0)

    def _stack_changed(self, project: str, first: int, last: int) -> None:
        self.dataChanged.emit(self._stack_index(project, first), self._stack_index(project, last))

    def _rows_changed(self, uid: int, top: int, bottom: int, first: int, last: int) -> None:
        first_index = self.createIndex(top, first, uid)
        self.dataChanged.emit(first_index, self.createIndex(bottom, last, uid))

    def _stack_summary(self, project: str) -> tuple[str, ...]:
        if project not in self._stacks:
            return ()
        return tuple(str(self._stack_data(project, c, Qt.ItemDataRole.DisplayRole)) for c in (1, 2))

    def _row_data(self, row: ContainerRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return _row_text(row, column)
        if role == ID_ROLE:
            return row.id
        if role == ROW_ROLE:
            return row
        if role == SORT_ROLE:
            return _row_sort_key(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{row.name}\n{row.id[:12]}  {row.image}\n{row.status}"
        if role == Qt.ItemDataRole.DecorationRole and column == NAME:
            return dot_icon(STATE_COLORS.get(row.state, "#8a8f98"))
        if role == Qt.ItemDataRole.ForegroundRole and column == PORTS and row.ports:
            return QBrush(QColor("#3a7bd5"))
        if role == Qt.ItemDataRole.FontRole and column == PORTS and row.ports:
            return _link_font()
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (CPU, MEMORY):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _stack_data(self, project: str, column: int, role: int) -> Any:
        members = [self._rows[c] for c in self._stacks[project].children]
        if role == Qt.ItemDataRole.DisplayRole:
            return _stack_text(project, members, column)
        if role in (STACK_ROLE,):
            return project
        if role == ID_ROLE:
            return ""
        if role == SORT_ROLE:
            return project if column == NAME else _stack_text(project, members, column)
        if role == Qt.ItemDataRole.FontRole and column == NAME:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.DecorationRole and column == NAME:
            running = any(m.state == "running" for m in members)
            return dot_icon(STATE_COLORS["running" if running else "exited"])
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (CPU, MEMORY):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _row_text(row: ContainerRow, column: int) -> str:
    if column == NAME:
        return row.name
    if column == IMAGE:
        return row.image
    if column == STATUS:
        return row.status_text()
    if column == PORTS:
        return ", ".join(p.text for p in row.ports)
    if column == CPU:
        return "" if row.cpu_percent is None else f"{row.cpu_percent:.1f}"
    if column == MEMORY:
        return "" if row.memory_bytes is None else human_bytes(row.memory_bytes)
    return ""


def _row_sort_key(row: ContainerRow, column: int) -> Any:
    if column == CPU:
        return row.cpu_percent or 0.0
    if column == MEMORY:
        return row.memory_bytes or 0
    if column == STATUS:
        return (not row.running, row.status_text())
    return _row_text(row, column).lower()


def _stack_text(project: str, members: list[ContainerRow], column: int) -> str:
    if column == NAME:
        return project
    if column == IMAGE:
        return f"{len(members)} container" + ("s" if len(members) != 1 else "")
    if column == STATUS:
        running = sum(1 for m in members if m.state == "running")
        return f"{running}/{len(members)} running"
    if column == CPU:
        cpus = [m.cpu_percent for m in members if m.cpu_percent is not None]
        return f"{sum(cpus):.1f}" if cpus else ""
    if column == MEMORY:
        mems = [m.memory_bytes for m in members if m.memory_bytes is not None]
        return human_bytes(sum(mems)) if mems else ""
    return ""


@cache
def _link_font() -> QFont:
    """Made on first use: a QFont needs the QGuiApplication to exist."""
    font = QFont()
    font.setUnderline(True)
    return font
