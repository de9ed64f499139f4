"""The images page: every image by tag, pull with per-layer progress, remove, prune.

Remove asks first and offers force (an image used by a stopped container, or tagged in
several repositories, needs it, as with `docker rmi -f`). Prune removes dangling images by
default, or every image no container uses when asked, and says how much space it freed.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import quote

from app.engine_client import EngineClient, NotFound
from app.gui.models.container_row import human_bytes
from app.gui.models.images import COLUMNS, ImageRow, image_rows
from app.gui.pages.listing import ListPage, set_widths, shown_names
from app.gui.views.pull_dialog import PullDialog


class ImagesPage(ListPage):
    title = "Images"
    icon_name = "images"
    shortcut = "Ctrl+2"
    noun = "images"
    empty_hint = "Pull one with the Pull button, or run  docker pull alpine"
    event_names = ("image",)

    def __init__(self) -> None:
        super().__init__(COLUMNS, lambda r: r.key)
        set_widths(self.view, [260, 120, 120, 100, 140])
        self.pull_dialog: PullDialog | None = None
        # Seams the tests replace: the remove question (answer, force) and prune's (answer, all).
        self.ask_remove = self._ask_remove
        self.ask_prune = self._ask_prune
        self.add_action("Pull…", "Pull an image from a registry", "Ctrl+P", self._pull_clicked)
        self.add_action("Remove", "Remove the selected images", "Del", self.remove_selected, bool)
        self.add_action("Prune…", "Remove unused images and show the space freed", "", self.prune)

    def fetch(self, client: EngineClient) -> list[Any]:
        return image_rows(client.get("/images/json"))

    # -- pull ----------------------------------------------------------------------------
    def _pull_clicked(self) -> None:
        self.open_pull()

    def open_pull(self, image: str = "") -> PullDialog:
        """Show the pull dialog (one at a time); `image` pre-fills it."""
        if self.pull_dialog is None:
            self.pull_dialog = PullDialog(self.ctx.client, image, self)
            self.pull_dialog.pulled.connect(self._pulled)
        elif image and not self.pull_dialog.running:
            self.pull_dialog.image_box.setText(image)
        self.pull_dialog.show()
        self.pull_dialog.raise_()
        return self.pull_dialog

    def _pulled(self, image: str) -> None:
        self.notice.setText(f"Pulled {image}")
        self.refresh()

    # -- remove --------------------------------------------------------------------------
    def remove_selected(self) -> None:
        rows: list[ImageRow] = self.selected_rows()
        if not rows:
            return
        ok, force = self.ask_remove([r.name for r in rows])
        if not ok:
            return
        refs = list(dict.fromkeys(r.ref for r in rows))
        self.run_action(
            f"remove {shown_names(refs)}",
            lambda c: _remove(c, refs, force),
            lambda removed: f"Removed {shown_names(removed)}",
        )

    def _ask_remove(self, names: list[str]) -> tuple[bool, bool]:
        return self.ask_with_option(
            "Remove images",
            f"Remove {shown_names(names)}?",
            "Force (also untag it everywhere, even if a stopped container uses it)",
            "An image a container uses cannot be removed without force.",
        )

    # -- prune ---------------------------------------------------------------------------
    def prune(self) -> None:
        ok, everything = self.ask_prune()
        if not ok:
            return
        filters = json.dumps({"dangling": ["false" if everything else "true"]})
        self.run_action(
            "prune the images",
            lambda c: c.post("/images/prune", {"filters": filters}),
            _pruned_text,
        )

    def _ask_prune(self) -> tuple[bool, bool]:
        return self.ask_with_option(
            "Prune images",
            "Remove dangling images (untagged and unused)?",
            "Also remove every tagged image that no container uses",
        )

    def shutdown(self) -> None:
        super().shutdown()
        if self.pull_dialog is not None:
            self.pull_dialog.cancel()


def _remove(client: EngineClient, refs: list[str], force: bool) -> list[str]:
    """Remove each ref; stop at the first refusal (its message says why) after the others
    that went through, so the refresh shows what is left."""
    removed = []
    for ref in refs:
        with contextlib.suppress(NotFound):  # gone already: what was asked
            client.delete(f"/images/{quote(ref, safe='')}", {"force": force})
        removed.append(ref)
    return removed


def _pruned_text(reply: dict[str, Any] | None) -> str:
    """ "Pruned: 2 untagged, 5 deleted · 12.3 MiB freed" from the prune reply."""
    reply = reply or {}
    records = reply.get("ImagesDeleted") or []
    untagged = sum(1 for d in records if d.get("Untagged"))
    deleted = sum(1 for d in records if d.get("Deleted"))
    freed = human_bytes(int(reply.get("SpaceReclaimed") or 0))
    if not records:
        return f"Nothing to prune · {freed} freed"
    return f"Pruned: {untagged} untagged, {deleted} deleted · {freed} freed"
