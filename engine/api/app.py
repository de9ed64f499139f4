"""Assemble the router from each resource's routes."""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from engine.api import containers, exec, networks, system, volumes
from engine.api.http import Router

if TYPE_CHECKING:
    from engine.daemon import Daemon

# Imported on the first request under their paths, not at engine start. The builder
# (engine.build, some 25 modules), the registry client with urllib.request, and image
# archives are a large share of the engine's import time, which under an emulated guest CPU
# is seconds of the wait for the first `docker ps`; none of them is needed to answer it.
LAZY_ROUTES: dict[str, tuple[str, ...]] = {
    "engine.api.images": ("/images",),
    "engine.api.auth": ("/auth",),
    "engine.api.build": ("/build",),
}


def build_router(d: Daemon) -> Router:
    opts = getattr(d, "opts", None)  # stand-in daemons in tests may have no options
    router = Router(str(getattr(opts, "root", "")))
    for module in (system, containers, exec, volumes, networks):
        module.register(router, d)
    for name, prefixes in LAZY_ROUTES.items():
        router.add_lazy(prefixes, functools.partial(_register, name, d))
    return router


def _register(module_name: str, d: Daemon, router: Router) -> None:
    importlib.import_module(module_name).register(router, d)
