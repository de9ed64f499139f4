"""Every QSettings key the app uses, named once, with its meaning."""

from __future__ import annotations

HOST = "engine/host"  # the Docker-API address to connect to (unix://, tcp://, ssh://)
CONTEXT = "engine/context"  # the docker context chosen instead of an address (wins over HOST)
THEME = "ui/theme"  # "system" (follow the OS), "light" or "dark"
CLOSE_TO_TRAY = "ui/close_to_tray"  # closing the window keeps the app in the tray
NOTIFY_EXITS = "ui/notify_exits"  # notify when a container exits with a non-zero code
GEOMETRY = "ui/geometry"  # the main window's size and place
MACHINE = "machine/name"  # the machine the machine page (and the tray) controls
FIRSTRUN_DONE = "ui/firstrun_done"  # the first-run wizard was shown once (it opens by itself)
