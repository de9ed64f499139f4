"""About, Collect diagnostics and Reset to factory defaults: the app's support actions.

Each action that touches files runs on the context's pool (a diagnostics bundle reads
logs and runs the host checks; a reset stops machines), and reports back in a message box.
Reset asks first, with No as the default button: it deletes every machine's images,
containers and volumes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from app import applog, diagnostics, reset
from app.gui import branding
from app.gui.context import AppContext
from app.version import version


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Dockyard")
        logo = QLabel()
        logo.setPixmap(branding.pixmap(96))
        self.text = QLabel(
            f"<h2>Dockyard {version()}</h2>"
            "<p>A desktop container manager with its own engine.</p>"
            f"<p>Qt {qVersion()} (PySide6 {pyside_version}), Python {sys.version.split()[0]}"
            "</p>"
            f"<p>Logs: {applog.log_dir()}</p>"
        )
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(buttons)


def collect_diagnostics(parent: QWidget, ctx: AppContext, out: Path | None = None) -> None:
    """Ask where (unless `out` is given), then write the bundle off the GUI thread."""
    if out is None:
        chosen, _ = QFileDialog.getSaveFileName(
            parent,
            "Save diagnostics",
            str(Path.home() / diagnostics.default_name()),
            "Zip files (*.zip)",
        )
        if not chosen:
            return
        out = Path(chosen)
    target = out
    ctx.run(
        lambda _client: diagnostics.collect(target),
        lambda members: QMessageBox.information(
            parent,
            "Diagnostics saved",
            f"Saved {target} ({len(members)} files, secrets removed). Attach it to your "
            "bug report.",
        ),
        lambda error: QMessageBox.warning(parent, "Diagnostics failed", str(error)),
    )


def confirm_reset(parent: QWidget) -> bool:
    answer = QMessageBox.warning(
        parent,
        "Reset to factory defaults",
        "This stops and deletes every machine, with its images, containers and volumes, "
        "and clears Dockyard's settings. It cannot be undone.\n\nReset now?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def reset_to_defaults(parent: QWidget, ctx: AppContext, ask: bool = True) -> None:
    """After confirmation: machines removed on the pool, then the settings cleared here."""
    if ask and not confirm_reset(parent):
        return

    def done(problems: object) -> None:
        ctx.settings.clear()
        ctx.settings.sync()
        if problems:
            QMessageBox.warning(parent, "Reset incomplete", "\n".join(map(str, problems)))
        else:
            QMessageBox.information(parent, "Reset done", "Dockyard is back to factory defaults.")

    ctx.run(
        lambda _client: reset.reset(report=lambda _line: None, settings=lambda: None),
        done,
        lambda error: QMessageBox.warning(parent, "Reset failed", str(error)),
    )
