"""engine/api/schema.py: request bodies of the wrong shape are 400s naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api import schema
from engine.errors import InvalidParameter


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (5, True),
        (5.0, True),
        (-(2**63), True),
        (2**63, False),
        (True, False),
        (1.5, False),
        (float("nan"), False),
        (float("inf"), False),
        ("5", False),
        (None, False),
    ],
)
def test_is_int_follows_go_int64(value: Any, ok: bool) -> None:
    assert schema.is_int(value) is ok


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"Env": "A=B"}, "Env"),
        ({"Cmd": 5}, "Cmd"),
        ({"Labels": {"a": 1}}, "Labels['a']"),
        ({"HostConfig": {"Memory": "lots"}}, "HostConfig.Memory"),
        ({"HostConfig": {"Binds": [None]}}, "HostConfig.Binds[0]"),
        ({"HostConfig": {"Mounts": [{"Target": 5}]}}, "HostConfig.Mounts[0].Target"),
        ({"HostConfig": {"RestartPolicy": {"MaximumRetryCount": "x"}}}, "MaximumRetryCount"),
        ({"HostConfig": {"ConsoleSize": [1]}}, "ConsoleSize"),
        ({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": "1"}]}}, "Ulimits[0].Soft"),
        ({"StopSignal": "SIGNOPE"}, "StopSignal"),
    ],
)
def test_check_create_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        schema.check_create({"Image": "busybox", **body})
    assert field in err.value.message


def test_check_create_accepts_docker_cli_shapes() -> None:
    schema.check_create(
        {
            "Image": "busybox",
            "Cmd": "echo hi",
            "Entrypoint": None,
            "Env": ["A=B"],
            "StopSignal": "15",
            "HostConfig": {
                "Memory": 64 * 1024 * 1024,
                "NanoCpus": 500_000_000,
                "CapAdd": ["NET_ADMIN"],
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
                "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1}}],
                "ConsoleSize": [24, 80],
            },
        }
    )


def test_filters_shapes_and_keys() -> None:
    assert schema.filters(None, ["name"]) == {}
    assert schema.filters({"name": {"web": True}}, ["name"]) == {"name": ["web"]}
    assert schema.filters({"name": "web"}, ["name"]) == {"name": ["web"]}
    with pytest.raises(InvalidParameter, match="invalid filter 'nope'"):
        schema.filters({"nope": ["x"]}, ["name"])
    with pytest.raises(InvalidParameter, match="strings"):
        schema.filters({"name": [1]}, None)
    with pytest.raises(InvalidParameter, match="JSON object"):
        schema.filters([1], None)


@pytest.mark.parametrize(("text", "number"), [("SIGTERM", 15), ("kill", 9), ("2", 2)])
def test_check_signal(text: str, number: int) -> None:
    assert schema.check_signal("signal", text) == number


@pytest.mark.parametrize("text", ["NOPE", "0", "65", "-1", ""])
def test_check_signal_refuses(text: str) -> None:
    with pytest.raises(InvalidParameter, match="not a signal"):
        schema.check_signal("signal", text)
