"""A read-only JSON viewer with search (inspect output), as a non-modal dialog."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtGui import QFont, QFontDatabase, QKeySequence, QShortcut, QTextDocument
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class JsonViewer(QDialog):
    def __init__(self, title: str, doc: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(760, 620)
        self.text = QPlainTextEdit(json.dumps(doc, indent=2, sort_keys=False))
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search (Enter: next, Shift+Enter: previous)")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.find_next)
        self.status = QLabel()
        prev, nxt = QPushButton("Previous"), QPushButton("Next")
        prev.clicked.connect(self.find_previous)
        nxt.clicked.connect(self.find_next)
        QShortcut(QKeySequence.StandardKey.Find, self, self.search.setFocus)
        QShortcut(QKeySequence("Shift+Return"), self.search, self.find_previous)
        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(prev)
        bar.addWidget(nxt)
        bar.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.text, 1)
        font = QFont(self.status.font())
        font.setPointSizeF(font.pointSizeF() * 0.9)
        self.status.setFont(font)

    def find_next(self) -> bool:
        return self._find(QTextDocument.FindFlag(0))

    def find_previous(self) -> bool:
        return self._find(QTextDocument.FindFlag.FindBackward)

    def _find(self, flags: QTextDocument.FindFlag) -> bool:
        needle = self.search.text()
        if not needle:
            return False
        if self.text.find(needle, flags):
            self.status.setText("")
            return True
        cursor = self.text.textCursor()  # wrap around once
        cursor.movePosition(
            cursor.MoveOperation.Start
            if not flags & QTextDocument.FindFlag.FindBackward
            else cursor.MoveOperation.End
        )
        self.text.setTextCursor(cursor)
        found = self.text.find(needle, flags)
        self.status.setText("" if found else "Not found")
        return found
