"""The volumes page: every volume, the containers using it and its size; remove, prune.

Refreshed on volume events and on the container events that change who uses a volume
(create, destroy), not on every start and stop: the size comes from /system/df, which
measures the volumes on disk and is the expensive part of a refresh.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import quote

from app.engine_client import EngineClient, EngineError, NotFound
from app.gui.models.container_row import human_bytes
from app.gui.models.volumes import COLUMNS, VolumeRow, volume_rows
from app.gui.pages.listing import ListPage, set_widths, shown_names

USER_CHANGES = {"create", "destroy"}  # container events that change a volume's users


class VolumesPage(ListPage):
    title = "Volumes"
    icon_name = "volumes"
    shortcut = "Ctrl+3"
    noun = "volumes"
    empty_hint = "Create one with  docker volume create data,  or  docker run -v data:/data …"
    event_names = ("volume", "container")

    def __init__(self) -> None:
        super().__init__(COLUMNS, lambda r: r.name)
        set_widths(self.view, [220, 80, 240, 100, 300])
        # Seams the tests replace: the remove question, and prune's (answer, all volumes).
        self.ask_remove = self._ask_remove
        self.ask_prune = self._ask_prune
        self.add_action("Remove", "Remove the selected volumes", "Del", self.remove_selected, bool)
        self.add_action("Prune…", "Remove unused volumes and show the space freed", "", self.prune)

    def fetch(self, client: EngineClient) -> list[Any]:
        volumes = client.get("/volumes")
        containers = client.get("/containers/json", {"all": True})
        df = None
        with contextlib.suppress(EngineError, OSError):  # sizes are a bonus, not the list
            df = client.get("/system/df")
        return volume_rows(volumes, containers, df)

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("Type") == "container" and event.get("Action") not in USER_CHANGES:
            return
        super().on_event(event)

    # -- remove --------------------------------------------------------------------------
    def remove_selected(self) -> None:
        rows: list[VolumeRow] = self.selected_rows()
        if not rows or not self.ask_remove(rows):
            return
        names = [r.name for r in rows]
        self.run_action(
            f"remove {shown_names([r.short_name for r in rows])}",
            lambda c: _remove(c, names),
            lambda removed: f"Removed {shown_names([n[:12] for n in removed])}",
        )

    def _ask_remove(self, rows: list[VolumeRow]) -> bool:
        in_use = [r.short_name for r in rows if r.users]
        text = f"Remove {shown_names([r.short_name for r in rows])}? Its data is deleted."
        if in_use:
            text += f"\n\n{shown_names(in_use)} is used by a container and will be refused."
        return self.confirm("Remove volumes", text)

    # -- prune ---------------------------------------------------------------------------
    def prune(self) -> None:
        ok, everything = self.ask_prune()
        if not ok:
            return
        params = {"filters": json.dumps({"all": ["true"]})} if everything else None
        self.run_action(
            "prune the volumes", lambda c: c.post("/volumes/prune", params), _pruned_text
        )

    def _ask_prune(self) -> tuple[bool, bool]:
        return self.ask_with_option(
            "Prune volumes",
            "Remove anonymous volumes that no container uses? Their data is deleted.",
            "Also remove named volumes that no container uses",
        )


def _remove(client: EngineClient, names: list[str]) -> list[str]:
    removed = []
    for name in names:
        with contextlib.suppress(NotFound):  # gone already: what was asked
            client.delete(f"/volumes/{quote(name, safe='')}")
        removed.append(name)
    return removed


def _pruned_text(reply: dict[str, Any] | None) -> str:
    reply = reply or {}
    deleted = reply.get("VolumesDeleted") or []
    freed = human_bytes(int(reply.get("SpaceReclaimed") or 0))
    if not deleted:
        return f"Nothing to prune · {freed} freed"
    return f"Pruned {len(deleted)} volume{'s' if len(deleted) != 1 else ''} · {freed} freed"
