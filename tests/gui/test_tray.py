"""Acceptance 1 (tray): the tray menu's actions and notifications against a real engine.

Offscreen Qt has no system tray, so the menu's QActions are triggered directly; the last
test runs the app under Xvfb with a tray host (trayer), where the icon really docks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from app.gui import prefs
from app.gui.context import AppContext
from app.gui.machine_control import MachineController, MachineState
from app.gui.pages.containers import ContainersPage
from app.gui.tray import Tray
from app.gui.window import MainWindow
from tests.engine_process import EngineProcess
from tests.gui.conftest import WAIT_MS

LOOP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tray(qtbot: QtBot, ctx: AppContext) -> Iterator[Tray]:
    window = MainWindow(ctx, pages=[ContainersPage()])
    qtbot.addWidget(window)
    t = Tray(ctx, window)
    with qtbot.waitSignal(ctx.events.connected, timeout=WAIT_MS):
        ctx.start()
    try:
        yield t
    finally:
        t.hide()
        window.shutdown()


def labels(t: Tray) -> list[str]:
    t.rebuild()
    return [a.text() for a in t.menu.actions() if not a.isSeparator()]


def test_the_menu_lists_running_containers_and_stops_one(
    qtbot: QtBot, tray: Tray, gui_engine: EngineProcess
) -> None:
    qtbot.waitUntil(lambda: "No running containers" in labels(tray), timeout=WAIT_MS)
    cid = gui_engine.docker("run", "-d", "--name", "api", "busybox", *LOOP).stdout.strip()
    qtbot.waitUntil(lambda: "api" in labels(tray), timeout=WAIT_MS)
    assert tray.machine.state() == MachineState.RUNNING
    assert labels(tray)[0] == "Dockyard: engine running"
    stop = tray.action("api/Stop")
    assert stop is not None
    stop.trigger()
    qtbot.waitUntil(lambda: "api" not in labels(tray), timeout=WAIT_MS)
    assert gui_engine.api("GET", f"/containers/{cid}/json")["State"]["Status"] == "exited"


def test_logs_opens_the_dashboard_on_the_container(
    qtbot: QtBot, tray: Tray, ctx: AppContext, gui_engine: EngineProcess
) -> None:
    cid = gui_engine.docker("run", "-d", "--name", "lg", "busybox", *LOOP).stdout.strip()
    qtbot.waitUntil(lambda: "lg" in labels(tray), timeout=WAIT_MS)
    logs = tray.action("lg/Logs")
    assert logs is not None
    with qtbot.waitSignal(ctx.logs_requested, timeout=WAIT_MS) as asked:
        logs.trigger()
    assert asked.args == [cid]
    assert tray.window.isVisible()
    tray.window.hide()
    dashboard = tray.action("Open Dashboard")
    assert dashboard is not None
    dashboard.trigger()
    assert tray.window.isVisible()


def test_a_non_zero_exit_is_notified_and_a_requested_stop_is_not(
    qtbot: QtBot, tray: Tray, ctx: AppContext, gui_engine: EngineProcess
) -> None:
    seen: list[tuple[str, str]] = []
    tray.notified.connect(lambda title, text: seen.append((title, text)))
    with qtbot.waitSignal(tray.notified, timeout=WAIT_MS):
        gui_engine.docker("run", "-d", "--name", "crash", "busybox", "sh", "-c", "exit 3")
    assert seen[0][0] == "crash exited with code 3"
    gui_engine.docker("run", "-d", "--name", "sleeper", "busybox", "sleep", "100")
    qtbot.waitUntil(lambda: "sleeper" in labels(tray), timeout=WAIT_MS)
    gui_engine.docker("stop", "-t", "0", "sleeper")  # exit 137, but asked for
    gui_engine.docker("run", "-d", "--name", "ok", "busybox", "true")
    gui_engine.docker("wait", "ok")
    qtbot.waitUntil(lambda: "sleeper" not in labels(tray), timeout=WAIT_MS)
    ctx.settings.setValue(prefs.NOTIFY_EXITS, False)
    gui_engine.docker("run", "-d", "--name", "quiet", "busybox", "sh", "-c", "exit 4")
    gui_engine.docker("wait", "quiet", check=False)
    gui_engine.docker("run", "--rm", "busybox", "true")  # an event after quiet's die
    qtbot.wait(200)
    assert [title for title, _ in seen] == ["crash exited with code 3"]


class FailingMachine(MachineController):
    """A controller whose start fails, as the machine page's would on a broken image."""

    name = "dockyard"

    def __init__(self) -> None:
        super().__init__()
        self._state = MachineState.STOPPED

    def state(self) -> MachineState:
        return self._state

    def can_control(self) -> bool:
        return True

    def start(self) -> None:
        self._state = MachineState.ERROR
        self.state_changed.emit(str(self._state))
        self.start_failed.emit("stage boot: the kernel did not start (hint: rebuild the image)")


def test_machine_controls_state_icon_and_start_failure(
    qtbot: QtBot, tray: Tray, ctx: AppContext
) -> None:
    start = tray.action("Start machine")
    assert start is not None and not start.isEnabled()  # the engine alone: nothing to start
    ctx.set_machine(FailingMachine())  # what the machine page does
    tray.rebuild()  # what opening the menu does
    start = tray.action("Start machine")
    stop = tray.action("Stop machine")
    assert start is not None and start.isEnabled() and stop is not None and not stop.isEnabled()
    with qtbot.waitSignal(tray.notified, timeout=WAIT_MS) as note:
        start.trigger()
    assert note.args[0] == "The dockyard machine did not start"
    assert "did not start" in note.args[1]
    assert tray.icon.toolTip() == "Dockyard — dockyard error"
    assert labels(tray)[0] == "Dockyard: dockyard error"


def test_engine_going_away_shows_stopped_and_quit_quits(
    qtbot: QtBot, tray: Tray, ctx: AppContext, gui_engine: EngineProcess
) -> None:
    with qtbot.waitSignal(ctx.events.disconnected, timeout=WAIT_MS):
        gui_engine.stop()
    assert tray.machine.state() == MachineState.STOPPED
    assert tray.window.banner.isVisibleTo(tray.window)
    quit_action = tray.action("Quit Dockyard")
    assert quit_action is not None
    with qtbot.waitSignal(tray.quit_requested, timeout=WAIT_MS):
        quit_action.trigger()


def test_closing_the_window_hides_it_only_when_a_tray_holds_the_app(
    qtbot: QtBot, tray: Tray, ctx: AppContext
) -> None:
    window = tray.window
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen
    window.show()
    with qtbot.waitSignal(window.quit_requested, timeout=WAIT_MS):
        window.close()
    window.tray_available = True
    window.show()
    window.close()
    assert not window.isVisible()
    tray.open_dashboard()
    assert window.isVisible()


XVFB, TRAYER = shutil.which("Xvfb"), shutil.which("trayer")


@pytest.mark.skipif(not (XVFB and TRAYER), reason="needs Xvfb and trayer (scripts/install_deps.sh)")
def test_under_xvfb_the_icon_docks_in_a_real_tray(
    gui_engine: EngineProcess, tmp_path: Path
) -> None:
    read_end, write_end = os.pipe()  # Xvfb picks a free display and writes its number here
    xvfb = subprocess.Popen(
        [
            str(XVFB),
            "-displayfd",
            str(write_end),
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write_end,),
    )
    os.close(write_end)
    host = None
    try:
        display = ":" + read_display(read_end)
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        env["XDG_CONFIG_HOME"] = str(tmp_path)
        host = subprocess.Popen([str(TRAYER), "--edge", "top"], env=env)
        probe = subprocess.run(
            [sys.executable, "-c", TRAY_PROBE, gui_engine.host],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.split() == ["available", "visible", "running"], probe.stdout
    finally:
        for proc in (host, xvfb):
            if proc is not None:
                proc.terminate()
                proc.wait(10)


def read_display(fd: int) -> str:
    """The display number Xvfb writes once it accepts connections (EOF: it failed)."""
    with os.fdopen(fd, "rb") as pipe:
        number = pipe.readline().decode().strip()
    assert number.isdigit(), "Xvfb did not start"
    return number


TRAY_PROBE = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QSystemTrayIcon
app = QApplication([])
from app.gui.context import AppContext
from app.gui.tray import Tray
from app.gui.window import MainWindow
ctx = AppContext(host=sys.argv[1])
window = MainWindow(ctx, pages=[])
for _ in range(100):
    if QSystemTrayIcon.isSystemTrayAvailable():
        break
    app.processEvents()
    QTimer.singleShot(50, app.quit); app.exec()
tray = Tray(ctx, window)
ctx.events.connected.connect(app.quit)
ctx.start()
QTimer.singleShot(10000, app.quit)
app.exec()
print("available" if tray.available else "unavailable")
print("visible" if tray.icon.isVisible() else "hidden")
print(tray.machine.state())
tray.hide(); ctx.close()
"""
