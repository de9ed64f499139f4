"""The tray (menu-bar) icon: machine state, a menu, and notifications.

The menu is rebuilt each time it opens (`aboutToShow`), from state the tray keeps current
through events: which containers run (for their Stop and Logs entries) and the machine's
state (the icon). It never asks the engine while the menu opens, so it opens at once.
Notifications: a container that exits with a non-zero code that nobody asked to stop (a
`kill` event, from docker stop or kill, comes before such a `die`), and a machine that fails
to start. Where the platform has no tray (offscreen, a bare X server) the menu and its
actions still exist, and closing the window quits instead of hiding.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app.gui import prefs
from app.gui.context import AppContext
from app.gui.icons import state_icon
from app.gui.machine_control import EngineConnection, MachineController, MachineState
from app.gui.window import MainWindow

MENU_CONTAINERS = 15  # more than this and the menu offers the dashboard instead


class Tray(QObject):
    notified = Signal(str, str)  # title, text: every notification, shown or not
    quit_requested = Signal()

    def __init__(self, ctx: AppContext, window: MainWindow) -> None:
        super().__init__()
        self.ctx = ctx
        self.window = window
        self.machine: MachineController = EngineConnection(ctx)
        self.running: dict[str, str] = {}  # id -> name of the running containers
        self._killed: set[str] = set()
        self.icon = QSystemTrayIcon()
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        window.tray_available = self.available
        ctx.events.connected.connect(self._load_running)
        ctx.events.container.connect(self.on_event)
        self._watch(self.machine)
        ctx.machine_changed.connect(self._offered)
        if ctx.machine is not None:
            self._offered(ctx.machine)
        self._show_state()
        self.rebuild()
        if self.available:
            self.icon.show()

    def set_machine(self, machine: MachineController) -> None:
        """The machine page's controller replaces the engine-connection stand-in."""
        self.machine = machine
        self._watch(machine)
        self._show_state()

    def _offered(self, controller: object) -> None:
        if isinstance(controller, MachineController):
            self.set_machine(controller)

    # -- the menu ----------------------------------------------------------------------

    def rebuild(self) -> None:
        m = self.menu
        m.clear()
        state = self.machine.state()
        status = m.addAction(f"Dockyard: {self.machine.name} {state}")
        status.setEnabled(False)
        start = m.addAction("Start machine", self.machine.start)
        stop = m.addAction("Stop machine", self.machine.stop)
        controllable = self.machine.can_control()
        start.setEnabled(controllable and state in (MachineState.STOPPED, MachineState.ERROR))
        stop.setEnabled(controllable and state in (MachineState.RUNNING, MachineState.STARTING))
        m.addAction("Open Dashboard", self.open_dashboard)
        m.addSeparator()
        names = sorted(self.running.items(), key=lambda kv: kv[1])
        if not names:
            m.addAction("No running containers").setEnabled(False)
        for cid, name in names[:MENU_CONTAINERS]:
            sub = m.addMenu(name)
            sub.addAction("Stop", partial(self.stop_container, cid))
            sub.addAction("Logs", partial(self.show_logs, cid))
        if len(names) > MENU_CONTAINERS:
            more = f"{len(names) - MENU_CONTAINERS} more…"
            m.addAction(more, self.open_dashboard)
        m.addSeparator()
        m.addAction("Quit Dockyard", self.quit_requested.emit)

    def action(self, text: str) -> QAction | None:
        """A menu entry by its text (a container's entries: "name/Stop", "name/Logs")."""
        head, _, rest = text.partition("/")
        for act in self.menu.actions():
            if act.text() == head:
                if not rest:
                    return act
                sub = act.menu()
                if isinstance(sub, QMenu):
                    return next((a for a in sub.actions() if a.text() == rest), None)
        return None

    # -- what the entries do -----------------------------------------------------------

    def open_dashboard(self) -> None:
        self.window.bring_to_front()

    def stop_container(self, cid: str) -> None:
        self._killed.add(cid)
        name = self.running.get(cid, cid[:12])
        self.ctx.call(
            "POST",
            f"/containers/{cid}/stop",
            on_error=lambda e: self.notify("Could not stop " + name, str(e)),
        )

    def show_logs(self, cid: str) -> None:
        self.window.bring_to_front()
        self.ctx.page_requested.emit("Containers")
        self.ctx.open_logs(cid)

    def notify(self, title: str, text: str) -> None:
        self.notified.emit(title, text)
        if self.available and self.icon.supportsMessages():
            self.icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Warning, 8000)

    # -- keeping current ---------------------------------------------------------------

    def on_event(self, ev: dict[str, Any]) -> None:
        action = str(ev.get("Action", "")).split(":")[0]
        actor = ev.get("Actor") or {}
        cid, attrs = str(actor.get("ID", "")), actor.get("Attributes") or {}
        name = str(attrs.get("name", cid[:12]))
        if action in ("start", "unpause", "restart", "rename") and (
            action != "rename" or cid in self.running
        ):
            self.running[cid] = name
        elif action == "kill":
            self._killed.add(cid)
        elif action == "die":
            self.running.pop(cid, None)
            code = str(attrs.get("exitCode", "0"))
            asked = cid in self._killed
            self._killed.discard(cid)
            wanted = self.ctx.settings.value(prefs.NOTIFY_EXITS, True, type=bool)
            if code != "0" and not asked and wanted:
                self.notify(f"{name} exited with code {code}", "Open its logs to see why.")
        elif action == "destroy":
            self.running.pop(cid, None)
            self._killed.discard(cid)

    def _load_running(self) -> None:
        def loaded(docs: list[dict[str, Any]]) -> None:
            self.running = {
                str(d["Id"]): str((d.get("Names") or ["/?"])[0]).lstrip("/") for d in docs
            }

        self.ctx.call("GET", "/containers/json", on_done=loaded)

    def _watch(self, machine: MachineController) -> None:
        machine.state_changed.connect(lambda _s: self._show_state())
        machine.start_failed.connect(
            lambda message: self.notify(f"The {machine.name} machine did not start", message)
        )

    def _show_state(self) -> None:
        state = self.machine.state()
        self.icon.setIcon(state_icon(str(state)))
        self.icon.setToolTip(f"Dockyard — {self.machine.name} {state}")

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            if self.window.isVisible() and self.window.isActiveWindow():
                self.window.hide()
            else:
                self.window.bring_to_front()

    def hide(self) -> None:
        self.icon.hide()
