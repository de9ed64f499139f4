"""A bounded list model of log lines: the oldest lines go once the cap is reached.

Why a ring over a plain list: a container can log without end, and the view must hold the
last `capacity` lines (200,000 by default) with constant memory. Lines are appended in
batches (the logs view flushes once per frame), each batch is one beginInsertRows, and the
overflow of a batch is one beginRemoveRows at the top, so the view relays out once per frame
however many lines arrived. Rows are addressed in O(1): column[_head + row]; the dropped
prefix is compacted away once it is as long as half the cap (amortised O(1) per line).

Why columns (a bytearray of streams, lists of str and of plain tuples) instead of a list of
entry objects: Python's cyclic garbage collector walks every tracked object it holds, and
200,000 NamedTuples made a full collection take 70-175 ms on the GUI thread, which is the
stall this model exists to prevent. Strings and exact tuples of atoms are not tracked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from app.gui.ansi import Line, Span
from app.gui.logparse import STDERR, Batch, LogEntry

DEFAULT_CAPACITY = 200_000
Index = QModelIndex | QPersistentModelIndex

StreamRole = Qt.ItemDataRole.UserRole + 1
TimeRole = Qt.ItemDataRole.UserRole + 2
SpansRole = Qt.ItemDataRole.UserRole + 3


class LogModel(QAbstractListModel):
    """Rows are log entries; DisplayRole is the visible text, the roles above the rest."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        super().__init__()
        if capacity < 1:
            raise ValueError("a log model holds at least one line")
        self.capacity = capacity
        self.dropped = 0  # lines dropped from the top since the last clear
        self._streams = bytearray()
        self._times: list[str] = []
        self._texts: list[str] = []
        self._spans: list[tuple[Span, ...]] = []
        self._head = 0

    # -- Qt ------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._texts) - self._head

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        at = self._head + index.row()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._texts[at]
        if role == StreamRole:
            return self._streams[at]
        if role == TimeRole:
            return self._times[at]
        if role == SpansRole:
            return self._spans[at]
        if role == Qt.ItemDataRole.ToolTipRole:
            stream = "stderr" if self._streams[at] == STDERR else "stdout"
            return f"{stream} {self._times[at]}".strip()
        return None

    # -- appending -----------------------------------------------------------------------
    def append(self, batch: Batch) -> None:
        """Add a batch at the bottom: one insert (and at most one removal) per call."""
        if not len(batch):
            return
        if len(batch) > self.capacity:
            self.dropped += len(batch) - self.capacity
            batch = batch.tail(self.capacity)
        overflow = self.rowCount() + len(batch) - self.capacity
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            self._head += overflow
            self.dropped += overflow
            if self._head >= max(1, self.capacity // 2):
                self._compact()
            self.endRemoveRows()
        first = self.rowCount()
        self.beginInsertRows(QModelIndex(), first, first + len(batch) - 1)
        self._streams += batch.streams
        self._times += batch.times
        self._texts += batch.texts
        self._spans += batch.spans
        self.endInsertRows()

    def _compact(self) -> None:
        for column in (self._streams, self._times, self._texts, self._spans):
            del column[: self._head]
        self._head = 0

    def clear(self) -> None:
        self.beginResetModel()
        self._head = len(self._texts)
        self._compact()
        self.dropped = 0
        self.endResetModel()

    # -- reading -------------------------------------------------------------------------
    def entry(self, row: int) -> LogEntry:
        if not 0 <= row < self.rowCount():
            raise IndexError(row)
        at = self._head + row
        return LogEntry(self._streams[at], self._times[at], Line(self._texts[at], self._spans[at]))

    def fields(self, row: int) -> tuple[int, str, str, tuple[Span, ...]]:
        """(stream, timestamp, text, spans) of a row, for the delegate's painting."""
        at = self._head + row
        return self._streams[at], self._times[at], self._texts[at], self._spans[at]

    def text(self, row: int, timestamps: bool = False) -> str:
        """One line as copied or saved: visible text, the timestamp first if asked."""
        if not 0 <= row < self.rowCount():
            raise IndexError(row)
        at = self._head + row
        text, time = self._texts[at], self._times[at]
        return f"{time} {text}" if timestamps and time else text

    def lines(self, rows: Sequence[int] | None = None, timestamps: bool = False) -> list[str]:
        """The given rows (all of them by default), as `text` renders them."""
        wanted = range(self.rowCount()) if rows is None else rows
        return [self.text(r, timestamps) for r in wanted]

    def find(self, term: str, start: int, forward: bool = True) -> int:
        """The next row after `start` (before it, going backwards) whose text contains
        `term`, ignoring case, wrapping around; -1 when no row does."""
        n = self.rowCount()
        if not term or n == 0:
            return -1
        needle = term.casefold()
        texts, head = self._texts, self._head
        step = 1 if forward else -1
        row = start
        for _ in range(n):
            row = (row + step) % n
            if needle in texts[head + row].casefold():
                return row
        return -1
