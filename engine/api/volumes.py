"""Volume routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.api.http import Reply, Request, Router, filter_flag
from engine.errors import InvalidParameter

if TYPE_CHECKING:
    from engine.daemon import Daemon


def register(router: Router, d: Daemon) -> None:
    users = d.containers.volume_users

    def list_(req: Request) -> Reply:
        flt = req.json_arg("filters") or {}
        if not isinstance(flt, dict):
            raise InvalidParameter("filters must be a JSON object")
        vols = d.volumes.list()
        names = flt.get("name") or []
        if names:
            vols = [v for v in vols if any(n in v["Name"] for n in names)]
        if "dangling" in flt:
            dangling = filter_flag(flt, "dangling", False)
            vols = [v for v in vols if (not users(v["Name"])) == dangling]
        return Reply(200, {"Volumes": vols, "Warnings": None})

    def create(req: Request) -> Reply:
        body = req.json_object()
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
        flt = req.json_arg("filters") or {}
        all_volumes = filter_flag(flt, "all", False)
        return Reply(200, d.volumes.prune(users, all_volumes))

    router.add("GET", "/volumes", list_)
    router.add("POST", "/volumes/create", create)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)
