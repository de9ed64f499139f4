"""The networks page: name, driver, subnet, internal and attached containers; create and
remove. Refreshed on network events (create, destroy, connect, disconnect) and on container
create/destroy, which change the containers column."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote

from app.engine_client import EngineClient, NotFound
from app.gui.models.networks import COLUMNS, NetworkRow, network_rows
from app.gui.pages.listing import ListPage, set_widths, shown_names
from app.gui.views.network_dialog import NetworkDialog

USER_CHANGES = {"create", "destroy"}


def _removable(rows: list[NetworkRow]) -> bool:
    return bool(rows) and not any(r.built_in for r in rows)


class NetworksPage(ListPage):
    title = "Networks"
    icon_name = "networks"
    shortcut = "Ctrl+4"
    noun = "networks"
    empty_hint = "Create one with the Create button, or  docker network create backend"
    event_names = ("network", "container")

    def __init__(self) -> None:
        super().__init__(COLUMNS, lambda r: r.id)
        set_widths(self.view, [180, 80, 160, 70, 260, 120])
        # Seams the tests replace: the create form (its request body, None if cancelled)
        # and the remove question.
        self.ask_create = self._ask_create
        self.ask_remove = self._ask_remove
        self.add_action("Create…", "Create a bridge network", "Ctrl+N", self.create_network)
        self.add_action(
            "Remove",
            "Remove the selected networks (not the built-in ones)",
            "Del",
            self.remove_selected,
            _removable,
        )

    def fetch(self, client: EngineClient) -> list[Any]:
        networks = client.get("/networks")
        containers = client.get("/containers/json", {"all": True})
        return network_rows(networks, containers)

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("Type") == "container" and event.get("Action") not in USER_CHANGES:
            return
        super().on_event(event)

    def create_network(self) -> None:
        body = self.ask_create()
        if body is None:
            return
        name = str(body["Name"])
        self.run_action(
            f"create {name}",
            lambda c: c.post("/networks/create", body=body),
            lambda reply: f"Created {name}" + _warning(reply),
        )

    def _ask_create(self) -> dict[str, Any] | None:
        dialog = NetworkDialog(self)
        return dialog.body if dialog.exec() == NetworkDialog.DialogCode.Accepted else None

    def remove_selected(self) -> None:
        rows: list[NetworkRow] = self.selected_rows()
        if not _removable(rows) or not self.ask_remove([r.name for r in rows]):
            return
        refs = [(r.id, r.name) for r in rows]
        self.run_action(
            f"remove {shown_names([r.name for r in rows])}",
            lambda c: _remove(c, refs),
            lambda removed: f"Removed {shown_names(removed)}",
        )

    def _ask_remove(self, names: list[str]) -> bool:
        return self.confirm(
            "Remove networks",
            f"Remove {shown_names(names)}? A network with containers attached is refused.",
        )


def _remove(client: EngineClient, refs: list[tuple[str, str]]) -> list[str]:
    removed = []
    for ident, name in refs:
        with contextlib.suppress(NotFound):  # gone already: what was asked
            client.delete(f"/networks/{quote(ident, safe='')}")
        removed.append(name)
    return removed


def _warning(reply: Any) -> str:
    warning = str((reply or {}).get("Warning") or "") if isinstance(reply, dict) else ""
    return f" ({warning})" if warning else ""
