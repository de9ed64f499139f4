"""The form that adds a shared folder: a host folder, where it shows in the machine, the mode
(the modes machine/config.py accepts) and read-only. The folder must exist before OK is
allowed; the rest is validated by the config when it is saved, whose message names the field."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from machine import config

MODE_TEXT = {
    "virtiofs": "virtiofs (fast, Linux hosts)",
    "9p": "9p (works everywhere)",
}


class ShareDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a shared folder")
        self.host_path = QLineEdit()
        self.host_path.setPlaceholderText(str(Path.home()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.guest_path = QLineEdit()
        self.guest_path.setPlaceholderText("the same path as on this computer")
        self.mode = QComboBox()
        for mode in config.SHARE_MODES:
            self.mode.addItem(MODE_TEXT.get(mode, mode), mode)
        self.readonly = QCheckBox("Read-only in the machine")
        self.error = QLabel()
        self.error.setObjectName("notice")
        row = QHBoxLayout()
        row.addWidget(self.host_path, 1)
        row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Folder", row)
        form.addRow("In the machine", self.guest_path)
        form.addRow("Mode", self.mode)
        form.addRow("", self.readonly)
        form.addRow("", self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.resize(520, self.sizeHint().height())

    def values(self) -> tuple[str, str, str, bool]:
        """(host folder, guest path or "" for the same, mode, read-only)."""
        return (
            self.host_path.text().strip(),
            self.guest_path.text().strip(),
            str(self.mode.currentData()),
            self.readonly.isChecked(),
        )

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder to share", self.host_path.text())
        if chosen:
            self.host_path.setText(chosen)

    def _accept(self) -> None:
        folder, guest, _mode, _ro = self.values()
        if not folder or not Path(folder).expanduser().is_dir():
            self.error.setText("Pick a folder that exists on this computer.")
            return
        if guest and not guest.startswith("/"):
            self.error.setText("The path in the machine must start with /.")
            return
        self.accept()
