"""The "create network" form: name, optional subnet, internal. Checked before it is sent,
so a typo is pointed at in the form instead of coming back as an engine error."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.gui.models.networks import create_body


class NetworkDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Create a network")
        self.body: dict[str, Any] | None = None
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. backend")
        self.subnet = QLineEdit()
        self.subnet.setPlaceholderText("optional, e.g. 10.20.0.0/24 (a free one if empty)")
        self.internal = QCheckBox("Internal: no way out of the network (no NAT to the outside)")
        self.error = QLabel()
        self.error.setObjectName("formError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d0453b;")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Subnet", self.subnet)
        form.addRow("", self.internal)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(460, 0)

    def accept(self) -> None:
        try:
            self.body = create_body(self.name.text(), self.subnet.text(), self.internal.isChecked())
        except ValueError as e:
            self.error.setText(str(e))
            return
        super().accept()
