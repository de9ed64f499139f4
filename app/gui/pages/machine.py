"""The machine page: the machine the engine runs in — its state and controls, the last start's
stages, its log, its settings, its ports and its resource use.

The page owns a MachineRunner (workers/machine_runner.py) for the machine named in the
settings (`default`, as `dockyard machine` uses), and offers it to the tray with
`ctx.set_machine` once that machine exists, so both drive the same machine and show the
same state. Every verb runs
on the runner's thread; the live feeds (log tail, resources, ports) run on a
MachineWatcher while the page is in front, and stop when it is not.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui import prefs
from app.gui.context import AppContext
from app.gui.icons import STATE_COLORS
from app.gui.machine_control import MachineState
from app.gui.models import ports
from app.gui.models.table import KeyedTableModel
from app.gui.pages.base import Page
from app.gui.pages.listing import set_widths
from app.gui.views.machine_settings import MachineSettings
from app.gui.views.sparkline import Sparkline
from app.gui.views.stage_timeline import StageTimeline, failed_stage, total_seconds
from app.gui.workers import machine_jobs
from app.gui.workers.machine_jobs import Snapshot
from app.gui.workers.machine_runner import MachineRunner
from app.gui.workers.machine_watch import MachineWatcher
from machine import config
from machine.errors import MachineError

ERROR_STYLE = (
    "background: rgba(208, 69, 59, 0.12); border: 1px solid rgba(208, 69, 59, 0.6);"
    " border-radius: 6px; padding: 8px 10px;"
)
MIB = 1024 * 1024
LOG_LINES = 5000  # the log view keeps this many lines (the file keeps everything)
STATE_TEXT = {
    "running": "Running",
    "stopped": "Stopped",
    "not-created": "Not created",
    "crashed": "Crashed",
    machine_jobs.BROKEN: "Config error",
}


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def cpus_text(n: int) -> str:
    return f"{n} CPU" if n == 1 else f"{n} CPUs"


class MachinePage(Page):
    title = "Machine"
    icon_name = "machine"
    shortcut = "Ctrl+5"

    def __init__(self, runner: MachineRunner | None = None) -> None:
        super().__init__()
        self.runner = runner or MachineRunner()
        self.watcher = MachineWatcher()
        self.snap: Snapshot | None = None
        self._build_widgets()
        self._build_layout()
        self._wire()

    # -- widgets ---------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.machines = QComboBox()
        self.machines.setToolTip("Which machine this page (and the tray) controls")
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.restart_button = QPushButton("Restart")
        self.dot = QLabel()
        self.dot.setFixedSize(12, 12)
        self.state_label = QLabel()
        self.state_label.setObjectName("machineState")
        self.summary = QLabel()
        self.summary.setObjectName("notice")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_engine = QPushButton("Use this engine")
        self.use_engine.setToolTip("Connect the app to this machine's engine")
        self.use_engine.hide()
        self.error = QLabel()
        self.error.setObjectName("machineError")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        self.timeline = StageTimeline()
        self.timeline_title = QGroupBox("Last start")
        self.details = QGroupBox("Details")
        self.facts = {
            k: QLabel("—")
            for k in ("Backend", "Resources", "Shared folders", "Engine", "Docker CLI", "Log")
        }
        self.cpu = Sparkline("CPU, all containers", lambda v: f"{v:.0f}%", "#2f6fd6", 10.0)
        self.memory = Sparkline("Memory, all containers", human_bytes, "#8a4fd6", 16 * MIB, MIB)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("Nothing logged yet.")
        self.follow = QCheckBox("Follow")
        self.follow.setChecked(True)
        self.log_path = QLabel()
        self.log_path.setObjectName("notice")
        self.settings_tab = MachineSettings()
        self.ports_model = KeyedTableModel(ports.COLUMNS, lambda r: r.key)
        self.ports_view = QTableView()
        self.ports_view.setModel(self.ports_model)
        self.ports_view.verticalHeader().hide()
        self.ports_view.setShowGrid(False)
        self.ports_view.setAlternatingRowColors(True)
        header = self.ports_view.horizontalHeader()
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.ports_view.verticalHeader().setDefaultSectionSize(
            self.ports_view.fontMetrics().height() + 10
        )
        self.ports_view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        set_widths(self.ports_view, [170, 200, 120])
        self.ports_empty = QLabel("No published ports. Publish one with  docker run -p 8080:80 …")
        self.ports_empty.setObjectName("emptyState")
        self.ports_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.create_backend = QComboBox()
        for name in config.BACKENDS:
            self.create_backend.addItem(name, name)
        self.create_button = QPushButton("Create machine")
        self.empty_text = QLabel()
        self.empty_text.setObjectName("emptyState")
        self.empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_text.setWordWrap(True)

    def _build_layout(self) -> None:
        header = self.title_bar(self.machines, stretch=0)
        header.addStretch(1)
        for b in (self.start_button, self.stop_button, self.restart_button):
            header.addWidget(b)
        status = QHBoxLayout()
        status.addWidget(self.dot)
        status.addWidget(self.state_label)
        status.addSpacing(6)
        status.addWidget(self.summary, 1)
        status.addWidget(self.use_engine)
        self.tabs.addTab(self._overview(), "Overview")
        self.tabs.addTab(self._log_tab(), "Log")
        self.tabs.addTab(self.settings_tab, "Settings")
        self.ports_stack = QStackedWidget()
        self.ports_stack.addWidget(self.ports_view)
        self.ports_stack.addWidget(self.ports_empty)
        self.tabs.addTab(self._padded(self.ports_stack), "Ports")
        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(status)
        column.addWidget(self.error)
        column.addWidget(self.tabs, 1)
        self.body_stack = QStackedWidget()
        self.body_stack.addWidget(body)
        self.body_stack.addWidget(self._empty_state())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 12)
        layout.addLayout(header)
        layout.addSpacing(4)
        layout.addWidget(self.body_stack, 1)

    def _overview(self) -> QWidget:
        box = QVBoxLayout(self.timeline_title)
        box.addWidget(self.timeline)
        box.addStretch(1)
        facts = QFormLayout(self.details)
        facts.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for label, value in self.facts.items():
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            facts.addRow(label, value)
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(0, 10, 0, 0)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(12)
        grid.addWidget(self.timeline_title, 0, 0)
        grid.addWidget(self.details, 0, 1)
        grid.addWidget(self.cpu, 1, 0)
        grid.addWidget(self.memory, 1, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(1, 1)
        return page

    def _log_tab(self) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 10, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.log_path, 1)
        top.addWidget(self.follow)
        column.addLayout(top)
        column.addWidget(self.log, 1)
        return page

    def _padded(self, widget: QWidget) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 10, 0, 0)
        column.addWidget(widget)
        return page

    def _empty_state(self) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.addStretch(1)
        column.addWidget(self.empty_text)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(QLabel("Backend"))
        row.addWidget(self.create_backend)
        row.addWidget(self.create_button)
        row.addStretch(1)
        column.addLayout(row)
        column.addStretch(2)
        return page

    def _wire(self) -> None:
        r = self.runner
        self.start_button.clicked.connect(r.start)
        self.stop_button.clicked.connect(r.stop)
        self.restart_button.clicked.connect(r.restart)
        self.create_button.clicked.connect(lambda: r.create(str(self.create_backend.currentData())))
        self.use_engine.clicked.connect(self._use_engine)
        self.machines.activated.connect(self._machine_chosen)
        r.snapshot_changed.connect(self.show_snapshot)
        r.stage_changed.connect(self.show_stages)
        r.busy_changed.connect(self._busy_changed)
        r.state_changed.connect(lambda _s: self._update_controls())
        r.failed.connect(self.show_error)
        r.saved.connect(lambda cfg: self.settings_tab.show_config(cfg, self._disk_made()))
        s = self.settings_tab
        s.resources_saved.connect(r.set_resources)
        s.share_added.connect(r.add_share)
        s.share_removed.connect(r.remove_share)
        self.watcher.log_appended.connect(self.append_log)
        self.watcher.sampled.connect(self.add_sample)
        self.watcher.ports.connect(self.show_ports)

    # -- Page ------------------------------------------------------------------------------
    def attach(self, ctx: AppContext) -> None:
        super().attach(ctx)
        name = str(ctx.settings.value(prefs.MACHINE, machine_jobs.DEFAULT_NAME))
        self.runner.watch(name)
        self.create_backend.setCurrentIndex(
            self.create_backend.findData(machine_jobs.default_backend())
        )
        ctx.host_changed.connect(lambda _h: self._update_controls())
        self._update_controls()

    def activated(self) -> None:
        self.runner.refresh()
        self._follow_snapshot()
        if not self.watcher.isRunning():
            self.watcher.start()

    def deactivated(self) -> None:
        self._stop_watcher()

    def shutdown(self) -> None:
        self._stop_watcher()
        self.runner.shutdown()

    def _stop_watcher(self) -> None:
        if self.watcher.isRunning():
            self.watcher.stop()
            self.watcher = _fresh_watcher(self.watcher, self)

    # -- what the runner says ----------------------------------------------------------------
    def show_snapshot(self, snap: Snapshot) -> None:
        previous, self.snap = self.snap, snap
        if snap.exists and self.ctx.machine is not self.runner:
            # Offered once the machine exists: until then the tray's stand-in (whether the
            # app's engine answers) says more than a machine that is not there.
            self.ctx.set_machine(self.runner)
        self._fill_machines(snap.name)
        if snap.config is not None and (previous is None or previous.config != snap.config):
            self.settings_tab.show_config(snap.config, snap.disk_made)
        if snap.state == machine_jobs.BROKEN and snap.error is not None:
            self.show_error(snap.error)
        elif self.runner.error is None:
            self.error.hide()
        if not self.runner.busy:
            self.show_stages(self.runner.stages)  # a recorded failed stage shows its hint
        self._follow_snapshot()
        self._update_controls()

    def show_stages(self, stages: list[dict[str, Any]]) -> None:
        self.timeline.set_stages(stages)
        total = total_seconds(stages)
        running = self.runner.busy.startswith(("Starting", "Restarting"))
        if not stages:
            self.timeline_title.setTitle("Last start")
        elif running:
            self.timeline_title.setTitle("Starting…")
        else:
            self.timeline_title.setTitle(f"Last start — {total:.2f} s")
        failed = failed_stage(stages)
        broken = self.snap is not None and self.snap.state == machine_jobs.BROKEN
        if failed is not None and self.runner.error is None and not running and not broken:
            self._show_failure(
                str(failed.get("name")), str(failed.get("detail")), str(failed.get("hint"))
            )

    def show_error(self, error: object) -> None:
        if isinstance(error, MachineError):
            self._show_failure(error.stage, error.message, error.hint)
        else:
            self._show_failure("", str(error), "")

    def _show_failure(self, stage: str, message: str, hint: str) -> None:
        where = f"Failed at stage <b>{html.escape(stage)}</b>: " if stage else "Failed: "
        text = where + html.escape(message)
        if hint:
            text += f"<br><b>Hint:</b> {html.escape(hint)}"
        self.error.setText(text)
        self.error.show()

    def append_log(self, text: str, reset: bool) -> None:
        if reset:
            self.log.clear()
        if not text:
            return
        bar = self.log.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        cursor = QTextCursor(self.log.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        if self.follow.isChecked() and (at_end or reset):
            bar.setValue(bar.maximum())

    def add_sample(self, cpu: float | None, memory: int, count: int) -> None:
        note = f"{count} container{'s' if count != 1 else ''} running"
        if cpu is not None:
            self.cpu.add(cpu, note)
        self.memory.add(float(memory), note)

    def show_ports(self, rows: list[ports.PortRow]) -> None:
        self.ports_model.replace(rows)
        has = self.ports_model.rowCount() > 0
        self.ports_stack.setCurrentWidget(self.ports_view if has else self.ports_empty)

    def _busy_changed(self, busy: str) -> None:
        if not busy and self.runner.error is None:
            self.error.hide()  # the verb succeeded: an older failure no longer holds
        self._update_controls()

    # -- state of the widgets ------------------------------------------------------------------
    def _update_controls(self) -> None:
        snap, r = self.snap, self.runner
        state = r.state()
        created = snap is not None and snap.exists
        self.body_stack.setCurrentIndex(0 if created or snap is None else 1)
        if snap is not None and not created:
            self.empty_text.setText(
                f"No machine named “{snap.name}” yet.\n\nCreate one to run the engine in "
                "(or run  dockyard machine start  in a terminal)."
            )
        idle = not r.busy
        controllable = r.can_control()
        running = snap is not None and snap.state == "running"
        self.start_button.setEnabled(idle and controllable and not running)
        self.stop_button.setEnabled(idle and controllable and running)
        self.restart_button.setEnabled(idle and controllable and running)
        self.create_button.setEnabled(idle)
        self.settings_tab.set_enabled(idle and controllable)
        color = STATE_COLORS.get(str(state), STATE_COLORS["error"])
        self.dot.setStyleSheet(f"background: {color}; border-radius: 6px;")
        shown = r.busy or (STATE_TEXT.get(snap.state, snap.state) if snap else "Reading…")
        if state == MachineState.ERROR and snap is not None and snap.state == "stopped":
            shown = "Start failed"
        self.state_label.setText(f"<b>{html.escape(shown)}</b>")
        self.summary.setText(self._summary())
        self._fill_facts()
        on_other = self._ctx is not None and snap is not None and self.ctx.host != snap.endpoint
        self.use_engine.setVisible(bool(running and on_other and snap and snap.endpoint))

    def _summary(self) -> str:
        snap = self.snap
        if snap is None or snap.config is None:
            return ""
        cfg = snap.config
        parts = [f"{cfg.backend} backend"]
        if cfg.backend != "native":
            parts.append(f"{cpus_text(cfg.cpus)}, {config.format_mib(cfg.memory_mib)}")
        if snap.pid:
            parts.append(f"pid {snap.pid}")
        if snap.accel:
            parts.append(snap.accel)
        if snap.endpoint:
            parts.append(snap.endpoint)
        if snap.detail:
            parts.append(snap.detail.splitlines()[0])
        return "  ·  ".join(parts)

    def _fill_facts(self) -> None:
        snap = self.snap
        cfg = snap.config if snap is not None else None
        if snap is None or cfg is None:
            return
        native = cfg.backend == "native"
        backend = {
            "native": "native: the engine runs on this computer",
            "qemu": "qemu: a Linux VM",
            "libvirt": "libvirt: a Linux VM",
        }
        sizes = (
            f"{cpus_text(cfg.cpus)}, {config.format_mib(cfg.memory_mib)} memory, "
            f"{cfg.disk_gib} GiB disk"
        )
        values = {
            "Backend": backend.get(cfg.backend, cfg.backend)
            + (f" ({snap.accel})" if snap.accel else ""),
            "Resources": "this computer's own" if native else sizes,
            "Shared folders": "this computer's own"
            if native
            else (", ".join(s.guest_path for s in cfg.shares) or "none"),
            "Engine": snap.endpoint or "—",
            "Docker CLI": "docker context use dockyard",
            "Log": str(machine_jobs.log_file(snap) or "—"),
        }
        for key, text in values.items():
            self.facts[key].setText(text)

    def _follow_snapshot(self) -> None:
        snap = self.snap
        if snap is None:
            return
        log = machine_jobs.log_file(snap)
        self.log_path.setText(str(log) if log is not None else "")
        running = snap.state == "running"
        if not running:
            self.cpu.clear()
            self.memory.clear()
        if snap.config is not None:
            cpus = config.host_cpus() if snap.config.backend == "native" else snap.config.cpus
            mem = (
                config.host_memory_mib()
                if snap.config.backend == "native"
                else snap.config.memory_mib
            )
            self.cpu.set_capacity(cpus * 100.0)
            self.memory.set_capacity(float(mem) * 1024 * 1024)
        backend = snap.config.backend if snap.config is not None else ""
        self.watcher.follow(log, snap.endpoint if running else "", backend)
        if not running:
            self.show_ports([])

    def _fill_machines(self, current: str) -> None:
        def fill(found: list[str]) -> None:
            names = sorted(set(found) | {current})
            if [self.machines.itemText(i) for i in range(self.machines.count())] != names:
                self.machines.clear()
                self.machines.addItems(names)
            self.machines.setCurrentText(current)
            self.machines.setVisible(len(names) > 1)

        self.ctx.run(lambda _c: machine_jobs.names(), fill)

    def _machine_chosen(self, index: int) -> None:
        name = self.machines.itemText(index)
        if name and name != self.runner.name:
            self.ctx.settings.setValue(prefs.MACHINE, name)
            self.runner.watch(name)
            self.log.clear()

    def _disk_made(self) -> bool:
        return self.snap is not None and self.snap.disk_made

    def _use_engine(self) -> None:
        if self.snap is not None and self.snap.endpoint:
            self.ctx.set_host(self.snap.endpoint)


def _fresh_watcher(old: MachineWatcher, page: MachinePage) -> MachineWatcher:
    """A QThread runs once: the next activation gets a new watcher, wired the same way."""
    new = MachineWatcher(old.source)
    new.log_appended.connect(page.append_log)
    new.sampled.connect(page.add_sample)
    new.ports.connect(page.show_ports)
    return new
