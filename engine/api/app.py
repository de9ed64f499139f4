"""Assemble the router from each resource's routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.api import auth, build, containers, exec, images, networks, system, volumes
from engine.api.http import Router

if TYPE_CHECKING:
    from engine.daemon import Daemon


def build_router(d: Daemon) -> Router:
    opts = getattr(d, "opts", None)  # stand-in daemons in tests may have no options
    router = Router(str(getattr(opts, "root", "")))
    for module in (system, auth, containers, exec, images, volumes, networks, build):
        module.register(router, d)
    return router
