"""The banner shown while the engine cannot be reached: what failed, and Retry.

Why a banner and not a dialog: an engine that is down (machine stopped, socket moved) is an
ordinary state of a desktop app, not an error to acknowledge. The pages stay usable with
their last data; the banner says so and goes away by itself once the events stream is back.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton


class Banner(QFrame):
    retry_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("banner")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("bannerText")
        self.retry = QPushButton("Retry")
        self.retry.setObjectName("bannerRetry")
        self.retry.clicked.connect(self._retry)
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 8, 10, 8)
        row.addWidget(self.message, 1)
        row.addWidget(self.retry)
        self.hide()

    def show_unreachable(self, host: str, why: str) -> None:
        self.message.setText(
            f"<b>Cannot reach the engine</b> at {host}: {why}. "
            "Showing the last known state; Dockyard reconnects by itself."
        )
        self.retry.setEnabled(True)
        self.retry.setText("Retry")
        self.show()

    def _retry(self) -> None:
        self.retry.setEnabled(False)
        self.retry.setText("Connecting…")
        self.retry_clicked.emit()

    def clear(self) -> None:
        self.hide()
