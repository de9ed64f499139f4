"""POST /auth: `docker login` asks the engine whether a registry accepts the credentials."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.api.http import Reply, Request, Router
from engine.images import login
from engine.images.registry import RegistryUnreachable

if TYPE_CHECKING:
    from engine.daemon import Daemon


def register(router: Router, d: Daemon) -> None:
    def auth(req: Request) -> Reply:
        try:
            answer = login.login(req.json_object(), d.opts.insecure_registries)
        except RegistryUnreachable as exc:
            raise RegistryUnreachable(
                exc.message + "; check the address, or that the registry is running"
            ) from None
        return Reply(200, answer)

    router.add("POST", "/auth", auth)
