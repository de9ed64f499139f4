"""A pull's progress, one row per layer, from the engine's JSON progress messages.

Each message with an `id` and a `progressDetail` is about one layer (`Pulling fs layer`,
`Downloading` with current/total, `Verifying Checksum`, `Download complete`, `Extracting`,
`Pull complete`, or `Already exists`); the other messages (`Pulling from ...`, `Digest: ...`,
`Status: ...`) are the pull's own status lines. A layer's progress is a fraction: the
download counts for DOWNLOAD_SHARE of it and the extraction for the rest, so one bar per
layer moves monotonically from waiting to done; the pull's overall fraction is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from app.gui.models.container_row import human_bytes

Index = QModelIndex | QPersistentModelIndex
FRACTION_ROLE = Qt.ItemDataRole.UserRole + 1  # 0.0-1.0 for the progress column
DOWNLOAD_SHARE = 0.8
DONE = {"Pull complete", "Already exists"}
DOWNLOADED = {"Verifying Checksum", "Download complete"}
LAYER, STATUS, PROGRESS = range(3)
HEADERS = ("Layer", "Status", "Progress")


@dataclass
class Layer:
    id: str
    status: str = "Waiting"
    current: int = 0
    total: int = 0
    fraction: float = 0.0

    def apply(self, status: str, detail: dict[str, Any]) -> None:
        self.status = status
        current, total = int(detail.get("current") or 0), int(detail.get("total") or 0)
        self.current, self.total = current, total
        part = min(1.0, current / total) if total > 0 else 0.0
        if status == "Downloading":
            new = DOWNLOAD_SHARE * part
        elif status in DOWNLOADED:
            new = DOWNLOAD_SHARE
        elif status == "Extracting":
            new = DOWNLOAD_SHARE + (1 - DOWNLOAD_SHARE) * part
        elif status in DONE:
            new = 1.0
        else:
            new = self.fraction
        self.fraction = max(self.fraction, new)  # never backwards (a retried download)

    @property
    def detail(self) -> str:
        if self.total > 0 and self.status in ("Downloading", "Extracting"):
            return f"{human_bytes(self.current)} / {human_bytes(self.total)}"
        return ""


class PullModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.layers: list[Layer] = []
        self.status_lines: list[str] = []
        self._rows: dict[str, int] = {}

    # -- Qt ------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.layers)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        layer = self.layers[index.row()]
        if role == FRACTION_ROLE:
            return layer.fraction
        if role == Qt.ItemDataRole.DisplayRole:
            return (layer.id, layer.status, layer.detail)[index.column()]
        return None

    # -- progress ------------------------------------------------------------------------
    def apply(self, message: dict[str, Any]) -> None:
        """One progress message from the engine's pull stream."""
        status = str(message.get("status", ""))
        ident = message.get("id")
        if ident is None or "progressDetail" not in message:
            if status:
                self.status_lines.append(f"{ident}: {status}" if ident else status)
            return
        row = self._rows.get(str(ident))
        if row is None:
            row = len(self.layers)
            self.beginInsertRows(QModelIndex(), row, row)
            self.layers.append(Layer(str(ident)))
            self._rows[str(ident)] = row
            self.endInsertRows()
        self.layers[row].apply(status, dict(message.get("progressDetail") or {}))
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    def overall(self) -> float:
        """The mean of the layers' fractions (0.0 before any layer is known)."""
        if not self.layers:
            return 0.0
        return sum(layer.fraction for layer in self.layers) / len(self.layers)

    def clear(self) -> None:
        self.beginResetModel()
        self.layers, self.status_lines, self._rows = [], [], {}
        self.endResetModel()
