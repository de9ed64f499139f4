"""`Sparkline`: a small resource graph painted with QPainter (no charting library).

Why painted by hand: two lines over a few minutes need no QtCharts (not in
PySide6-Essentials, and heavy to load); a widget that keeps the last POINTS values and draws
one path costs nothing while the page is hidden. The scale follows the largest value shown
(rounded up to 1, 2 or 5 times a power of ten, never below `floor`), so a container using 2%
of 8 CPUs still draws a line one can read; the capacity is written in the corner instead.
Until POINTS values are in, the line spans at least MIN_SPAN of them, so a fresh graph is
not a dot at its right edge.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

POINTS = 90  # 3 minutes at one value per 2 s
MIN_SPAN = 20


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= value (value > 0)."""
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


class Sparkline(QWidget):
    def __init__(
        self,
        title: str,
        fmt: Callable[[float], str],
        color: str = "#2f6fd6",
        floor: float = 1.0,
        unit: float = 1.0,
    ) -> None:
        super().__init__()
        self.floor = floor  # the least the scale shows (10% CPU, 16 MiB), so noise stays low
        self.unit = unit  # the scale is a round number of these (MiB for memory)
        self.title = title
        self.fmt = fmt
        self.color = QColor(color)
        self.capacity: float | None = None
        self.values: deque[float] = deque(maxlen=POINTS)
        self.note = ""  # a line under the value ("3 containers")
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(320, 140)

    def add(self, value: float, note: str = "") -> None:
        self.values.append(max(0.0, value))
        self.note = note
        self.update()

    def clear(self) -> None:
        self.values.clear()
        self.note = ""
        self.update()

    def set_capacity(self, capacity: float | None) -> None:
        self.capacity = capacity if capacity and capacity > 0 else None
        self.update()

    def scale(self) -> float:
        top = max(max(self.values, default=0.0) * 1.15, self.floor)
        return nice_ceiling(top / self.unit) * self.unit

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        box = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        p.setBrush(pal.color(QPalette.ColorRole.Base))
        p.drawRoundedRect(box, 6, 6)
        self._texts(p, box, pal)
        plot = box.adjusted(10, 46, -10, -10)
        self._grid(p, plot, pal)
        if len(self.values) >= 2:
            self._line(p, plot)
        p.end()

    def _texts(self, p: QPainter, box: QRectF, pal: QPalette) -> None:
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        p.setPen(muted)
        p.drawText(box.adjusted(10, 6, -10, 0), Qt.AlignmentFlag.AlignLeft, self.title)
        if self.capacity:
            p.drawText(
                box.adjusted(10, 6, -10, 0),
                Qt.AlignmentFlag.AlignRight,
                f"of {self.fmt(self.capacity)}",
            )
        value = self.fmt(self.values[-1]) if self.values else "—"
        font = QFont(p.font())
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setWeight(QFont.Weight.DemiBold)
        p.save()
        p.setFont(font)
        p.setPen(pal.color(QPalette.ColorRole.Text))
        p.drawText(box.adjusted(10, 22, -10, 0), Qt.AlignmentFlag.AlignLeft, value)
        p.restore()
        if self.note:
            p.setPen(muted)
            p.drawText(box.adjusted(10, 26, -10, 0), Qt.AlignmentFlag.AlignRight, self.note)

    def _grid(self, p: QPainter, plot: QRectF, pal: QPalette) -> None:
        grid = QColor(pal.color(QPalette.ColorRole.Mid))
        grid.setAlpha(90)
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        top = self.scale()
        small = QFont(p.font())
        small.setPointSizeF(small.pointSizeF() * 0.85)
        p.setFont(small)
        for frac in (0.0, 0.5, 1.0):
            y = plot.top() + plot.height() * frac
            p.setPen(QPen(grid, 1, Qt.PenStyle.DotLine))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            if frac < 1.0 and self.values:
                p.setPen(muted)
                label = QRectF(plot.left(), y + 1, plot.width(), 14)
                p.drawText(label, Qt.AlignmentFlag.AlignRight, self.fmt(top * (1 - frac)))

    def _line(self, p: QPainter, plot: QRectF) -> None:
        top = self.scale()
        step = plot.width() / (max(len(self.values), MIN_SPAN) - 1)
        x0 = plot.right() - step * (len(self.values) - 1)
        points = [
            QPointF(x0 + i * step, plot.bottom() - plot.height() * min(v / top, 1.0))
            for i, v in enumerate(self.values)
        ]
        line = QPainterPath(points[0])
        for pt in points[1:]:
            line.lineTo(pt)
        area = QPainterPath(line)
        area.lineTo(points[-1].x(), plot.bottom())
        area.lineTo(points[0].x(), plot.bottom())
        area.closeSubpath()
        fill = QColor(self.color)
        fill.setAlpha(50)
        p.fillPath(area, fill)
        p.setPen(QPen(self.color, 1.8))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(line)
