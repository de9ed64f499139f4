"""A table model of keyed rows, updated by difference: the images, volumes and networks pages.

Why a diff instead of a reset: a page re-reads its list after each burst of engine events,
and a reset would drop the user's selection, scroll position and current row every time.
`replace(rows)` removes the rows whose key is gone (one beginRemoveRows per contiguous run),
emits dataChanged only for rows whose value changed, and appends the new ones in one insert.
Sorting and filtering are a QSortFilterProxyModel's job (SORT_ROLE gives raw sort keys).

Rows are immutable values (frozen dataclasses); a column is a title and functions of a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

Index = QModelIndex | QPersistentModelIndex
ROW_ROLE = Qt.ItemDataRole.UserRole + 1  # the row value itself
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # the column's sort key
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


@dataclass(frozen=True)
class Column:
    title: str
    text: Callable[[Any], str]
    sort: Callable[[Any], Any] | None = None  # the sort key; the text when None
    numeric: bool = False  # right-aligned
    tip: Callable[[Any], str] | None = None


class KeyedTableModel(QAbstractTableModel):
    def __init__(self, columns: Sequence[Column], key: Callable[[Any], str]) -> None:
        super().__init__()
        self.columns = list(columns)
        self._key = key
        self._rows: list[Any] = []

    # -- Qt ------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.columns):
            if role == Qt.ItemDataRole.DisplayRole:
                return self.columns[section].title
            if role == Qt.ItemDataRole.TextAlignmentRole and self.columns[section].numeric:
                return int(_RIGHT.value)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self._rows[index.row()], self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == SORT_ROLE:
            return column.sort(row) if column.sort is not None else column.text(row)
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.ToolTipRole and column.tip is not None:
            return column.tip(row)
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return int(_RIGHT.value)
        return None

    # -- rows ----------------------------------------------------------------------------
    def rows(self) -> list[Any]:
        return list(self._rows)

    def row(self, i: int) -> Any:
        return self._rows[i]

    def find(self, key: str) -> int:
        """The row number of `key`, or -1."""
        return next((i for i, r in enumerate(self._rows) if self._key(r) == key), -1)

    def replace(self, rows: Sequence[Any]) -> None:
        """Make the rows equal `rows` (by key) with the fewest model signals."""
        wanted = {self._key(r): r for r in rows}
        gone = [i for i, r in enumerate(self._rows) if self._key(r) not in wanted]
        for first, last in reversed(_runs(gone)):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._rows[first : last + 1]
            self.endRemoveRows()
        last_column = len(self.columns) - 1
        for i, old in enumerate(self._rows):
            new = wanted.pop(self._key(old))
            if new != old:
                self._rows[i] = new
                self.dataChanged.emit(self.index(i, 0), self.index(i, last_column))
        if wanted:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(wanted) - 1)
            self._rows.extend(wanted.values())
            self.endInsertRows()


def _runs(indexes: list[int]) -> list[tuple[int, int]]:
    """Sorted indexes as (first, last) runs of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for i in indexes:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs
