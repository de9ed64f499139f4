"""`dockyard-desktop`: the QApplication, the theme, the main window and the tray.

Which engine: `--host`, else the saved setting (a docker context or an address), else the
docker CLI's choice (DOCKER_HOST, DOCKER_CONTEXT, its current context), else the default
socket (the `dockyard` machine's). With no display at all, Qt is told to run offscreen rather than
abort, so `dockyard-desktop --screenshot` works on a headless machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from app import applog, qemu_path
from app.gui import branding, prefs, theme
from app.gui.context import AppContext
from app.gui.tray import Tray
from app.gui.views.firstrun import FirstRunDialog
from app.gui.window import MainWindow
from app.version import version
from machine import config, paths

SHOT_SETTLE_MS = 1000  # after connecting: lists loaded and laid out
SHOT_FALLBACK_MS = 8000
READY_MARKER = "dockyard-desktop: ready"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dockyard-desktop", description="Dockyard's desktop app")
    p.add_argument(
        "-H",
        "--host",
        help="engine address (unix://PATH, tcp://HOST:PORT, ssh://USER@HOST); saved for next time",
    )
    p.add_argument("--page", help="open on this page (Containers, Images, ...)")
    p.add_argument("--theme", choices=theme.THEMES, help="override the saved theme")
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="save a screenshot of the window once it has loaded, then quit",
    )
    p.add_argument(
        "--stay",
        action="store_true",
        help="with --screenshot: keep running after saving it (make run without a display)",
    )
    p.add_argument(
        "--first-run",
        action="store_true",
        help="open the first-run setup even if it was done (it opens by itself on a new install)",
    )
    p.add_argument(
        "--ready-marker",
        action="store_true",
        help=f"print {READY_MARKER!r} once the window is up (packaging tests, launchers)",
    )
    return p.parse_args(list(argv))


def make_app(argv: Sequence[str]) -> QApplication:
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(list(argv))
    app.setOrganizationName("Dockyard")
    app.setApplicationName("dockyard-desktop")
    app.setApplicationDisplayName("Dockyard")
    app.setWindowIcon(branding.app_icon())
    return app


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    qemu_path.extend_path()  # a Finder-started app has launchd's PATH: no QEMU on it
    log_file = applog.setup("dockyard-desktop")
    logging.getLogger(__name__).info("dockyard-desktop %s starting (log %s)", version(), log_file)
    app = make_app([sys.argv[0]])
    ctx = AppContext(host=args.host)
    if args.host:
        ctx.settings.setValue(prefs.HOST, args.host)
        ctx.settings.remove(prefs.CONTEXT)  # the address given replaces a chosen context
    theme.apply(app, args.theme or str(ctx.settings.value(prefs.THEME, "system")))
    theme.follow_os(app, lambda: args.theme or str(ctx.settings.value(prefs.THEME, "system")))
    window = MainWindow(ctx)
    tray = Tray(ctx, window)
    app.setQuitOnLastWindowClosed(not tray.available)
    window.quit_requested.connect(app.quit)
    tray.quit_requested.connect(app.quit)
    if args.page:
        window.show_page(args.page)
    window.show()
    ctx.start()
    open_first_run(args, ctx, window)
    if args.ready_marker:  # from the event loop: the window is shown and Qt is running
        QTimer.singleShot(0, lambda: print(READY_MARKER, flush=True))
    if args.screenshot:
        shoot_when_loaded(app, ctx, window, args.screenshot, quit_after=not args.stay)
    signal.signal(signal.SIGINT, lambda *_: app.quit())  # Ctrl+C in the launching terminal
    wake = QTimer(interval=500)  # lets Python see that signal while Qt waits in C++
    wake.timeout.connect(lambda: None)
    wake.start()
    try:
        return app.exec()
    finally:
        tray.hide()
        window.shutdown()
        ctx.close()


def first_run_due(args: argparse.Namespace, settings: QSettings) -> bool:
    """A new install: no machine, no engine chosen, the wizard never shown. Never over a
    screenshot or a launcher's readiness probe."""
    if args.first_run:
        return True
    if args.screenshot or args.ready_marker or settings.value(prefs.FIRSTRUN_DONE, False, bool):
        return False
    saved = settings.value(prefs.HOST, "") or settings.value(prefs.CONTEXT, "")
    explicit = args.host or saved or os.environ.get("DOCKER_HOST")
    explicit = explicit or os.environ.get("DOCKER_CONTEXT")
    return not explicit and not config.names(paths.Host.current())


def open_first_run(
    args: argparse.Namespace, ctx: AppContext, window: MainWindow
) -> FirstRunDialog | None:
    """The wizard over the window, not modal: the app stays usable behind it."""
    if not first_run_due(args, ctx.settings):
        return None
    dialog = FirstRunDialog(window)
    dialog.finished.connect(lambda _r: ctx.settings.setValue(prefs.FIRSTRUN_DONE, True))
    dialog.machine_ready.connect(ctx.set_host)  # the app follows the new machine's engine
    dialog.show()
    return dialog


def shoot_when_loaded(
    app: QApplication, ctx: AppContext, window: MainWindow, path: str, quit_after: bool = True
) -> None:
    """Save the window once the engine answered and the pages had a moment to fill in (or
    after SHOT_FALLBACK_MS, showing the banner, if it never answers), then quit unless told
    to stay; only the first of the two saves."""
    taken = False

    def shoot() -> None:
        nonlocal taken
        if taken:
            return
        taken = True
        window.grab().save(path)
        print(f"screenshot saved to {path}", flush=True)
        if quit_after:
            app.quit()

    ctx.events.connected.connect(lambda: QTimer.singleShot(SHOT_SETTLE_MS, shoot))
    QTimer.singleShot(SHOT_FALLBACK_MS, shoot)


if __name__ == "__main__":
    raise SystemExit(main())
