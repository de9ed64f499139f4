"""The Dockyard mark as a QIcon, from the PNG sizes packaging/assets/render.py renders.

Why PNGs rather than the SVG at run time: the frozen app leaves QtSvg out, and the
renders are exact at each size the window manager, dock and tray ask for.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon, QPixmap

BRAND_DIR = Path(__file__).resolve().parent / "brand"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def png(size: int) -> Path:
    return BRAND_DIR / f"dockyard-{size}.png"


@cache
def app_icon() -> QIcon:
    icon = QIcon()
    for size in SIZES:
        if png(size).is_file():
            icon.addFile(str(png(size)))
    return icon


def pixmap(size: int) -> QPixmap:
    """The mark at `size` pixels (scaled from the nearest larger render)."""
    return app_icon().pixmap(size, size)
