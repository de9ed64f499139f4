"""The first-run wizard: check the host, create and boot the machine, run a container.

Three steps in one dialog, each waiting on a job off the GUI thread (the checks read the
disk and run `qemu --version`; the boot takes seconds to minutes; the container pulls):
1. the host checks of app/firstrun/checks.py, each with its fix; Continue stays disabled
   while one fails (warnings let it go on: TCG works, slowly);
2. the machine `default` made with the host's defaults (half the CPUs, a quarter of the
   RAM up to 4 GiB) and started, a progress bar advancing with the backend's stages;
3. "Run hello-world": a busybox echo on the new engine, its output shown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.engine_client import EngineClient
from app.firstrun import checks, hello
from app.gui import branding
from app.gui.workers import machine_jobs
from machine import config, paths
from machine.backend import StageStatus
from machine.errors import MachineError
from machine.stages import STAGES

MARKS = {
    checks.Status.OK: "✔",
    checks.Status.WARN: "⚠",
    checks.Status.FAIL: "✖",
    checks.Status.SKIPPED: "-",
}
NATIVE_STAGES = ("spawn", "engine")


class _Relay(QObject):
    """Carries a job's progress and outcome to the GUI thread (see workers/call.py)."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[Callable[[object], None]], object], relay: _Relay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay

    def run(self) -> None:
        try:
            result = self.fn(self.relay.progressed.emit)
        except Exception as e:  # every failure goes back as a signal
            self.relay.failed.emit(e)
        else:
            self.relay.succeeded.emit(result)


def expected_stages(backend: str) -> int:
    """A first start of a VM boots from power-on: every stage but `restore`."""
    return len(NATIVE_STAGES) if backend == "native" else len(STAGES) - 1


class FirstRunDialog(QDialog):
    """Signals say when each step finished (the tests wait on them)."""

    checks_done = Signal(object)  # list[CheckResult]
    machine_ready = Signal(str)  # the engine endpoint
    hello_done = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        name: str = machine_jobs.DEFAULT_NAME,
        backend: str = "",
        image: str = hello.IMAGE,
        wanted_ports: tuple[int, ...] = (),
        engine_args: list[str] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to Dockyard")
        self.name, self.image, self.wanted_ports = name, image, wanted_ports
        self.engine_args = engine_args
        self.backend = backend or machine_jobs.default_backend()
        self.endpoint = ""
        self.results: list[checks.CheckResult] = []
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._relays: set[_Relay] = set()
        self.steps = QStackedWidget()
        self.steps.addWidget(self._checks_step())
        self.steps.addWidget(self._machine_step())
        self.steps.addWidget(self._hello_step())
        logo = QLabel()
        logo.setPixmap(branding.pixmap(48))
        title = QLabel("<b>Set up Dockyard</b><br>A check of this computer, then your machine.")
        head = QHBoxLayout()
        head.addWidget(logo)
        head.addWidget(title, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.steps, 1)
        self.resize(640, 440)

    # -- step 1: checks ----------------------------------------------------------------
    def _checks_step(self) -> QWidget:
        page = QWidget()
        self.check_list = QLabel("Checking this computer…")
        self.check_list.setWordWrap(True)
        self.check_list.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.check_list.setTextFormat(Qt.TextFormat.RichText)
        self.check_list.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.recheck = QPushButton("Check again")
        self.recheck.clicked.connect(self.run_checks)
        self.continue_button = QPushButton("Continue")
        self.continue_button.setEnabled(False)
        self.continue_button.clicked.connect(lambda: self.steps.setCurrentIndex(1))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.recheck)
        buttons.addWidget(self.continue_button)
        layout = QVBoxLayout(page)
        layout.addWidget(self.check_list, 1)
        layout.addLayout(buttons)
        return page

    def run_checks(self) -> None:
        self.recheck.setEnabled(False)
        data_dir = Path(paths.data_dir(paths.Host.current()))
        ports = self.wanted_ports
        self._submit(lambda _p: checks.run_all(data_dir, ports), self._show_checks)

    def _show_checks(self, results: object) -> None:
        assert isinstance(results, list)
        self.results = results
        rows = []
        for r in results:
            row = f"<p>{MARKS[r.status]} <b>{r.name}</b>: {_html(r.message)}"
            if r.hint and r.status in (checks.Status.WARN, checks.Status.FAIL):
                row += f"<br>&nbsp;&nbsp;&nbsp;&nbsp;<i>Fix: {_html(r.hint)}</i>"
            rows.append(row + "</p>")
        self.check_list.setText("".join(rows))
        self.recheck.setEnabled(True)
        self.continue_button.setEnabled(not any(r.blocking for r in results))
        self.checks_done.emit(results)

    # -- step 2: the machine -------------------------------------------------------------
    def _machine_step(self) -> QWidget:
        page = QWidget()
        cpus = config.default_cpus(config.host_cpus())
        memory = config.format_mib(config.default_memory_mib(config.host_memory_mib()))
        where = "on this computer" if self.backend == "native" else "in a virtual machine"
        self.machine_text = QLabel(
            f"Dockyard will create the machine <b>{self.name}</b> {where}: "
            f"{cpus} CPU{'s' if cpus != 1 else ''}, "
            f"{memory} of memory (backend {self.backend})."
        )
        self.machine_text.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, expected_stages(self.backend))
        self.progress.setValue(0)
        self.stage_label = QLabel("")
        self.stage_label.setWordWrap(True)
        self.create_button = QPushButton("Create and start")
        self.create_button.clicked.connect(self.create_machine)
        layout = QVBoxLayout(page)
        layout.addWidget(self.machine_text)
        layout.addWidget(self.progress)
        layout.addWidget(self.stage_label, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.create_button)
        layout.addLayout(buttons)
        return page

    def create_machine(self) -> None:
        self.create_button.setEnabled(False)
        name, backend, engine_args = self.name, self.backend, self.engine_args

        def boot(report: Callable[[object], None]) -> str:
            if name not in machine_jobs.names():
                machine_jobs.create(name, backend, engine_args)
            machine_jobs.start(name, lambda stage: report(stage.as_dict()))
            cfg = config.load(machine_jobs.host(), name)
            return machine_jobs.endpoint(machine_jobs.open_backend(cfg))

        self._submit(boot, self._machine_started, self._machine_failed, self._on_stage)

    def _on_stage(self, stage: object) -> None:
        if not isinstance(stage, dict):
            return
        status = str(stage.get("status", ""))
        if status == str(StageStatus.DONE):
            self.progress.setValue(min(self.progress.maximum(), self.progress.value() + 1))
        detail = f" — {stage['detail']}" if stage.get("detail") else ""
        self.stage_label.setText(f"{stage.get('name')}: {status}{detail}")

    def _machine_started(self, endpoint: object) -> None:
        self.endpoint = str(endpoint)
        self.progress.setValue(self.progress.maximum())
        self.machine_ready.emit(self.endpoint)
        self.steps.setCurrentIndex(2)

    def _machine_failed(self, error: Exception) -> None:
        text = str(error)
        if isinstance(error, MachineError) and error.hint and "hint:" not in text:
            text += f"\nFix: {error.hint}"
        self.stage_label.setText(f"The machine did not start: {text}")
        self.create_button.setText("Try again")
        self.create_button.setEnabled(True)

    # -- step 3: hello-world ---------------------------------------------------------------
    def _hello_step(self) -> QWidget:
        page = QWidget()
        self.hello_button = QPushButton("Run hello-world")
        self.hello_button.clicked.connect(self.run_hello)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("The container's output appears here.")
        self.done_button = QPushButton("Done")
        self.done_button.clicked.connect(self.accept)
        layout = QVBoxLayout(page)
        layout.addWidget(QLabel("Your machine is running. Run a first container:"))
        layout.addWidget(self.hello_button)
        layout.addWidget(self.output, 1)
        layout.addWidget(self.done_button, 0, Qt.AlignmentFlag.AlignRight)
        return page

    def run_hello(self) -> None:
        self.hello_button.setEnabled(False)
        endpoint, image = self.endpoint, self.image
        self.output.setPlainText(f"docker run --rm {image} echo …\n")

        def job(report: Callable[[object], None]) -> str:
            return hello.run_hello(EngineClient(endpoint), image, report)

        self._submit(job, self._hello_shown, self._hello_failed, self._hello_progress)

    def _hello_progress(self, line: object) -> None:
        self.output.appendPlainText(str(line))

    def _hello_shown(self, text: object) -> None:
        self.output.appendPlainText(str(text).rstrip("\n"))
        self.hello_button.setEnabled(True)
        self.hello_done.emit(str(text))

    def _hello_failed(self, error: Exception) -> None:
        self.output.appendPlainText(f"error: {error}")
        self.hello_button.setEnabled(True)

    # -- jobs --------------------------------------------------------------------------------
    def _submit(
        self,
        fn: Callable[[Callable[[object], None]], object],
        done: Callable[[object], None],
        failed: Callable[[Exception], None] | None = None,
        progress: Callable[[object], None] | None = None,
    ) -> None:
        relay = _Relay()
        self._relays.add(relay)

        def finish(callback: Callable[[Any], None]) -> Callable[[object], None]:
            def deliver(value: object) -> None:
                self._relays.discard(relay)
                callback(value)

            return deliver

        relay.succeeded.connect(finish(done))
        relay.failed.connect(finish(failed or self._unexpected))
        if progress is not None:
            relay.progressed.connect(progress)
        self.pool.start(_Job(fn, relay))

    @Slot(object)
    def _unexpected(self, error: object) -> None:
        self.check_list.setText(f"The checks failed: {_html(str(error))}")
        self.recheck.setEnabled(True)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self.results:
            self.run_checks()


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
