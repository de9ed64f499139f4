"""Dark and light themes: Fusion with a palette that follows the OS, plus a small style sheet.

Why Fusion with our own palettes: it renders the same on every platform and under Xvfb, and
its palette roles are all we need to switch themes; the style sheet only adds what a palette
cannot say (the sidebar, the banner, table headers).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")

_LIGHT = {
    "window": "#f5f6f8",
    "base": "#ffffff",
    "alt": "#f7f8fa",
    "text": "#1f2328",
    "muted": "#6a7079",
    "button": "#eceef1",
    "highlight": "#2f6fd6",
    "sidebar": "#eceef2",
    "border": "#d9dce1",
    "banner": "#fff4d6",
    "banner_text": "#5c4400",
}
_DARK = {
    "window": "#1e2024",
    "base": "#25282d",
    "alt": "#2a2d33",
    "text": "#e6e8eb",
    "muted": "#9aa0a8",
    "button": "#30343a",
    "highlight": "#3d7be0",
    "sidebar": "#18191c",
    "border": "#3a3e45",
    "banner": "#4a3b12",
    "banner_text": "#ffe6a6",
}


def resolve(choice: str) -> str:
    """ "light" or "dark": a fixed choice, or the OS's colour scheme for "system"."""
    if choice in ("light", "dark"):
        return choice
    scheme = QGuiApplication.styleHints().colorScheme()
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def apply(app: QApplication, choice: str) -> str:
    """Apply a theme ("system", "light", "dark"); returns the one in effect."""
    name = resolve(choice)
    colors = _DARK if name == "dark" else _LIGHT
    app.setStyle("Fusion")
    app.setPalette(_palette(colors))
    app.setStyleSheet(_style_sheet(colors))
    return name


def follow_os(app: QApplication, choice: Callable[[], str]) -> None:
    """Re-apply the theme when the OS switches between light and dark, if set to "system"."""

    def changed(_scheme: Qt.ColorScheme) -> None:
        if choice() == "system":
            apply(app, "system")

    QGuiApplication.styleHints().colorSchemeChanged.connect(changed)


def _palette(c: dict[str, str]) -> QPalette:
    pal = QPalette()
    role = QPalette.ColorRole
    pairs = {
        role.Window: c["window"],
        role.WindowText: c["text"],
        role.Base: c["base"],
        role.AlternateBase: c["alt"],
        role.Text: c["text"],
        role.Button: c["button"],
        role.ButtonText: c["text"],
        role.Highlight: c["highlight"],
        role.HighlightedText: "#ffffff",
        role.ToolTipBase: c["base"],
        role.ToolTipText: c["text"],
        role.PlaceholderText: c["muted"],
        role.Link: c["highlight"],
    }
    for r, color in pairs.items():
        pal.setColor(r, QColor(color))
    pal.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor(c["muted"]))
    pal.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor(c["muted"]))
    return pal


def _style_sheet(c: dict[str, str]) -> str:
    return f"""
    QListWidget#sidebar {{
        background: {c["sidebar"]}; border: none; padding: 8px 6px; font-size: 13px;
        outline: 0;
    }}
    QListWidget#sidebar::item {{ padding: 7px 10px; border-radius: 6px; margin: 1px 0; }}
    QListWidget#sidebar::item:selected {{ background: {c["highlight"]}; color: white; }}
    QFrame#banner {{ background: {c["banner"]}; border-bottom: 1px solid {c["border"]}; }}
    QLabel#bannerText {{ color: {c["banner_text"]}; }}
    QLabel#pageTitle {{ font-size: 18px; font-weight: 600; }}
    QLabel#emptyState {{ color: {c["muted"]}; font-size: 14px; }}
    QLabel#notice {{ color: {c["muted"]}; }}
    QHeaderView::section {{
        background: {c["window"]}; color: {c["muted"]}; border: none;
        border-bottom: 1px solid {c["border"]}; padding: 5px 6px; font-weight: 600;
    }}
    QTreeView, QTableView {{ border: 1px solid {c["border"]}; border-radius: 6px; }}
    QTreeView::item, QTableView::item {{ padding: 4px 2px; }}
    QLineEdit {{
        border: 1px solid {c["border"]}; border-radius: 6px; padding: 4px 8px;
        background: {c["base"]};
    }}
    """
