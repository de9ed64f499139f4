"""One container's logs: the stream, the bounded model, the view and its toolbar.

Why the frame timer: the stream's thread only reads bytes into a pending buffer and never
touches the model; every FRAME_MS the GUI thread parses as much as FRAME_BUDGET_S allows and
appends it as one batch (workers/logs_stream.py says why the parse is not on the stream's
thread). However fast the container writes, the GUI thread does one bounded parse and one
insert per frame, and the event loop stays free between frames (tests/gui/test_logs_view.py
holds it to that).

The toolbar: search (Enter / F3 next, Shift+Enter / Shift+F3 previous, every hit highlighted,
the current one stronger), a timestamps toggle (the stream always asks for them, so toggling
only repaints), copy (the selected lines, or all), save to a file, and "Follow" while the
view is paused away from the bottom.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.engine_client import EngineClient
from app.gui.logparse import Batch, LogParser
from app.gui.models.logs import LogModel
from app.gui.views.logs import LogView
from app.gui.workers.body import ChunkDecoder
from app.gui.workers.logs_stream import LogStream

FRAME_MS = 16
# Parsing per frame. Under CPython's 5 ms switch interval on purpose: a longer hold of the
# GIL lets the stream's thread, waking with data, force a hand-over, and the GUI thread then
# waits until the OS schedules that thread (a long wait on a loaded machine).
FRAME_BUDGET_S = 0.003
SLICE_BYTES = 4096  # parsed at a time within the budget
SETTINGS_TIMESTAMPS = "logs/timestamps"


def _button(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    return button


class LogsPanel(QWidget):
    """Streams `container`'s logs (following) into a LogView with search and export."""

    flushed = Signal(int)  # rows appended by one frame's flush
    ended = Signal()  # the stream ended (container gone, or stopped without follow)

    def __init__(
        self,
        client: Callable[[], EngineClient],
        container: str,
        settings: QSettings | None = None,
        capacity: int | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.container = container
        self.name = container[:12]
        self._settings = settings
        self.model = LogModel() if capacity is None else LogModel(capacity)
        self.view = LogView(self)
        self.view.setModel(self.model)
        self.stream = LogStream(client, container)
        self.stream.opened.connect(self._on_opened)
        self.stream.failed.connect(self._on_failed)
        self.stream.finished.connect(self._on_finished)
        self._timer = QTimer(self)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self.flush)
        self._parser: LogParser | None = None
        self._dechunk: ChunkDecoder | None = None
        self._stream_done = False
        self._build()
        self.view.followingChanged.connect(self._follow_button.setHidden)
        self.model.rowsInserted.connect(self._update_status)
        self.state = "connecting"  # then "streaming", "ended" or "error: ..."
        self._update_status()

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.search_box = QLineEdit(placeholderText="Search logs  (Ctrl+F)")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.textChanged.connect(self._on_search_text)
        self.search_box.returnPressed.connect(self._on_return)
        prev_button = _button("Previous", "Previous match (Shift+F3)")
        next_button = _button("Next", "Next match (F3)")
        prev_button.clicked.connect(lambda: self.find_text(forward=False))
        next_button.clicked.connect(lambda: self.find_text(forward=True))
        self.match_label = QLabel()
        self.timestamps_box = QCheckBox("Timestamps")
        self.timestamps_box.setChecked(self._saved_timestamps())
        self.timestamps_box.toggled.connect(self.set_timestamps)
        self.view.delegate.timestamps = self.timestamps_box.isChecked()
        copy_button = _button("Copy", "Copy the selected lines, or all (Ctrl+C)")
        copy_button.clicked.connect(self.copy)
        save_button = _button("Save…", "Save the lines to a file (Ctrl+S)")
        save_button.clicked.connect(self._ask_save)
        self._follow_button = _button("Follow ↓", "Jump to the end and follow (End)")
        self._follow_button.clicked.connect(self.view.follow)
        self._follow_button.setHidden(True)
        bar = QHBoxLayout()
        left: tuple[QWidget, ...] = (self.search_box, prev_button, next_button, self.match_label)
        for w in left:
            bar.addWidget(w)
        bar.addStretch(1)
        for w in (self.timestamps_box, copy_button, save_button):
            bar.addWidget(w)
        self.status_label = QLabel()
        bottom = QHBoxLayout()
        bottom.addWidget(self.status_label, 1)
        bottom.addWidget(self._follow_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)
        for keys, slot in (
            (QKeySequence.StandardKey.Find, self.search_box.setFocus),
            (QKeySequence.StandardKey.FindNext, lambda: self.find_text(forward=True)),
            (QKeySequence.StandardKey.FindPrevious, lambda: self.find_text(forward=False)),
            (QKeySequence.StandardKey.Copy, self.copy),
            (QKeySequence.StandardKey.Save, self._ask_save),
            (QKeySequence(Qt.Key.Key_End), self.view.follow),
        ):
            QShortcut(keys, self, slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # -- streaming -----------------------------------------------------------------------
    def start(self) -> None:
        """Open the stream and start the frame timer (call once)."""
        self.stream.start()
        self._timer.start()

    def stop(self) -> None:
        """End the stream and its thread; the lines stay."""
        self._timer.stop()
        self._stream_done = False
        if self.stream.isRunning():
            self.stream.stop()

    def flush(self) -> int:
        """Parse what the stream read since the last frame, within FRAME_BUDGET_S, and
        append it to the model as one batch; the rest waits for the next frame."""
        if self._parser is None:
            if not self.stream.pending():
                return self._maybe_finish()
            self._parser = LogParser(tty=self.stream.tty, timestamps=True)
            self._dechunk = ChunkDecoder() if self.stream.chunked else None
        deadline = time.monotonic() + FRAME_BUDGET_S
        batch = Batch()
        while chunk := self.stream.take(SLICE_BYTES):  # at least one slice per frame
            body = self._dechunk.feed(chunk) if self._dechunk is not None else chunk
            batch.extend(self._parser.feed(body))
            if time.monotonic() >= deadline:
                break
        self._append(batch)
        return len(batch) + self._maybe_finish()

    def _append(self, batch: Batch) -> None:
        if len(batch):
            widest = max(map(len, batch.texts))
            if widest > self.view.delegate.widest:
                self.view.fit_width(widest)
            self.model.append(batch)
            self.flushed.emit(len(batch))

    def _maybe_finish(self) -> int:
        """Once the stream has ended and every byte is parsed: the last open lines, then
        the timer stops and `ended` fires."""
        if not self._stream_done or self.stream.pending():
            return 0
        last = self._parser.finish() if self._parser is not None else Batch()
        self._append(last)
        self._timer.stop()
        if not self.state.startswith("error"):
            self.state = "ended"
        self._update_status()
        self.ended.emit()
        self._stream_done = False
        return len(last)

    def _on_opened(self, name: str) -> None:
        self.name = name
        self.state = "streaming"
        self._update_status()

    def _on_failed(self, message: str) -> None:
        self.state = f"error: {message}"
        self._update_status()

    def _on_finished(self) -> None:
        self._stream_done = True  # the frame timer drains what is left, then finishes
        if not self._timer.isActive():
            self._timer.start()

    def _update_status(self, *_: object) -> None:
        rows = self.model.rowCount()
        text = f"{self.name} · {rows:,} lines · {self.state}"
        if self.model.dropped:
            text += f" · {self.model.dropped:,} older lines dropped"
        self.status_label.setText(text)

    # -- search --------------------------------------------------------------------------
    def find_text(self, forward: bool = True) -> int:
        """Select and show the next (previous) line containing the search text; -1 if none."""
        term = self.search_box.text()
        current = self.view.currentIndex()
        start = current.row() if current.isValid() else (-1 if forward else 0)
        row = self.model.find(term, start, forward)
        self.view.delegate.current_row = row
        if row < 0:
            self.match_label.setText("no match" if term else "")
        else:
            self.match_label.setText(f"line {row + 1:,}")
            index = self.model.index(row, 0)
            self.view.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
            self.view.scrollTo(index)
        self.view.viewport().update()
        return row

    def _on_search_text(self, text: str) -> None:
        self.view.delegate.search = text
        self.view.delegate.current_row = -1
        self.match_label.setText("")
        self.view.viewport().update()

    def _on_return(self) -> None:
        shift = QGuiApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier
        self.find_text(forward=not shift)

    # -- timestamps, copy, save ----------------------------------------------------------
    def _saved_timestamps(self) -> bool:
        if self._settings is None:
            return False
        return str(self._settings.value(SETTINGS_TIMESTAMPS, "false")).lower() == "true"

    def set_timestamps(self, on: bool) -> None:
        self.view.delegate.timestamps = on
        if self._settings is not None:
            self._settings.setValue(SETTINGS_TIMESTAMPS, on)
        if self.timestamps_box.isChecked() != on:
            self.timestamps_box.setChecked(on)
        self.view.fit_width(0)  # the row width changes with the timestamp column

    def selected_text(self) -> str:
        """The selected lines in order (all lines when none is selected), newline-ended."""
        rows = sorted(i.row() for i in self.view.selectionModel().selectedRows())
        lines = self.model.lines(rows or None, timestamps=self.view.delegate.timestamps)
        return "".join(line + "\n" for line in lines)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.selected_text())

    def save(self, path: Path) -> int:
        """Write every line held (timestamps as shown) to `path`; the number of lines."""
        lines = self.model.lines(timestamps=self.view.delegate.timestamps)
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return len(lines)

    def _ask_save(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save logs", f"{self.name}.log")
        if name:
            try:
                count = self.save(Path(name))
            except OSError as e:
                self.status_label.setText(f"could not save {name}: {e.strerror or e}")
            else:
                self.status_label.setText(f"saved {count:,} lines to {name}")
