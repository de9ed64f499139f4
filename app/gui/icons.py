"""Icons: the tray's state icon is drawn here; page icons come from the desktop's theme with
one of Qt's built-in icons as the fallback, so the app looks right with no icon theme too."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
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
    """The desktop theme's icon for a page, else a built-in one."""
    themed = QIcon.fromTheme(_THEME_NAMES.get(name, name))
    if not themed.isNull():
        return themed
    style = QApplication.style()
    return style.standardIcon(_FALLBACKS.get(name, QStyle.StandardPixmap.SP_FileIcon))


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
    """A rounded container-box glyph on a disc of the state's colour, at tray sizes."""
    icon = QIcon()
    for size in (16, 22, 24, 32, 48, 64):
        icon.addPixmap(_state_pixmap(state, size))
    return icon


def _state_pixmap(state: str, size: int) -> QPixmap:
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
