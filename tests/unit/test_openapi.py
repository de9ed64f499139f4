"""docs/openapi.json describes exactly what the engine serves, and keeps doing so.

The document is written by hand; these tests tie it to the code. They build the
real router (as the daemon does, from engine.api.app.build_router) and compare:
- the (method, path) pairs it serves with the ones documented, both ways;
- each documented query parameter with the string literals of its handler, so a
  parameter the handler does not read cannot be documented;
- the properties of each schema with the literals of the modules that read or
  write those fields (create.py for HostConfig, views.py for inspect ...).
A route, parameter or field added to the engine without the document (or the
reverse) fails here; change both together.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import textwrap
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.api.app import build_router
from engine.api.http import API_VERSION, Router

REPO = Path(__file__).resolve().parents[2]
DOC_PATH = REPO / "docs" / "openapi.json"
METHODS = ("get", "head", "post", "put", "delete", "patch", "options", "trace")
Route = tuple[str, str]  # (METHOD, /path/{param})

# Which modules read (request bodies) or build (replies) the fields of each schema.
# Every schema with properties must be listed: a new schema needs its source named.
SCHEMA_SOURCES: dict[str, tuple[str, ...]] = {
    "ErrorResponse": ("engine.api.http",),
    "IdResponse": ("engine.api.containers",),
    "ProgressMessage": ("engine.images.progress", "engine.api.images"),
    "SystemVersion": ("engine.api.system",),
    "SystemInfo": ("engine.api.system",),
    "EventMessage": ("engine.events",),
    "SystemDataUsage": ("engine.api.system",),
    "ContainerConfig": ("engine.containers.create",),
    "RestartPolicy": ("engine.containers.create",),
    "MountSpec": ("engine.containers.mounts",),
    "HostConfig": (
        "engine.containers.create",
        "engine.containers.mounts",
        "engine.containers.start",  # ConsoleSize, applied at start
        "engine.runtime.init",  # Ulimits entries
        "engine.network.portmap",  # PortBindings entries, PublishAllPorts
    ),
    "ContainerCreateRequest": ("engine.containers.manager", "engine.containers.create"),
    "ContainerCreateResponse": ("engine.api.containers",),
    "ContainerPruneResponse": ("engine.api.containers",),
    "ContainerWaitResponse": ("engine.api.containers",),
    "ContainerState": ("engine.containers.model",),
    "HealthConfig": ("engine.containers.health",),
    "Health": ("engine.containers.health",),
    "MountPoint": ("engine.containers.create",),
    "EndpointSettings": ("engine.containers.views",),
    "NetworkSettings": ("engine.containers.views", "engine.network.portmap"),
    "GraphDriver": ("engine.containers.views", "engine.images.describe"),
    "ContainerInspectResponse": ("engine.containers.views",),
    "ContainerSummary": ("engine.containers.views", "engine.network.portmap"),
    "ContainerTopResponse": ("engine.api.containers",),
    "ContainerStatsResponse": ("engine.api.containers",),
    "ExecConfig": ("engine.execs",),
    "ExecStartConfig": ("engine.api.exec",),
    "ExecInspectResponse": ("engine.execs",),
    "ImageSummary": ("engine.images.describe",),
    "ImageConfig": ("engine.images.describe",),
    "ImageInspect": ("engine.images.describe",),
    "HistoryResponseItem": ("engine.images.describe",),
    "ImageDeleteResponseItem": ("engine.images.store",),
    "ImagePruneResponse": ("engine.images.store",),
    "Volume": ("engine.volumes",),
    "VolumeCreateOptions": ("engine.api.volumes",),
    "VolumeListResponse": ("engine.api.volumes",),
    "VolumePruneResponse": ("engine.volumes",),
    "Network": ("engine.api.networks",),
    "NetworkCreateRequest": ("engine.api.schema",),
    "NetworkCreateResponse": ("engine.api.networks",),
    "NetworkPruneResponse": ("engine.api.networks",),
    "NetworkConnectRequest": ("engine.api.schema",),
    "NetworkDisconnectRequest": ("engine.api.schema",),
    "BuildPruneResponse": ("engine.api.build",),
    "AuthConfig": ("engine.images.auth", "engine.images.login"),
    "AuthResponse": ("engine.images.login",),
}


class _Daemon(SimpleNamespace):
    """Stands in for engine.daemon.Daemon at registration time only.

    register() functions capture the daemon in closures and touch it when a
    request arrives; the few attributes read while registering live here.
    """


def _stand_in() -> Any:
    return _Daemon(containers=SimpleNamespace(volume_users=lambda name: []))


def _pattern_of(regex: re.Pattern[str]) -> str:
    """Invert Router.add: `^/images/(?P<name>.+?)/json$` -> `/images/{name*}/json`."""
    text = regex.pattern.removeprefix("^").removesuffix("$")
    text = re.sub(r"\(\?P<(\w+)>\.\+\?\)", r"{\1*}", text)
    return re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", text)


def _openapi_path(pattern: str) -> str:
    """`{name*}` (a parameter that may hold slashes) is a plain `{name}` in OpenAPI."""
    return pattern.replace("*}", "}")


@cache
def _router() -> Router:
    router = build_router(_stand_in())
    router.load_all()  # the engine imports some route modules on first use; list them all
    return router


def _served() -> dict[Route, Callable[..., Any]]:
    out: dict[Route, Callable[..., Any]] = {}
    for method, regex, handler in _router().routes:
        key = (method, _openapi_path(_pattern_of(regex)))
        assert key not in out, f"route registered twice: {key}"
        out[key] = handler
    return out


@cache
def _doc() -> dict[str, Any]:
    return dict(json.loads(DOC_PATH.read_text()))


def _operations() -> Iterator[tuple[Route, dict[str, Any], dict[str, Any]]]:
    for path, item in _doc()["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield (method.upper(), path), op, item


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = _doc()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _parameters(op: dict[str, Any], item: dict[str, Any]) -> list[dict[str, Any]]:
    return [_resolve(p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]


def _literals(tree: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


@cache
def _module_literals(name: str) -> frozenset[str]:
    """String literals plus keyword names: `event.update(status=...)` also writes a field."""
    tree = ast.parse(inspect.getsource(importlib.import_module(name)))
    keywords = {n.arg for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg}
    return frozenset(_literals(tree) | keywords)


def test_document_has_the_openapi_3_skeleton() -> None:
    doc = _doc()
    assert str(doc["openapi"]).startswith("3.0.")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["paths"]
    for route, op, _ in _operations():
        assert op.get("responses"), f"{route} documents no responses"
        assert op.get("operationId"), f"{route} has no operationId"
    ids = [op["operationId"] for _, op, _ in _operations()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_document_is_valid_openapi() -> None:
    import openapi_spec_validator  # a dev dependency; imported here, as no other test needs it

    openapi_spec_validator.validate(_doc())


def test_document_version_is_the_served_api_version() -> None:
    doc = _doc()
    assert doc["info"]["version"] == API_VERSION
    assert doc["servers"][0]["variables"]["version"]["default"] == API_VERSION


def test_pattern_inversion_round_trips() -> None:
    """Guards _pattern_of against a change in how Router.add writes its regexes."""
    for method, regex, handler in _router().routes:
        again = Router()
        again.add(method, _pattern_of(regex), handler)
        assert again.routes[0][1].pattern == regex.pattern


def test_documented_routes_are_exactly_the_served_routes() -> None:
    served = set(_served())
    documented = {route for route, _, _ in _operations()}
    # HEAD is answered for every GET route; the document may name it where it matters.
    heads = {r for r in documented if r[0] == "HEAD"}
    for _, path in heads:
        assert ("GET", path) in served, f"HEAD {path} documented without a GET route"
    assert sorted(documented - heads - served) == [], "documented but not served"
    assert sorted(served - documented) == [], "served but not documented"


def test_every_route_in_the_document_dispatches_to_its_handler() -> None:
    """A concrete URL built from each documented path reaches the route it documents."""
    served = _served()
    for (method, path), _, _ in _operations():
        url = re.sub(r"\{(\w+)\}", "x", path)
        if path.startswith("/images/{name}"):
            url = path.replace("{name}", "registry.local:5000/team/app:1")
        found = _router().match(method, url)
        assert found is not None, f"{method} {url} does not route"
        key = (method if method != "HEAD" else "GET", path)
        assert found[0] is served[key], f"{method} {url} reaches another handler than {path}"


def test_path_parameters_match_the_path_template() -> None:
    for route, op, item in _operations():
        in_path = set(re.findall(r"\{(\w+)\}", route[1]))
        declared = {p["name"] for p in _parameters(op, item) if p["in"] == "path"}
        assert declared == in_path, f"{route}: path parameters {declared} vs {in_path}"
        for p in _parameters(op, item):
            if p["in"] == "path":
                assert p["required"] is True, f"{route}: path parameter {p['name']} not required"


def test_documented_query_parameters_are_read_by_their_handler() -> None:
    served = _served()
    for (method, path), op, item in _operations():
        if method == "HEAD":
            continue
        handler = served.get((method, path))
        if handler is None:
            continue  # reported by test_documented_routes_are_exactly_the_served_routes
        read = _literals(ast.parse(textwrap.dedent(inspect.getsource(handler))))
        for p in _parameters(op, item):
            if p["in"] == "query":
                assert p["name"] in read, (
                    f"{method} {path}: query parameter {p['name']!r} is documented but "
                    f"{handler.__qualname__} never names it"
                )


def test_documented_headers_are_read_by_the_handler_module() -> None:
    served = _served()
    for (method, path), op, item in _operations():
        for p in _parameters(op, item):
            if p["in"] == "header":
                module = inspect.getmodule(served[(method, path)])
                assert module is not None
                names = {s.lower() for s in _module_literals(module.__name__)}
                assert p["name"].lower() in names, f"{method} {path}: header {p['name']}"


def test_every_operation_documents_a_500_and_errors_use_the_error_schema() -> None:
    error_ref = "#/components/schemas/ErrorResponse"
    for route, op, _ in _operations():
        assert "500" in op["responses"], f"{route}: any handler can fail with a 500"
        for code, resp in op["responses"].items():
            body = _resolve(resp)
            if code.startswith(("4", "5")):
                schema = body["content"]["application/json"]["schema"]
                assert schema == {"$ref": error_ref}, f"{route} {code}: not an ErrorResponse"
            if code == "304":
                assert "content" not in body, f"{route}: a 304 has no body"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves() -> None:
    for target in set(_refs(_doc())):
        assert target.startswith("#/"), f"external reference {target}"
        _resolve({"$ref": target})


def _property_names(schema: dict[str, Any]) -> Iterator[str]:
    """Property names of a schema and of its inline sub-objects (not of referenced ones)."""
    for part in schema.get("allOf", []):
        if "$ref" not in part:
            yield from _property_names(part)
    for name, sub in schema.get("properties", {}).items():
        yield name
        if "$ref" not in sub:
            yield from _property_names(sub)
    items = schema.get("items")
    if isinstance(items, dict) and "$ref" not in items:
        yield from _property_names(items)


def test_schema_fields_are_named_by_the_code_that_reads_or_writes_them() -> None:
    schemas = _doc()["components"]["schemas"]
    for name, schema in schemas.items():
        fields = set(_property_names(schema))
        if not fields:
            continue
        assert name in SCHEMA_SOURCES, f"schema {name}: name its source modules in this test"
        known = set().union(*(_module_literals(m) for m in SCHEMA_SOURCES[name]))
        missing = sorted(fields - known)
        assert missing == [], f"schema {name}: fields {missing} are in no source module"
    stale = sorted(set(SCHEMA_SOURCES) - set(schemas))
    assert stale == [], f"SCHEMA_SOURCES names schemas the document lacks: {stale}"


def test_stand_in_daemon_is_enough_to_register_every_route() -> None:
    """If a register() starts reading the daemon eagerly, this names the attribute."""
    assert len(_router().routes) == len(_served())
