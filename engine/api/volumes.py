"""Volume routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.api import schema
from engine.api.http import Reply, Request, Router, filter_flag
from engine.containers.filters import has_label

if TYPE_CHECKING:
    from engine.daemon import Daemon


def register(router: Router, d: Daemon) -> None:
    users = d.containers.volume_users

    def list_(req: Request) -> Reply:
        flt = schema.filters(req.json_arg("filters"), ("dangling", "driver", "label", "name"))
        vols = d.volumes.list()
        names = flt.get("name") or []
        if names:
            vols = [v for v in vols if any(n in v["Name"] for n in names)]
        drivers = flt.get("driver") or []
        if drivers:
            vols = [v for v in vols if v["Driver"] in drivers]
        for spec in flt.get("label") or []:
            vols = [v for v in vols if has_label(v["Labels"], spec)]
        if "dangling" in flt:
            dangling = filter_flag(flt, "dangling", False)
            vols = [v for v in vols if (not users(v["Name"])) == dangling]
        return Reply(200, {"Volumes": vols, "Warnings": None})

    def create(req: Request) -> Reply:
        body = req.json_object()
        schema.check_volume_create(body)
        view = d.volumes.create(
            str(body.get("Name") or ""),
            str(body.get("Driver") or "local"),
            body.get("Labels") or {},
            body.get("DriverOpts") or {},
        )
        d.events.publish("volume", "create", view["Name"], {"driver": "local"})
        return Reply(201, view)

    def inspect(req: Request) -> Reply:
        return Reply(200, d.volumes.inspect(req.params["name"]))

    def remove(req: Request) -> Reply:
        d.volumes.remove(req.params["name"], users, req.flag("force"))
        d.events.publish("volume", "destroy", req.params["name"], {"driver": "local"})
        return Reply(204)

    def prune(req: Request) -> Reply:
        flt = schema.filters(req.json_arg("filters"), ("all", "label"))
        all_volumes = filter_flag(flt, "all", False)
        labels = flt.get("label") or []
        return Reply(
            200,
            d.volumes.prune(
                users, all_volumes, lambda have: all(has_label(have, s) for s in labels)
            ),
        )

    router.add("GET", "/volumes", list_)
    router.add("POST", "/volumes/create", create)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)
