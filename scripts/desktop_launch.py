"""The desktop half of `make run`: once the engine answers, the app is launched against it.

With a display ($DISPLAY or $WAYLAND_DISPLAY) the app opens there, as a person would open
it. Without one (a server, CI) it runs under a private Xvfb with the real xcb platform (or
offscreen when Xvfb is missing) and saves a screenshot to ./screenshots/ once its lists
have loaded, so a headless `make run` still shows what the app shows. RUN_ONCE=1 exits after
that screenshot (CI); otherwise everything keeps running until Ctrl-C. Xvfb and the app are
stopped by PID on the way out.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "screenshots"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.xvfb import stop, xvfb  # noqa: E402


def has_display(env: dict[str, str]) -> bool:
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


@contextlib.contextmanager
def desktop(host: str, run_once: bool) -> Iterator[subprocess.Popen[bytes]]:
    """The app on `host`, with a screenshot when there is no display (or when run_once)."""
    env = dict(os.environ)
    argv = [sys.executable, "-m", "app.gui.app", "-H", host]
    with contextlib.ExitStack() as stack:
        headless = not has_display(env)
        if headless:
            display = stack.enter_context(xvfb())
            if display:
                env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")
            else:
                env["QT_QPA_PLATFORM"] = "offscreen"
        if headless or run_once:
            SHOTS.mkdir(exist_ok=True)
            shot = SHOTS / f"dockyard-{time.strftime('%Y%m%d-%H%M%S')}.png"
            argv += ["--screenshot", str(shot)] + ([] if run_once else ["--stay"])
            where = f"no display, so {env.get('DISPLAY') or 'offscreen'}; " if headless else ""
            print(f"Desktop app starting ({where}screenshot: {shot})", flush=True)
        proc = subprocess.Popen(argv, cwd=REPO, env=env)
        stack.callback(stop, proc)
        yield proc
