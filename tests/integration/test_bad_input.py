"""Bad input gets a clear error and loses nothing.

Every case speaks to a live engine (raw HTTP over the unix socket, or the real docker CLI)
and checks three things: Docker's status code, a JSON `{"message": ...}` body whose words
tell the user what went wrong, and that the stored containers, images and volumes are
exactly what they were before the bad request.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.engine_process import EngineProcess, UnixHTTPConnection, api_call

Snapshot = tuple[list[tuple[str, str, str]], list[tuple[str, tuple[str, ...]]], list[str]]


def snapshot(eng: EngineProcess) -> Snapshot:
    """What the engine has stored: containers (id, name, state), images, volume names."""
    _, containers = api_call(eng.socket, "GET", "/containers/json?all=1")
    _, images = api_call(eng.socket, "GET", "/images/json")
    _, volumes = api_call(eng.socket, "GET", "/volumes")
    return (
        sorted((c["Id"], c["Names"][0], c["State"]) for c in containers),
        sorted((i["Id"], tuple(sorted(i["RepoTags"] or []))) for i in images),
        sorted(v["Name"] for v in volumes["Volumes"]),
    )


def raw_request(sock_path: Path, data: bytes, half_close: bool = True) -> tuple[int, Any]:
    """Send bytes as they are (no client-side HTTP rules); parse the one reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(str(sock_path))
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), f"not an HTTP reply: {reply[:200]!r}"
    assert b"content-type: application/json" in head.lower(), head
    return int(status_line.split()[1]), json.loads(body)


def check_error(status: int, body: Any, expected: int, *words: str) -> None:
    assert status == expected, f"expected {expected}, got {status}: {body}"
    assert isinstance(body, dict) and isinstance(body.get("message"), str), body
    message = body["message"]
    assert "Traceback" not in message and "internal error" not in message, message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"


def filters(doc: Any) -> str:
    return quote(json.dumps(doc))


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    """busybox pulled and tagged, plus `solo:1` (the only tag of the multilayer image)
    used by the stopped container `victim`, which also holds volume `held`."""
    e = shared_engine
    e.docker("pull", f"{registry_with_images}/busybox")
    e.docker("tag", f"{registry_with_images}/busybox", "busybox")
    e.docker("pull", f"{registry_with_images}/multilayer")
    e.docker("tag", f"{registry_with_images}/multilayer", "solo:1")
    e.docker("rmi", f"{registry_with_images}/multilayer")
    e.docker("create", "--name", "victim", "-v", "held:/data", "solo:1", "true")
    yield e


@pytest.fixture
def unchanged(eng: EngineProcess) -> Iterator[EngineProcess]:
    """The test's bad input must leave the stored state exactly as it found it."""
    before = snapshot(eng)
    yield eng
    assert snapshot(eng) == before


def _create(extra: dict[str, Any], host_config: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Image": "busybox", "Cmd": ["true"], **extra}
    if host_config is not None:
        body["HostConfig"] = host_config
    return body


# (id, method, path, JSON body, status, words the message must contain)
API_CASES: list[tuple[str, str, str, Any, int, tuple[str, ...]]] = [
    # JSON of the wrong type in a create body
    (
        "memory-string",
        "POST",
        "/containers/create",
        _create({}, {"Memory": "lots"}),
        400,
        ("HostConfig.Memory", "integer", "lots"),
    ),
    (
        "memory-list",
        "POST",
        "/containers/create",
        _create({}, {"Memory": [1]}),
        400,
        ("HostConfig.Memory", "integer"),
    ),
    (
        "memory-negative",
        "POST",
        "/containers/create",
        _create({}, {"Memory": -5}),
        400,
        ("memory",),
    ),
    (
        "memory-too-small",
        "POST",
        "/containers/create",
        _create({}, {"Memory": 1024}),
        400,
        ("Minimum memory limit allowed is 6MB",),
    ),
    (
        "memory-beyond-int64",
        "POST",
        "/containers/create",
        _create({}, {"Memory": 10**30}),
        400,
        ("HostConfig.Memory", "64-bit"),
    ),
    (
        "memory-fraction",
        "POST",
        "/containers/create",
        _create({}, {"Memory": 7.5e6 + 0.5}),
        400,
        ("HostConfig.Memory",),
    ),
    (
        "memory-bool",
        "POST",
        "/containers/create",
        _create({}, {"Memory": True}),
        400,
        ("HostConfig.Memory",),
    ),
    (
        "cmd-number",
        "POST",
        "/containers/create",
        _create({"Cmd": 5}),
        400,
        ("Cmd", "array of strings"),
    ),
    ("cmd-object", "POST", "/containers/create", _create({"Cmd": {"a": 1}}), 400, ("Cmd",)),
    (
        "entrypoint-number",
        "POST",
        "/containers/create",
        _create({"Entrypoint": 5}),
        400,
        ("Entrypoint",),
    ),
    (
        "env-string",
        "POST",
        "/containers/create",
        _create({"Env": "A=B"}),
        400,
        ("Env", "array of strings"),
    ),
    ("env-numbers", "POST", "/containers/create", _create({"Env": [1, 2]}), 400, ("Env[0]",)),
    (
        "env-empty-key",
        "POST",
        "/containers/create",
        _create({"Env": ["=x"]}),
        400,
        ("environment variable",),
    ),
    ("labels-list", "POST", "/containers/create", _create({"Labels": ["a"]}), 400, ("Labels",)),
    ("image-number", "POST", "/containers/create", {"Image": 5}, 400, ("Image", "string")),
    ("image-missing", "POST", "/containers/create", {"Cmd": ["true"]}, 400, ("Image",)),
    (
        "image-uppercase",
        "POST",
        "/containers/create",
        {"Image": "BusyBox"},
        400,
        ("invalid reference format", "lowercase"),
    ),
    (
        "image-bad-digest",
        "POST",
        "/containers/create",
        {"Image": "busybox@sha256:zz"},
        400,
        ("invalid reference format", "digest"),
    ),
    (
        "image-unknown",
        "POST",
        "/containers/create",
        {"Image": "nosuchimage"},
        404,
        ("No such image",),
    ),
    (
        "hostconfig-list",
        "POST",
        "/containers/create",
        _create({"HostConfig": [1]}),
        400,
        ("HostConfig", "object"),
    ),
    (
        "binds-string",
        "POST",
        "/containers/create",
        _create({}, {"Binds": "/tmp:/x"}),
        400,
        ("HostConfig.Binds",),
    ),
    (
        "binds-number",
        "POST",
        "/containers/create",
        _create({}, {"Binds": [5]}),
        400,
        ("HostConfig.Binds[0]",),
    ),
    (
        "binds-too-many-colons",
        "POST",
        "/containers/create",
        _create({}, {"Binds": ["a:b:c:d"]}),
        400,
        ("invalid volume specification",),
    ),
    (
        "binds-relative-target",
        "POST",
        "/containers/create",
        _create({}, {"Binds": ["/tmp:x"]}),
        400,
        ("absolute",),
    ),
    (
        "binds-bad-mode",
        "POST",
        "/containers/create",
        _create({}, {"Binds": ["/tmp:/x:zz"]}),
        400,
        ("invalid mode",),
    ),
    (
        "binds-root-target",
        "POST",
        "/containers/create",
        _create({}, {"Binds": ["/tmp:/"]}),
        400,
        ("destination",),
    ),
    (
        "mounts-strings",
        "POST",
        "/containers/create",
        _create({}, {"Mounts": ["x"]}),
        400,
        ("HostConfig.Mounts[0]",),
    ),
    (
        "mounts-bad-type",
        "POST",
        "/containers/create",
        _create({}, {"Mounts": [{"Type": "nfs", "Target": "/x"}]}),
        400,
        ("not supported",),
    ),
    (
        "tmpfs-list",
        "POST",
        "/containers/create",
        _create({}, {"Tmpfs": ["/x"]}),
        400,
        ("HostConfig.Tmpfs",),
    ),
    (
        "nanocpus-above-host",
        "POST",
        "/containers/create",
        _create({}, {"NanoCpus": 10**15}),
        400,
        ("range of CPUs", "CPUs available"),
    ),
    (
        "nanocpus-string",
        "POST",
        "/containers/create",
        _create({}, {"NanoCpus": "2"}),
        400,
        ("HostConfig.NanoCpus",),
    ),
    (
        "cpushares-negative",
        "POST",
        "/containers/create",
        _create({}, {"CpuShares": -1}),
        400,
        ("CpuShares", "negative"),
    ),
    (
        "pids-string",
        "POST",
        "/containers/create",
        _create({}, {"PidsLimit": "x"}),
        400,
        ("PidsLimit",),
    ),
    ("shm-negative", "POST", "/containers/create", _create({}, {"ShmSize": -1}), 400, ("ShmSize",)),
    (
        "swap-without-memory",
        "POST",
        "/containers/create",
        _create({}, {"MemorySwap": 10**9}),
        400,
        ("Memory limit",),
    ),
    (
        "restart-unknown",
        "POST",
        "/containers/create",
        _create({}, {"RestartPolicy": {"Name": "sometimes"}}),
        400,
        ("restart policy", "sometimes"),
    ),
    (
        "restart-string",
        "POST",
        "/containers/create",
        _create({}, {"RestartPolicy": "always"}),
        400,
        ("HostConfig.RestartPolicy", "object"),
    ),
    (
        "restart-count-negative",
        "POST",
        "/containers/create",
        _create({}, {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}),
        400,
        ("MaximumRetryCount",),
    ),
    (
        "logconfig-string",
        "POST",
        "/containers/create",
        _create({}, {"LogConfig": "x"}),
        400,
        ("HostConfig.LogConfig",),
    ),
    (
        "log-driver-unknown",
        "POST",
        "/containers/create",
        _create({}, {"LogConfig": {"Type": "syslog"}}),
        400,
        ("logging driver", "json-file"),
    ),
    (
        "log-max-size",
        "POST",
        "/containers/create",
        _create({}, {"LogConfig": {"Type": "json-file", "Config": {"max-size": "lots"}}}),
        400,
        ("invalid size",),
    ),
    (
        "capability-unknown",
        "POST",
        "/containers/create",
        _create({}, {"CapAdd": ["CAP_NOPE"]}),
        400,
        ("unknown capability",),
    ),
    (
        "ulimit-unknown",
        "POST",
        "/containers/create",
        _create({}, {"Ulimits": [{"Name": "nope", "Soft": 1, "Hard": 1}]}),
        400,
        ("ulimit", "nofile"),
    ),
    (
        "ulimit-soft-above-hard",
        "POST",
        "/containers/create",
        _create({}, {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 1}]}),
        400,
        ("soft limit",),
    ),
    (
        "sysctls-list",
        "POST",
        "/containers/create",
        _create({}, {"Sysctls": ["x"]}),
        400,
        ("HostConfig.Sysctls",),
    ),
    (
        "network-unknown",
        "POST",
        "/containers/create",
        _create({}, {"NetworkMode": "nope"}),
        404,
        ("network nope not found",),
    ),
    (
        "stop-signal-unknown",
        "POST",
        "/containers/create",
        _create({"StopSignal": "SIGNOPE"}),
        400,
        ("StopSignal", "SIGTERM"),
    ),
    (
        "workdir-relative",
        "POST",
        "/containers/create",
        _create({"WorkingDir": "rel"}),
        400,
        ("absolute path",),
    ),
    ("volumes-list", "POST", "/containers/create", _create({"Volumes": ["/x"]}), 400, ("Volumes",)),
    (
        "name-invalid",
        "POST",
        "/containers/create?name=a/b!",
        _create({}),
        400,
        ("Invalid container name",),
    ),
    ("name-taken", "POST", "/containers/create?name=victim", _create({}), 409, ("victim",)),
    # query parameters
    (
        "filters-not-json",
        "GET",
        "/containers/json?all=1&filters={bad",
        None,
        400,
        ("filters", "JSON"),
    ),
    (
        "filters-list",
        "GET",
        f"/containers/json?filters={filters([1])}",
        None,
        400,
        ("filters", "object"),
    ),
    (
        "filters-unknown-key",
        "GET",
        f"/containers/json?filters={filters({'nope': ['x']})}",
        None,
        400,
        ("invalid filter 'nope'",),
    ),
    (
        "filters-number-value",
        "GET",
        f"/containers/json?filters={filters({'name': 5})}",
        None,
        400,
        ("invalid filter 'name'", "strings"),
    ),
    (
        "filters-bad-status",
        "GET",
        f"/containers/json?filters={filters({'status': ['zzz']})}",
        None,
        400,
        ("status=zzz",),
    ),
    (
        "image-filters-unknown",
        "GET",
        f"/images/json?filters={filters({'nope': ['x']})}",
        None,
        400,
        ("invalid filter 'nope'", "reference"),
    ),
    ("image-filters-list", "GET", f"/images/json?filters={filters([1])}", None, 400, ("filters",)),
    (
        "volume-filters-unknown",
        "GET",
        f"/volumes?filters={filters({'nope': ['x']})}",
        None,
        400,
        ("invalid filter 'nope'",),
    ),
    (
        "event-filters-unknown",
        "GET",
        f"/events?until=1&filters={filters({'nope': ['x']})}",
        None,
        400,
        ("invalid filter 'nope'",),
    ),
    (
        "event-since-infinite",
        "GET",
        "/events?since=inf&until=1",
        None,
        400,
        ("invalid timestamp", "seconds"),
    ),
    ("limit-not-int", "GET", "/containers/json?limit=x", None, 400, ("limit", "integer")),
    (
        "kill-bad-signal",
        "POST",
        "/containers/victim/kill?signal=SIGNOPE",
        None,
        400,
        ("signal", "SIGNOPE", "SIGTERM"),
    ),
    (
        "kill-signal-out-of-range",
        "POST",
        "/containers/victim/kill?signal=999",
        None,
        400,
        ("signal", "1 to 64"),
    ),
    ("stop-bad-signal", "POST", "/containers/victim/stop?signal=NOPE", None, 400, ("signal",)),
    ("stop-t-not-int", "POST", "/containers/victim/stop?t=abc", None, 400, ("value for t",)),
    (
        "stop-t-huge",
        "POST",
        "/containers/victim/stop?t=99999999999999999999",
        None,
        400,
        ("value for t", "range"),
    ),
    ("restart-t-not-int", "POST", "/containers/victim/restart?t=soon", None, 400, ("value for t",)),
    ("logs-tail", "GET", "/containers/victim/logs?stdout=1&tail=abc", None, 400, ("tail", "'all'")),
    (
        "logs-since",
        "GET",
        "/containers/victim/logs?stdout=1&since=yesterday",
        None,
        400,
        ("invalid time", "RFC 3339"),
    ),
    (
        "logs-since-nan",
        "GET",
        "/containers/victim/logs?stdout=1&since=nan",
        None,
        400,
        ("invalid time",),
    ),
    ("logs-no-stream", "GET", "/containers/victim/logs", None, 400, ("stream",)),
    (
        "resize-negative",
        "POST",
        "/containers/victim/resize?h=-1&w=80",
        None,
        400,
        ("value for h", "0 to 65535"),
    ),
    (
        "wait-condition",
        "POST",
        "/containers/victim/wait?condition=bogus",
        None,
        400,
        ("condition",),
    ),
    (
        "rename-invalid",
        "POST",
        "/containers/victim/rename?name=a/b!",
        None,
        400,
        ("Invalid container name",),
    ),
    # state conflicts and missing objects
    (
        "exec-stopped",
        "POST",
        "/containers/victim/exec",
        {"Cmd": ["true"]},
        409,
        ("victim", "not running"),
    ),
    ("exec-cmd-number", "POST", "/containers/victim/exec", {"Cmd": 5}, 400, ("Cmd",)),
    ("pause-stopped", "POST", "/containers/victim/pause", None, 409, ("not running",)),
    ("unpause-stopped", "POST", "/containers/victim/unpause", None, 409, ("not paused",)),
    ("top-stopped", "GET", "/containers/victim/top", None, 409, ("not running",)),
    (
        "attach-missing",
        "POST",
        "/containers/nope/attach?stream=1&stdout=1",
        None,
        404,
        ("No such container: nope",),
    ),
    ("inspect-missing", "GET", "/containers/nope/json", None, 404, ("No such container",)),
    ("exec-start-missing", "POST", "/exec/nope/start", {}, 404, ("No such exec instance",)),
    (
        "rmi-used-by-container",
        "DELETE",
        "/images/solo:1",
        None,
        409,
        ("conflict", "solo:1", "must force"),
    ),
    ("volume-in-use", "DELETE", "/volumes/held", None, 409, ("held", "in use")),
    ("volume-missing", "DELETE", "/volumes/nope", None, 404, ("no such volume",)),
    ("volume-traversal", "GET", "/volumes/..%2F..", None, 404, ("no such volume",)),
    ("volume-bad-name", "POST", "/volumes/create", {"Name": "a/b"}, 400, ("invalid characters",)),
    ("volume-name-number", "POST", "/volumes/create", {"Name": 5}, 400, ("Name", "string")),
    (
        "volume-labels-list",
        "POST",
        "/volumes/create",
        {"Name": "v", "Labels": ["a"]},
        400,
        ("Labels",),
    ),
    (
        "volume-driver-unknown",
        "POST",
        "/volumes/create",
        {"Name": "v", "Driver": "nfs"},
        404,
        ("nfs",),
    ),
    # image references
    (
        "pull-uppercase",
        "POST",
        "/images/create?fromImage=BusyBox&tag=latest",
        None,
        400,
        ("invalid reference format", "lowercase"),
    ),
    (
        "pull-bad-digest",
        "POST",
        "/images/create?fromImage=busybox@sha256:zz",
        None,
        400,
        ("invalid reference format", "digest"),
    ),
    ("pull-empty", "POST", "/images/create?fromImage=", None, 400, ("fromImage",)),
    ("pull-bad-tag", "POST", "/images/create?fromImage=busybox&tag=a%20b", None, 400, ("bad tag",)),
    (
        "pull-bad-platform",
        "POST",
        "/images/create?fromImage=busybox&platform=a/b/c/d",
        None,
        400,
        ("platform",),
    ),
    (
        "inspect-image-uppercase",
        "GET",
        "/images/BusyBox/json",
        None,
        400,
        ("invalid reference format",),
    ),
    ("inspect-image-missing", "GET", "/images/nosuch/json", None, 404, ("No such image",)),
    (
        "tag-uppercase",
        "POST",
        "/images/busybox/tag?repo=UPPER&tag=x",
        None,
        400,
        ("invalid reference format",),
    ),
    ("save-missing", "GET", "/images/get?names=nosuch", None, 404, ("No such image",)),
    # routing and versions
    ("unknown-route", "GET", "/nope", None, 404, ("page not found",)),
    ("unknown-route-versioned", "GET", "/v1.47/nope/deeper", None, 404, ("page not found",)),
    ("wrong-method", "PUT", "/_ping", None, 405, ("method PUT not allowed",)),
    ("patch-method", "PATCH", "/containers/json", None, 405, ("PATCH",)),
    (
        "version-too-old",
        "GET",
        "/v1.12/containers/json",
        None,
        400,
        ("too old", "Minimum supported API version is 1.24"),
    ),
    ("version-1.9-is-older-than-1.24", "GET", "/v1.9/version", None, 400, ("too old",)),
    (
        "version-too-new",
        "GET",
        "/v9.99/containers/json",
        None,
        400,
        ("too new", "Maximum supported API version"),
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in API_CASES],
)
def test_api_rejects_bad_input(
    unchanged: EngineProcess,
    method: str,
    path: str,
    body: Any,
    status: int,
    words: tuple[str, ...],
) -> None:
    got, reply = api_call(unchanged.socket, method, path, body)
    check_error(got, reply, status, *words)


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        pytest.param(b"{bad", ("malformed JSON",), id="malformed"),
        pytest.param(b'{"Image": "busybox",', ("malformed JSON",), id="truncated"),
        pytest.param(b"[1, 2]", ("JSON object",), id="list-not-object"),
        pytest.param(b'"busybox"', ("JSON object",), id="string-not-object"),
        pytest.param(b"\xff\xfe{}", ("malformed JSON",), id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, ("nested too deeply",), id="deep"),
        pytest.param(b'{"Image": "busybox", "HostConfig": {"Memory": NaN}}', ("Memory",), id="nan"),
    ],
)
def test_malformed_json_body(unchanged: EngineProcess, payload: bytes, words: tuple[str]) -> None:
    conn = UnixHTTPConnection(unchanged.socket)
    try:
        conn.request("POST", "/containers/create", payload, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        check_error(resp.status, json.loads(resp.read()), 400, *words)
    finally:
        conn.close()


def test_rmi_by_id_of_image_in_use_is_conflict(unchanged: EngineProcess) -> None:
    image_id = unchanged.docker("inspect", "-f", "{{.Id}}", "solo:1").stdout.strip()
    status, body = api_call(unchanged.socket, "DELETE", f"/images/{image_id}")
    check_error(status, body, 409, "conflict", "must be forced", "being used by")


def test_x_registry_auth_must_be_json_of_strings(unchanged: EngineProcess) -> None:
    for header, words in (
        ("!!!", ("base64",)),
        (base64.urlsafe_b64encode(b"[1]").decode(), ("JSON object",)),
        (base64.urlsafe_b64encode(b'{"username": 5}').decode(), ("username",)),
    ):
        conn = UnixHTTPConnection(unchanged.socket)
        try:
            conn.request(
                "POST", "/images/create?fromImage=busybox", headers={"X-Registry-Auth": header}
            )
            resp = conn.getresponse()
            check_error(resp.status, json.loads(resp.read()), 400, "X-Registry-Auth", *words)
        finally:
            conn.close()


HEAD = b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        pytest.param(
            HEAD + b"Transfer-Encoding: chunked\r\n\r\n100\r\n" + b'{"Image":',
            400,
            ("ended inside a chunk",),
            id="chunked-cut-short",
        ),
        pytest.param(
            HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            400,
            ("chunk size",),
            id="chunk-size-not-hex",
        ),
        pytest.param(
            b"POST /images/load HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1000\r\n" + b"\0" * 100,
            400,
            ("ended inside a chunk",),
            id="load-chunked-cut-short",
        ),
        pytest.param(
            HEAD + b"Content-Length: 100\r\n\r\n" + b'{"Image":',
            400,
            ("9 of the 100 bytes",),
            id="content-length-cut-short",
        ),
        pytest.param(
            HEAD + b"Content-Length: abc\r\n\r\n{}", 400, ("Content-Length",), id="length-not-int"
        ),
        pytest.param(
            HEAD + b"Content-Length: -5\r\n\r\n{}", 400, ("Content-Length",), id="length-negative"
        ),
        pytest.param(
            b"GET /_ping HTTP/1.1\r\nHost: d\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
            431,
            ("headers are too large",),
            id="oversized-header",
        ),
        pytest.param(
            b"GET /_ping HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
            431,
            ("too many headers",),
            id="too-many-headers",
        ),
        pytest.param(
            b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: d\r\n\r\n",
            414,
            ("URL is too long",),
            id="oversized-url",
        ),
        pytest.param(b"\x00\x01garbage\r\n\r\n", 400, ("not valid HTTP",), id="garbage"),
        pytest.param(
            b"BREW /_ping HTTP/1.1\r\nHost: d\r\n\r\n", 501, ("BREW", "use GET"), id="bad-method"
        ),
    ],
)
def test_broken_http_gets_json_errors(
    unchanged: EngineProcess, data: bytes, status: int, words: tuple[str, ...]
) -> None:
    got, body = raw_request(unchanged.socket, data)
    check_error(got, body, status, *words)
    assert unchanged.ping()  # the server survived


def test_keep_alive_connection_survives_an_error(unchanged: EngineProcess) -> None:
    """A 400 must not desynchronise the connection: the next request on it works."""
    conn = UnixHTTPConnection(unchanged.socket)
    try:
        conn.request("POST", "/containers/create", b'{"Image": 5}', {"Content-Length": "12"})
        first = conn.getresponse()
        check_error(first.status, json.loads(first.read()), 400, "Image")
        conn.request("GET", "/_ping")
        second = conn.getresponse()
        assert (second.status, second.read()) == (200, b"OK")
    finally:
        conn.close()


# -- pulls from the local registry ---------------------------------------------------------


def test_pull_missing_repository_and_tag_are_404(
    unchanged: EngineProcess, registry_with_images: str
) -> None:
    for name, tag in (("nosuchrepo", "latest"), ("busybox", "nosuchtag")):
        status, body = api_call(
            unchanged.socket,
            "POST",
            f"/images/create?fromImage={registry_with_images}/{name}&tag={tag}",
        )
        check_error(
            status, body, 404, f"manifest for {registry_with_images}/{name}:{tag} not found"
        )
    res = unchanged.docker("pull", f"{registry_with_images}/busybox:nosuchtag", check=False)
    assert res.returncode == 1
    assert "Error response from daemon: manifest for" in res.stderr
    assert "not found" in res.stderr


def test_pull_from_unreachable_registry_says_so(unchanged: EngineProcess) -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        status, body = api_call(
            unchanged.socket, "POST", f"/images/create?fromImage=127.0.0.1:{port}/x&tag=latest"
        )
    assert status == 500  # Docker's status for a registry that never answered
    assert "cannot reach registry" in body["message"]
    assert "check the registry address" in body["message"]


# -- the docker CLI -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["exec", "victim", "true"], ("victim", "not running")),
        (["pause", "victim"], ("not running",)),
        (["attach", "nosuch"], ("No such container: nosuch",)),
        (["rmi", "solo:1"], ("conflict", "must force")),
        (["volume", "rm", "held"], ("volume is in use",)),
        (["volume", "create", "a/b"], ("invalid characters",)),
        (["kill", "-s", "NOPE", "victim"], ("not a signal",)),
        (["run", "--cpus", "999", "busybox", "true"], ("range of CPUs",)),
        (["run", "--restart", "sometimes", "busybox", "true"], ("restart policy",)),
        (["logs", "--tail", "x", "victim"], ("tail",)),
        (["ps", "--filter", "nope=1"], ("invalid filter 'nope'",)),
        (["images", "--filter", "nope=1"], ("invalid filter 'nope'",)),
        (["volume", "ls", "--filter", "nope=1"], ("invalid filter 'nope'",)),
        (["pull", "busybox@sha256:zz"], ("invalid reference format",)),
    ],
    ids=lambda a: "-".join(a) if isinstance(a, list) else None,
)
def test_cli_reports_daemon_errors(
    unchanged: EngineProcess, args: list[str], words: tuple[str, ...]
) -> None:
    res = unchanged.docker(*args, check=False)
    assert res.returncode != 0
    for word in words:
        assert word.lower() in res.stderr.lower(), res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_docker_load_of_bad_archives_changes_nothing(unchanged: EngineProcess) -> None:
    eng = unchanged
    saved = subprocess.run(
        ["docker", "save", "busybox"], env=eng.env, capture_output=True, check=True
    ).stdout
    listing = ("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}} {{.Digest}}")
    before = sorted(eng.docker(*listing).stdout.splitlines())
    bad_inputs = {
        "garbage": b"garbage" * 1000,
        "empty": b"",
        "truncated": saved[: len(saved) // 2],
        "manifest-not-a-list": _tar({"manifest.json": b'{"x": 1}'}),
        "manifest-escapes": _tar(
            {"manifest.json": b'[{"Config": "../../etc/passwd", "Layers": ["/etc/shadow"]}]'}
        ),
    }
    for name, data in bad_inputs.items():
        res = subprocess.run(
            ["docker", "load"], env=eng.env, input=data, capture_output=True, check=False
        )
        err = res.stderr.decode()
        assert res.returncode == 1, (name, err)
        assert "invalid image archive" in err, (name, err)
        assert sorted(eng.docker(*listing).stdout.splitlines()) == before, name


# -- a full disk ----------------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(size: str) -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="dy-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        with contextlib.suppress(OSError):
            where.rmdir()


class TmpfsRootEngine(EngineProcess):
    """An engine whose --root lives on a small filesystem; socket, log and exec root
    stay in the usual temp dir so the engine can still talk when its disk is full."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root


def _fill(path: Path, leave: int = 0) -> None:
    """Write until ENOSPC, then give back `leave` bytes: a disk with exactly that much room."""
    with path.open("wb", buffering=0) as f:  # unbuffered: close() has nothing left to flush
        try:
            while True:
                f.write(b"\0" * (64 * 1024))
        except OSError:
            pass
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(max(0, size - leave))


def _assert_no_space_error(text: str) -> None:
    assert "no space left on device" in text.lower(), text
    assert "free space" in text and "prune" in text, text
    assert "internal error" not in text and "Traceback" not in text, text


def test_full_disk_pull_fails_clearly_and_leaves_store_usable(
    registry_with_images: str,
) -> None:
    image = f"{registry_with_images}/busybox"
    with small_tmpfs("8m") as mnt:
        eng = TmpfsRootEngine(mnt / "root")
        try:
            eng.start()
            filler = mnt / "filler"
            # 1. No room at all: the download itself fails.
            _fill(filler)
            res = eng.docker("pull", image, check=False)
            assert res.returncode != 0
            _assert_no_space_error(res.stderr)
            assert eng.docker("images", "-q").stdout.strip() == ""
            status, body = api_call(eng.socket, "GET", f"/images/{image}/json")
            assert status == 404, body
            # A volume create on the full disk fails cleanly and leaves no directory.
            status, body = api_call(eng.socket, "POST", "/volumes/create", {"Name": "v1"})
            check_error(status, body, 507, "no space left on device", "free space")
            assert api_call(eng.socket, "GET", "/volumes")[1]["Volumes"] == []
            assert not (eng.root / "volumes" / "v1").exists()
            # 2. Room for the compressed layer (about 1 MiB) but not for its files (2 MiB):
            # the download completes, the extraction fails, and nothing is registered.
            filler.unlink()
            _fill(filler, leave=1536 * 1024)
            res = eng.docker("pull", image, check=False)
            assert res.returncode != 0
            _assert_no_space_error(res.stderr)
            assert eng.docker("images", "-q").stdout.strip() == ""
            assert list((eng.root / "images" / "layers").iterdir()) == []
            # 3. Space freed: the same pull works, and the image runs.
            filler.unlink()
            eng.docker("pull", image)
            assert image in eng.docker("images").stdout
            # A container create on a full disk is refused and leaves no container.
            _fill(filler)
            status, body = api_call(
                eng.socket, "POST", "/containers/create?name=c1", {"Image": image, "Cmd": ["true"]}
            )
            check_error(status, body, 507, "no space left on device", "free space")
            assert api_call(eng.socket, "GET", "/containers/json?all=1")[1] == []
            filler.unlink()
            assert eng.docker("run", "--rm", image, "echo", "ok").stdout == "ok\n"
            eng.docker("volume", "create", "v1")
        finally:
            eng.close()
