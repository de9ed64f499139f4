"""The pull dialog: an image name, then one progress bar per layer and one for the pull.

Non-modal, so the user can keep working while a large image comes down; closing it (or
Cancel) abandons the pull. The layers table paints its progress column with the style's own
progress bar, so it looks native on every platform.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QCloseEvent, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.engine_client import EngineClient
from app.gui.models.pull import FRACTION_ROLE, LAYER, PROGRESS, STATUS, PullModel
from app.gui.workers.pull_stream import PullStream

Index = QModelIndex | QPersistentModelIndex
STEPS = 1000  # the bars' resolution


class ProgressDelegate(QStyledItemDelegate):
    """A progress bar with the row's detail text ("1.2 MiB / 3.4 MiB") in it."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(4, 4, -4, -4)
        bar.minimum, bar.maximum = 0, STEPS
        bar.progress = round(float(index.data(FRACTION_ROLE) or 0.0) * STEPS)
        bar.text = str(index.data(Qt.ItemDataRole.DisplayRole) or "") or f"{bar.progress // 10}%"
        bar.textVisible = True
        bar.state = option.state
        style = option.widget.style() if option.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class PullDialog(QDialog):
    pulled = Signal(str)  # the image, once its pull succeeded

    def __init__(
        self, client: Callable[[], EngineClient], image: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pull an image")
        self.resize(640, 420)
        self._client = client
        self.stream: PullStream | None = None
        self._busy = False
        self.model = PullModel()
        self.image_box = QLineEdit(image)
        self.image_box.setPlaceholderText("name[:tag], e.g. alpine:3.20 or registry:5000/app")
        self.image_box.returnPressed.connect(self.start_pull)
        self.pull_button = QPushButton("Pull")
        self.pull_button.setDefault(True)
        self.pull_button.clicked.connect(self.start_pull)
        self.overall = QProgressBar()
        self.overall.setRange(0, STEPS)
        self.overall.setValue(0)
        self.overall.setFormat("%p%")
        self.status = QLabel("Type an image name and press Pull.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.layers = _layers_table(self.model)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        self.model.dataChanged.connect(self._progressed)
        self._build()

    def _build(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Image"))
        top.addWidget(self.image_box, 1)
        top.addWidget(self.pull_button)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.overall)
        layout.addWidget(self.status)
        layout.addWidget(self.layers, 1)
        layout.addLayout(bottom)

    @property
    def running(self) -> bool:
        """A pull is under way: true from Pull until its outcome is shown (not merely until
        its thread ends: the last messages may still be queued for this thread then)."""
        return self._busy

    def start_pull(self) -> None:
        image = self.image_box.text().strip()
        if not image or self.running:
            if not image:
                self.status.setText("Type an image name first, e.g. alpine:3.20.")
            return
        self._busy = True
        self.model.clear()
        self.overall.setValue(0)
        self.status.setText(f"Pulling {image}…")
        self.pull_button.setEnabled(False)
        self.image_box.setEnabled(False)
        self.close_button.setText("Cancel")
        stream = PullStream(self._client, image)
        stream.message.connect(self._on_message)
        # Bound methods of objects in the GUI thread, so Qt queues each delivery here.
        stream.succeeded.connect(self._on_succeeded)
        stream.failed.connect(self._on_failed)
        self.stream = stream
        stream.start()

    def cancel(self) -> None:
        if self.stream is None or not self._busy:
            return
        if self.stream.isRunning():
            self.stream.stop()
        self._finished(self.stream.image, False, "cancelled")

    def _on_message(self, message: dict[str, Any]) -> None:
        if not self._busy:
            return  # cancelled: what was still queued is not shown
        self.model.apply(message)
        if "progressDetail" not in message and message.get("status"):
            self.status.setText(str(message["status"]))

    def _on_succeeded(self, last: str) -> None:
        if self.stream is not None:
            self._finished(self.stream.image, True, last)

    def _on_failed(self, why: str) -> None:
        if self.stream is not None:
            self._finished(self.stream.image, False, why)

    def _progressed(self, *_: object) -> None:
        self.overall.setValue(round(self.model.overall() * STEPS))

    def _finished(self, image: str, ok: bool, text: str) -> None:
        if not self._busy:
            return  # already cancelled: a late outcome changes nothing
        self._busy = False
        self.pull_button.setEnabled(True)
        self.image_box.setEnabled(True)
        self.close_button.setText("Close")
        if ok:
            self.overall.setValue(STEPS)
            self.status.setText(text.removeprefix("Status: ") or f"Pulled {image}")
            self.pulled.emit(image)
        else:
            self.status.setText(f"Could not pull {image}: {text}")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel()
        super().closeEvent(event)

    def reject(self) -> None:  # Escape: the same as closing
        self.cancel()
        super().reject()


def _layers_table(model: PullModel) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setItemDelegateForColumn(PROGRESS, ProgressDelegate(view))
    view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setShowGrid(False)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 12)
    header = view.horizontalHeader()
    header.setSectionResizeMode(LAYER, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(STATUS, QHeaderView.ResizeMode.Interactive)
    header.setSectionResizeMode(PROGRESS, QHeaderView.ResizeMode.Stretch)
    view.setColumnWidth(STATUS, 150)
    return view
