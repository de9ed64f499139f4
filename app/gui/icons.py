"""Icons: the tray's state icon is drawn here; page icons come from the desktop's theme with
one of Qt's built-in icons as the fallback, so the app looks right with no icon theme too."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QApplication, QStyle

STATE_COLORS = {
    "stopped": "#8a8f98",
    "starting": "#d89a1e",
    "running": "#2e9d57",
    "error": "#d0453b",
}
_FALLBACKS = {
    "containers": QStyle.StandardPixmap.SP_ComputerIcon,
    "images": QStyle.StandardPixmap.SP_DriveCDIcon,
    "volumes": QStyle.StandardPixmap.SP_DriveHDIcon,
    "networks": QStyle.StandardPixmap.SP_DriveNetIcon,
    "machine": QStyle.StandardPixmap.SP_DesktopIcon,
    "settings": QStyle.StandardPixmap.SP_FileDialogDetailedView,
}
_THEME_NAMES = {
    "containers": "package-x-generic",
    "images": "media-optical",
    "volumes": "drive-harddisk",
    "networks": "network-wired",
    "machine": "computer",
    "settings": "preferences-system",
}


def page_icon(name: str) -> QIcon:
    """Our own line glyph for a sidebar page (grey, white when selected), so the sidebar
    looks the same on every desktop; else the theme's icon, else one of Qt's."""
    if name in _GLYPHS:
        icon = QIcon()
        for size in (16, 20, 24, 32, 48):
            icon.addPixmap(_glyph(name, size, GLYPH_COLOR), QIcon.Mode.Normal)
            icon.addPixmap(_glyph(name, size, "#ffffff"), QIcon.Mode.Selected)
        return icon
    themed = QIcon.fromTheme(_THEME_NAMES.get(name, name))
    if not themed.isNull():
        return themed
    style = QApplication.style()
    return style.standardIcon(_FALLBACKS.get(name, QStyle.StandardPixmap.SP_FileIcon))


GLYPH_COLOR = "#7a808a"  # readable on the light and the dark sidebar


def _glyph(name: str, size: int, color: str) -> QPixmap:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(QColor(color))
    pen.setWidthF(max(1.2, size / 13))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.scale(size / 20, size / 20)  # glyphs are drawn on a 20x20 grid
    _GLYPHS[name](p)
    p.end()
    return pix


def _containers(p: QPainter) -> None:
    p.drawRoundedRect(QRectF(3, 5, 14, 10), 1.5, 1.5)
    for x in (7.5, 12.5):
        p.drawLine(QPointF(x, 7.5), QPointF(x, 12.5))


def _images(p: QPainter) -> None:
    for y in (4.0, 8.0, 12.0):
        p.drawPolygon(
            QPolygonF(
                [QPointF(10, y), QPointF(17, y + 2.5), QPointF(10, y + 5), QPointF(3, y + 2.5)]
            )
        )


def _volumes(p: QPainter) -> None:
    p.drawEllipse(QRectF(4, 3, 12, 4))
    p.drawLine(QPointF(4, 5), QPointF(4, 15))
    p.drawLine(QPointF(16, 5), QPointF(16, 15))
    p.drawArc(QRectF(4, 13, 12, 4), 180 * 16, 180 * 16)
    p.drawArc(QRectF(4, 8, 12, 4), 180 * 16, 180 * 16)


def _networks(p: QPainter) -> None:
    centers = (QPointF(10, 4.5), QPointF(4.5, 15), QPointF(15.5, 15))
    for a, b in ((0, 1), (0, 2), (1, 2)):
        p.drawLine(centers[a], centers[b])
    p.setBrush(p.pen().color())
    for c in centers:
        p.drawEllipse(c, 2.2, 2.2)


def _machine(p: QPainter) -> None:
    p.drawRoundedRect(QRectF(2.5, 3.5, 15, 10), 1.5, 1.5)
    p.drawLine(QPointF(10, 13.5), QPointF(10, 16.5))
    p.drawLine(QPointF(6.5, 16.5), QPointF(13.5, 16.5))


def _settings(p: QPainter) -> None:
    for y, knob in ((5.0, 13.0), (10.0, 6.5), (15.0, 11.0)):
        p.drawLine(QPointF(3, y), QPointF(17, y))
        p.save()
        p.setBrush(QColor("transparent"))
        p.drawEllipse(QPointF(knob, y), 1.8, 1.8)
        p.restore()


_GLYPHS = {
    "containers": _containers,
    "images": _images,
    "volumes": _volumes,
    "networks": _networks,
    "machine": _machine,
    "settings": _settings,
}


@cache
def dot_icon(color: str, size: int = 12) -> QIcon:
    """A filled circle: a row's state in a table (cached: one per colour)."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(color))
    p.drawEllipse(QRectF(1, 1, size - 2, size - 2))
    p.end()
    return QIcon(pix)


def state_icon(state: str) -> QIcon:
    """The Dockyard mark with a dot of the state's colour in its corner, at tray sizes (a
    plain container-box disc when the mark's renders are missing)."""
    icon = QIcon()
    for size in (16, 22, 24, 32, 48, 64):
        icon.addPixmap(_state_pixmap(state, size))
    return icon


def _state_pixmap(state: str, size: int) -> QPixmap:
    from app.gui import branding

    mark = branding.pixmap(size)
    if not mark.isNull():
        return _with_state_dot(mark, state, size)
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(STATE_COLORS.get(state, STATE_COLORS["error"])))
    p.drawEllipse(QRectF(0.5, 0.5, size - 1, size - 1))
    pen = QPen(QColor("white"))
    pen.setWidthF(max(1.0, size / 14))
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    box = QRectF(size * 0.27, size * 0.32, size * 0.46, size * 0.36)
    p.drawRoundedRect(box, size * 0.05, size * 0.05)
    for x in (0.42, 0.58):
        p.drawLine(int(size * x), int(size * 0.36), int(size * x), int(size * 0.64))
    p.end()
    return pix


def _with_state_dot(mark: QPixmap, state: str, size: int) -> QPixmap:
    """The state stays readable at 16 px: the dot takes the lower-right 45%, ringed white."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.drawPixmap(0, 0, mark)
    d = size * 0.45
    ring = QPen(QColor("white"))
    ring.setWidthF(max(1.0, size / 16))
    p.setPen(ring)
    p.setBrush(QColor(STATE_COLORS.get(state, STATE_COLORS["error"])))
    p.drawEllipse(QRectF(size - d - 0.5, size - d - 0.5, d, d))
    p.end()
    return pix
