"""`StageTimeline`: a start's boot stages as rows of name, state, a bar on a shared time axis,
and the duration, so a slow stage stands out at a glance and a failed one is red.

Rows are the stage records machine/ reports (`Stage.as_dict()`: name, started, duration,
status, hint, detail); a running stage's bar grows to the latest known time.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

ROW = 28
NAME_W = 92
TIME_W = 70
COLORS = {"done": "#2e9d57", "running": "#d89a1e", "failed": "#d0453b", "skipped": "#8a8f98"}


def stage_end(stage: dict[str, Any]) -> float:
    started = float(stage.get("started") or 0.0)
    return started + float(stage.get("duration") or 0.0)


def total_seconds(stages: list[dict[str, Any]]) -> float:
    return max((stage_end(s) for s in stages), default=0.0)


def failed_stage(stages: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((s for s in stages if s.get("status") == "failed"), None)


class StageTimeline(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.stages: list[dict[str, Any]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(ROW)

    def set_stages(self, stages: list[dict[str, Any]]) -> None:
        self.stages = list(stages)
        self.setToolTip(
            "\n".join(
                f"{s.get('name')}: {s.get('status')} {s.get('detail') or ''}".rstrip()
                for s in self.stages
            )
        )
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(420, max(1, len(self.stages)) * ROW + 4)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        if not self.stages:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(
                QRectF(self.rect()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                "No start recorded yet.",
            )
            p.end()
            return
        total = max(total_seconds(self.stages), 1e-3)
        track_left = NAME_W + 18
        track_w = max(40.0, self.width() - track_left - TIME_W - 8)
        metrics = QFontMetrics(self.font())
        for i, s in enumerate(self.stages):
            top = i * ROW + 2
            mid = top + ROW / 2
            color = QColor(COLORS.get(str(s.get("status")), COLORS["skipped"]))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawEllipse(QRectF(2, mid - 5, 10, 10))
            p.setPen(pal.color(QPalette.ColorRole.Text))
            name = metrics.elidedText(str(s.get("name", "?")), Qt.TextElideMode.ElideRight, NAME_W)
            p.drawText(
                QRectF(18, top, NAME_W, ROW),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                name,
            )
            track = QRectF(track_left, mid - 5, track_w, 10)
            rail = QColor(pal.color(QPalette.ColorRole.Mid))
            rail.setAlpha(60)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(rail)
            p.drawRoundedRect(track, 4, 4)
            start = float(s.get("started") or 0.0)
            x = track.left() + track_w * start / total
            w = max(4.0, track_w * (stage_end(s) - start) / total)
            p.setBrush(color)
            p.drawRoundedRect(QRectF(x, track.top(), min(w, track.right() - x), 10), 4, 4)
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(
                QRectF(track.right() + 8, top, TIME_W, ROW),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                duration_text(s),
            )
        p.end()


def duration_text(stage: dict[str, Any]) -> str:
    duration = stage.get("duration")
    if stage.get("status") == "running" or duration is None:
        return "…"
    seconds = float(duration)
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
