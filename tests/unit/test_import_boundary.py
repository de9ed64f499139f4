"""The engine's start stays light: what `python -m engine serve` imports before it answers
/_ping leaves out the builder, the registry client and the tar/compression stack, which
load on the first request that needs them (engine/api/app.py LAZY_ROUTES, the deferred
imports in engine/images/store.py, engine/network/dnsondemand.py). Under an emulated
guest CPU every module counts.

Checked in a fresh interpreter: this test process has imported half the engine already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.api.app import LAZY_ROUTES, build_router
from engine.api.http import Reply, Request, Router

REPO = Path(__file__).resolve().parents[2]

# Modules the engine must not import at start, each with why it is kept out.
KEPT_OUT = {
    "engine.build": "the builder (some 25 modules), loaded by the first /build",
    "engine.api.build": "its routes load on the first /build",
    "engine.api.images": "its routes load on the first /images request",
    "engine.api.auth": "its route loads on the first /auth",
    "engine.images.pull": "the registry client, needed by a pull only",
    "engine.images.registry": "the registry client, needed by a pull or a login only",
    "engine.images.archive": "docker save/load only",
    "engine.images.unpack": "unpacking a layer (pull, load, build) only",
    "tarfile": "layer tars are read by pulls, loads, builds and docker cp only",
    "gzip": "compressed layers are read by pulls and loads only",
    "urllib.request": "the registry client's HTTP",
    "engine.network.dns": "the embedded DNS server, made for the first container's listener",
    "platform": "a large module for what os.uname() and sys.version_info answer",
    "http.server": "engine/api/httpproto.py parses requests without it",
    "ssl": "http.client's import; the engine speaks TLS only to registries, on a pull",
    "email": "http.client's header parser; engine/api/httpproto.py has its own",
}


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("entry", ["import engine.daemon", "import engine.__main__"])
def test_engine_start_imports_nothing_it_does_not_need(entry: str) -> None:
    loaded = _modules_after(entry)
    wrong = {name: why for name, why in KEPT_OUT.items() if name in loaded}
    assert not wrong, f"imported at engine start (keep them lazy): {wrong}"


def test_building_the_router_keeps_the_lazy_route_modules_unimported() -> None:
    loaded = _modules_after(
        "from types import SimpleNamespace\n"
        "from engine.api.app import build_router\n"
        "build_router(SimpleNamespace(containers=SimpleNamespace(volume_users=list)))"
    )
    assert not set(LAZY_ROUTES) & loaded


def _stand_in() -> Any:
    return SimpleNamespace(containers=SimpleNamespace(volume_users=lambda name: []))


def test_a_lazy_route_is_served_by_its_module_on_the_first_request() -> None:
    router = build_router(_stand_in())
    found = router.match("GET", "/images/json")
    assert found is not None
    assert found[0].__module__ == "engine.api.images"
    found = router.match("POST", "/build/prune")
    assert found is not None
    assert found[0].__module__ == "engine.api.build"


def _ok(req: Request) -> Reply:
    return Reply(200, {})


def test_router_loads_a_lazy_resource_once_and_only_for_its_paths() -> None:
    calls: list[str] = []

    def register(router: Router) -> None:
        calls.append("thing")
        router.add("GET", "/thing/{name}", _ok)

    router = Router()
    router.add("GET", "/other", _ok)
    router.add_lazy(("/thing",), register)
    assert router.match("GET", "/other") is not None
    assert router.match("GET", "/things") is None  # a whole segment, not a string prefix
    assert calls == []
    assert router.match("GET", "/thing/x") is not None
    assert router.match("GET", "/thing/y") is not None
    assert calls == ["thing"]


def test_router_retries_a_lazy_resource_whose_registration_failed() -> None:
    attempts: list[int] = []

    def register(router: Router) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ImportError("first time")
        router.add("GET", "/thing", _ok)

    router = Router()
    router.add_lazy(("/thing",), register)
    with pytest.raises(ImportError):
        router.match("GET", "/thing")
    assert router.match("GET", "/thing") is not None
    router.load_all()
    assert len(attempts) == 2


def test_load_all_registers_every_lazy_resource() -> None:
    router = build_router(_stand_in())
    before = len(router.routes)
    router.load_all()
    modules = {handler.__module__ for _, _, handler in router.routes[before:]}
    assert modules == set(LAZY_ROUTES)
