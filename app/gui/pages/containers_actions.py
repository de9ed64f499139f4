"""The containers page's actions: their names, shortcuts, and which apply to a selection.

Pure (no widgets), so what is enabled for a selection is a plain test, and the toolbar, the
context menu and the shortcuts all come from this one table.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.gui.models.container_row import ContainerRow


@dataclass(frozen=True)
class ActionSpec:
    key: str
    text: str
    shortcut: str
    tip: str


ACTIONS = (
    ActionSpec("start", "Start", "Ctrl+Shift+S", "Start the selected containers"),
    ActionSpec("stop", "Stop", "Ctrl+Shift+X", "Stop the selected containers"),
    ActionSpec("restart", "Restart", "Ctrl+R", "Restart the selected containers"),
    ActionSpec("pause", "Pause", "Ctrl+Shift+P", "Pause or resume the selected containers"),
    ActionSpec("remove", "Remove", "Del", "Remove the selected containers (asks first)"),
    ActionSpec("logs", "Logs", "Ctrl+L", "Show the logs of the selected container"),
    ActionSpec("terminal", "Terminal", "Ctrl+T", "Open a shell in the selected container"),
    ActionSpec("inspect", "Inspect", "Ctrl+I", "Show the selected container's configuration"),
    ActionSpec("browse", "Open in browser", "Ctrl+O", "Open the first published port"),
)


def enabled_actions(rows: list[ContainerRow]) -> set[str]:
    """The actions that do something for this selection."""
    if not rows:
        return set()
    keys = {"remove"}
    if any(r.state not in ("running", "paused", "restarting") for r in rows):
        keys.add("start")
    if any(r.state in ("running", "paused", "restarting") for r in rows):
        keys |= {"stop", "restart"}
    if any(r.state in ("running", "paused") for r in rows):
        keys.add("pause")
    if len(rows) == 1:
        keys |= {"logs", "inspect"}
        if rows[0].state == "running":
            keys.add("terminal")
    if any(p.url for r in rows for p in r.ports):
        keys.add("browse")
    return keys


def pause_verb(rows: list[ContainerRow]) -> str:
    """ "unpause" when everything selected that is up is paused, else "pause"."""
    up = [r for r in rows if r.state in ("running", "paused")]
    return "unpause" if up and all(r.state == "paused" for r in up) else "pause"


def calls_for(key: str, rows: list[ContainerRow]) -> list[tuple[str, str, dict[str, str]]]:
    """The API calls one action makes: (method, path, params) per container it applies to."""
    if key == "start":
        targets = [r for r in rows if r.state not in ("running", "paused", "restarting")]
        return [("POST", f"/containers/{r.id}/start", {}) for r in targets]
    if key in ("stop", "restart"):
        targets = [r for r in rows if r.state in ("running", "paused", "restarting")]
        return [("POST", f"/containers/{r.id}/{key}", {}) for r in targets]
    if key == "pause":
        verb = pause_verb(rows)
        want = "paused" if verb == "unpause" else "running"
        return [("POST", f"/containers/{r.id}/{verb}", {}) for r in rows if r.state == want]
    if key == "remove":
        return [("DELETE", f"/containers/{r.id}", {"force": "1"}) for r in rows]
    return []
