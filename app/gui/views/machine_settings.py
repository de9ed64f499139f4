"""The machine page's Settings tab: CPU, memory and disk, and the shared folders.

Both edit the machine's YAML config through the runner (validated there; an out-of-range
value comes back as the config's message naming the field). They apply at the next start,
and the tab says so; with the native backend the engine uses this host's own resources and
folders directly, so the tab says that instead.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.views.share_dialog import ShareDialog
from machine import config

APPLY_NOTE = "Saved to the machine's config; applied at the next start (Restart to use now)."
NATIVE_NOTE = (
    "This machine runs the engine natively on this computer: containers use the host's CPUs, "
    "memory, disk and folders directly. These settings apply to VM backends (qemu, libvirt)."
)
ShareValues = tuple[str, str, str, bool]


class MachineSettings(QWidget):
    resources_saved = Signal(int, int, int)  # cpus, memory MiB, disk GiB
    share_added = Signal(str, str, str, bool)
    share_removed = Signal(str)  # tag

    def __init__(self) -> None:
        super().__init__()
        # The seam tests replace: the add-share form (its values, None if cancelled).
        self.ask_share: Callable[[], ShareValues | None] = self._ask_share
        self.cpus = QSpinBox()
        self.cpus.setRange(1, config.host_cpus())
        self.cpus.setSuffix(" CPU")  # the range starts at 1; more reads " CPUs"
        self.cpus.valueChanged.connect(lambda n: self.cpus.setSuffix(" CPU" if n == 1 else " CPUs"))
        self.memory = QSpinBox()
        self.memory.setRange(config.MIN_MEMORY_MIB, config.host_memory_mib())
        self.memory.setSingleStep(256)
        self.memory.setSuffix(" MiB")
        self.disk = QSpinBox()
        self.disk.setRange(config.MIN_DISK_GIB, config.MAX_DISK_GIB)
        self.disk.setSuffix(" GiB")
        for spin in (self.cpus, self.memory, self.disk):
            spin.setMinimumWidth(130)
        self.save = QPushButton("Save")
        self.save.clicked.connect(self._save)
        self.note = QLabel(APPLY_NOTE)
        self.note.setObjectName("notice")
        self.note.setWordWrap(True)
        self.shares = _shares_table()
        self.add = QPushButton("Add folder…")
        self.add.clicked.connect(self._add)
        self.remove = QPushButton("Remove")
        self.remove.clicked.connect(self._remove)
        self.remove.setEnabled(False)
        self.shares.itemSelectionChanged.connect(
            lambda: self.remove.setEnabled(bool(self.shares.selectedItems()))
        )
        self._build()

    def _build(self) -> None:
        sizes = QGroupBox("Resources")
        form = QFormLayout(sizes)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("CPUs", self.cpus)
        form.addRow("Memory", self.memory)
        form.addRow("Disk", self.disk)
        save_row = QHBoxLayout()
        save_row.addWidget(self.save)
        save_row.addStretch(1)
        form.addRow("", save_row)
        folders = QGroupBox("Shared folders")
        column = QVBoxLayout(folders)
        column.addWidget(self.shares, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add)
        buttons.addWidget(self.remove)
        buttons.addStretch(1)
        column.addLayout(buttons)
        row = QHBoxLayout()
        row.addWidget(sizes, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(folders, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 10, 0, 0)
        layout.addWidget(self.note)
        layout.addLayout(row, 1)

    def show_config(self, cfg: config.MachineConfig, disk_made: bool) -> None:
        self.cpus.setMaximum(max(config.host_cpus(), cfg.cpus))
        self.cpus.setValue(cfg.cpus)
        self.memory.setMaximum(max(config.host_memory_mib(), cfg.memory_mib))
        self.memory.setValue(cfg.memory_mib)
        self.disk.setValue(cfg.disk_gib)
        self.disk.setEnabled(not disk_made)
        self.disk.setToolTip(
            "The data disk exists: its size is fixed (remove the machine to change it)"
            if disk_made
            else "The data disk is made at the first start"
        )
        self.note.setText(NATIVE_NOTE if cfg.backend == "native" else APPLY_NOTE)
        self.shares.setRowCount(0)
        for share in cfg.shares:
            self._add_row(share)

    def _add_row(self, share: config.Share) -> None:
        row = self.shares.rowCount()
        self.shares.insertRow(row)
        cells = (
            share.host_path,
            share.guest_path,
            share.mode,
            "read-only" if share.readonly else "read-write",
        )
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, share.tag)
            item.setToolTip(f"{share.tag}: {text}")
            self.shares.setItem(row, column, item)

    def set_enabled(self, enabled: bool) -> None:
        for w in (self.save, self.add, self.cpus, self.memory):
            w.setEnabled(enabled)
        self.remove.setEnabled(enabled and bool(self.shares.selectedItems()))

    def selected_tag(self) -> str:
        items = self.shares.selectedItems()
        return str(items[0].data(Qt.ItemDataRole.UserRole)) if items else ""

    def _save(self) -> None:
        self.resources_saved.emit(self.cpus.value(), self.memory.value(), self.disk.value())

    def _add(self) -> None:
        values = self.ask_share()
        if values is not None:
            self.share_added.emit(*values)

    def _ask_share(self) -> ShareValues | None:
        dialog = ShareDialog(self)
        return dialog.values() if dialog.exec() == ShareDialog.DialogCode.Accepted else None

    def _remove(self) -> None:
        tag = self.selected_tag()
        if tag:
            self.share_removed.emit(tag)


def _shares_table() -> QTableWidget:
    table = QTableWidget(0, 4)
    table.setHorizontalHeaderLabels(["Folder", "In the machine", "Mode", "Access"])
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setShowGrid(False)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    return table
