"""The log lines' list view: painted by a delegate, following the bottom until scrolled away.

Why a QTableView of one column with fixed-height rows and a delegate: a row's geometry is
then known without asking the model, so 200,000 rows lay out as fast as 200, and only the
visible rows are ever painted. (A QListView, even with uniform item sizes, asks the model
about every row on each insert: 300 ms per frame at 100,000 rows, against 3 ms here.) The
delegate draws the stderr marker, the optional timestamp, the ANSI colour spans and the
search hits itself, from the model's roles.

Following: the view sticks to the bottom while the user is there. Scrolling up (wheel, bar,
keys) un-sticks it and the lines stay put, even while the oldest rows are dropped from the
top; coming back to the bottom (or `follow()`) sticks it again. `followingChanged` tells the
panel, which offers a "jump to the end" button while paused.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QFontMetrics,
    QPainter,
    QPalette,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from app.gui import ansi
from app.gui.logparse import STDERR
from app.gui.models.logs import LogModel, SpansRole, StreamRole, TimeRole

Index = QModelIndex | QPersistentModelIndex

# The 16 terminal colours (normal 0-7, bright 8-15), a variant per background.
_DARK_BG = (
    "#4d4d4d", "#f0524f", "#5cb85c", "#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#d0d0d0",
    "#7f7f7f", "#ff7b72", "#7ee787", "#f2cc60", "#79c0ff", "#d2a8ff", "#76e3ea", "#ffffff",
)  # fmt: skip
_LIGHT_BG = (
    "#1e1e1e", "#c62828", "#2e7d32", "#9a6700", "#1565c0", "#8e24aa", "#00838f", "#6e6e6e",
    "#555555", "#e53935", "#43a047", "#b08800", "#1e88e5", "#ab47bc", "#00acc1", "#9e9e9e",
)  # fmt: skip
_HIT = QColor(255, 213, 79, 150)
_CURRENT_HIT = QColor(255, 152, 0, 200)
_STDERR_MARK = QColor("#e5534b")
MARK_WIDTH = 3
TIMESTAMP_CHARS = 30  # 2026-01-01T00:00:00.000000000Z
PAD = 6


def monospace_font() -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setStyleHint(QFont.StyleHint.Monospace)
    return font


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def line_width(metrics: QFontMetrics, chars: int, timestamps: bool) -> int:
    """Pixels for a line of `chars` characters, with room for a timestamp when shown."""
    chars += TIMESTAMP_CHARS + 1 if timestamps else 0
    return PAD * 2 + MARK_WIDTH + metrics.horizontalAdvance("M" * max(chars, 1))


def _fields(index: Index) -> tuple[int, str, str, tuple[ansi.Span, ...]]:
    """(stream, timestamp, text, spans) of a row: straight from a LogModel (one call instead
    of four trips through Qt's data()), through the roles for any other model."""
    model = index.model()
    if isinstance(model, LogModel):
        return model.fields(index.row())
    return (
        int(index.data(StreamRole) or 0),
        str(index.data(TimeRole) or ""),
        str(index.data(Qt.ItemDataRole.DisplayRole) or ""),
        tuple(index.data(SpansRole) or ()),
    )


class LogDelegate(QStyledItemDelegate):
    """Paints one log line: marker, timestamp, coloured text, search hits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.timestamps = False
        self.search = ""
        self.current_row = -1
        self.widest = 0  # characters of the longest line seen, for the horizontal range
        self._metrics_cache: QFontMetrics | None = None

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        metrics = QFontMetrics(option.font)
        return QSize(line_width(metrics, self.widest, self.timestamps), metrics.height() + 2)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        rect: QRect = option.rect
        palette: QPalette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        stream, stamp, text, spans = _fields(index)
        painter.save()
        if selected:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.Highlight))
        if stream == STDERR:
            painter.fillRect(
                QRect(rect.left(), rect.top(), MARK_WIDTH, rect.height()), _STDERR_MARK
            )
        font: QFont = option.font
        metrics = self._metrics(font)
        x = rect.left() + MARK_WIDTH + PAD
        baseline = rect.top() + 1 + metrics.ascent()
        if self.timestamps:
            muted = (
                QPalette.ColorRole.HighlightedText
                if selected
                else QPalette.ColorRole.PlaceholderText
            )
            painter.setPen(palette.color(muted))
            painter.drawText(x, baseline, stamp)
            # a fixed column: the engine drops trailing zeros of the fraction, so the text
            # after a timestamp would otherwise not line up
            x += metrics.horizontalAdvance("0" * (TIMESTAMP_CHARS + 1))
        self._paint_hits(painter, rect, x, metrics, text, index.row() == self.current_row)
        default = palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        if spans:
            colours = _DARK_BG if is_dark(palette) else _LIGHT_BG
            self._paint_text(painter, font, x, baseline, text, spans, default, colours)
        elif text:
            painter.setPen(default)
            painter.drawText(x, baseline, text)
        painter.restore()

    def _metrics(self, font: QFont) -> QFontMetrics:
        """One QFontMetrics per font, not one per painted row (the view drops it when its
        font changes)."""
        if self._metrics_cache is None:
            self._metrics_cache = QFontMetrics(font)
        return self._metrics_cache

    def font_changed(self) -> None:
        self._metrics_cache = None

    def _paint_hits(
        self, painter: QPainter, rect: QRect, x: int, metrics: QFontMetrics, text: str, cur: bool
    ) -> None:
        if not self.search:
            return
        hay, needle = text.casefold(), self.search.casefold()
        at = hay.find(needle)
        while at >= 0:
            left = x + metrics.horizontalAdvance(text[:at])
            width = metrics.horizontalAdvance(text[at : at + len(needle)])
            painter.fillRect(
                QRect(left, rect.top(), width, rect.height()), _CURRENT_HIT if cur else _HIT
            )
            at = hay.find(needle, at + len(needle))

    @staticmethod
    def _paint_text(
        painter: QPainter,
        font: QFont,
        x: int,
        baseline: int,
        text: str,
        spans: tuple[ansi.Span, ...],
        default: QColor,
        colours: tuple[str, ...],
    ) -> None:
        """Plain runs in the default pen, spans in their colour and weight, left to right."""
        pos = 0
        for start, length, colour_index, is_bold in (*spans, (len(text), 0, -1, False)):
            for chunk, colour, bold in (
                (text[pos:start], -1, False),
                (text[start : start + length], colour_index, is_bold),
            ):
                if not chunk:
                    continue
                run_font = QFont(font)
                run_font.setBold(bold)
                painter.setFont(run_font)
                painter.setPen(default if colour < 0 else QColor(colours[colour]))
                painter.drawText(x, baseline, chunk)
                x += QFontMetrics(run_font).horizontalAdvance(chunk)
            pos = start + length


class LogView(QTableView):
    """The list of lines (one column); follows the bottom while the user is there."""

    followingChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.delegate = LogDelegate(self)
        self.setItemDelegate(self.delegate)
        self.setFont(monospace_font())
        rows = self.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setMinimumSectionSize(1)
        rows.setDefaultSectionSize(QFontMetrics(self.font()).height() + 2)
        rows.hide()
        self.horizontalHeader().hide()
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setCornerButtonEnabled(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._following = True
        self._adjusting = False
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_value)
        bar.rangeChanged.connect(self._on_range)

    @property
    def following(self) -> bool:
        return self._following

    def follow(self) -> None:
        """Stick to the bottom again (the panel's "jump to the end")."""
        self._set_following(True)
        self._to_bottom()

    def fit_width(self, chars: int) -> None:
        """Widen the column to `chars` characters of the widest line (plus the timestamp
        when shown), and never narrower than the viewport."""
        self.delegate.widest = max(self.delegate.widest, chars)
        metrics = QFontMetrics(self.font())
        width = line_width(metrics, self.delegate.widest, self.delegate.timestamps)
        self.setColumnWidth(0, max(width, self.viewport().width()))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.FontChange:
            self.delegate.font_changed()
            self.verticalHeader().setDefaultSectionSize(QFontMetrics(self.font()).height() + 2)
        super().changeEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit_width(self.delegate.widest)

    def at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum()

    def setModel(self, model: QAbstractItemModel | None) -> None:
        old = self.model()
        if old is not None:
            old.rowsRemoved.disconnect(self._on_rows_removed)
        super().setModel(model)
        if model is not None:
            model.rowsRemoved.connect(self._on_rows_removed)

    def _set_following(self, on: bool) -> None:
        if on != self._following:
            self._following = on
            self.followingChanged.emit(on)

    def _to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        self._adjusting = True
        try:
            bar.setValue(bar.maximum())
        finally:
            self._adjusting = False

    def _on_value(self, _value: int) -> None:
        if not self._adjusting:
            self._set_following(self.at_bottom())

    def _on_range(self, _low: int, _high: int) -> None:
        if self._following:
            self._to_bottom()

    def _on_rows_removed(self, _parent: QModelIndex, first: int, last: int) -> None:
        """Rows dropped at the top: keep the user's lines in place while paused."""
        if self._following or first != 0:
            return
        bar = self.verticalScrollBar()
        self._adjusting = True
        try:
            bar.setValue(max(0, bar.value() - (last + 1)))
        finally:
            self._adjusting = False
