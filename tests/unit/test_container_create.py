"""Docker's rules for merging a create request with the image config."""

from __future__ import annotations

import pytest

from engine.containers import create, mounts, restart
from engine.errors import InvalidParameter

IMAGE = {"Entrypoint": ["/entry.sh"], "Cmd": ["hello"], "Env": ["PATH=/bin", "A=1"]}


def test_image_entrypoint_and_cmd_are_used_by_default() -> None:
    assert create.resolve_args({}, IMAGE) == ["/entry.sh", "hello"]


def test_cmd_replaces_image_cmd_but_keeps_entrypoint() -> None:
    assert create.resolve_args({"Cmd": ["bye"]}, IMAGE) == ["/entry.sh", "bye"]


def test_entrypoint_override_drops_image_cmd() -> None:
    assert create.resolve_args({"Entrypoint": ["/bin/sh"]}, IMAGE) == ["/bin/sh"]


def test_empty_entrypoint_resets_it() -> None:
    assert create.resolve_args({"Entrypoint": [""], "Cmd": ["ls"]}, IMAGE) == ["ls"]


def test_no_command_is_a_400() -> None:
    with pytest.raises(InvalidParameter, match="no command specified"):
        create.resolve_args({}, {})


def test_env_overrides_by_key_and_keeps_order() -> None:
    assert create.merge_env(["PATH=/bin", "A=1"], ["A=2", "B=3"]) == ["PATH=/bin", "A=2", "B=3"]


@pytest.mark.parametrize(
    ("text", "expected"), [("10m", 10 << 20), ("1g", 1 << 30), ("512k", 512 << 10), ("100", 100)]
)
def test_parse_size(text: str, expected: int) -> None:
    assert create.parse_size(text) == expected


def test_parse_size_rejects_garbage() -> None:
    with pytest.raises(InvalidParameter):
        create.parse_size("ten megs")


def test_memory_below_docker_minimum_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        create.resources({"Memory": 1024})


def test_cpu_quota_becomes_nano_cpus() -> None:
    assert create.resources({"CpuQuota": 50000, "CpuPeriod": 100000}).nano_cpus == 500_000_000


def test_auto_remove_with_restart_policy_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="AutoRemove"):
        create.check_restart({"AutoRemove": True, "RestartPolicy": {"Name": "always"}})


def test_relative_workdir_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="absolute path"):
        create.merged_config({"WorkingDir": "rel"}, {}, "a" * 64, ["x"])


def test_bind_named_and_anonymous_mounts() -> None:
    plans = mounts.plan_mounts(
        {"Binds": ["/host:/c:ro", "vol:/data"], "Tmpfs": {"/run": "size=1m"}},
        {},
        {"Volumes": {"/image-vol": {}, "/data": {}}},
    )
    kinds = {p.target: (p.kind, p.source, p.readonly) for p in plans}
    assert kinds["/c"] == ("bind", "/host", True)
    assert kinds["/data"] == ("volume", "vol", False)
    assert kinds["/run"][0] == "tmpfs"
    assert kinds["/image-vol"] == ("volume", "", False)


@pytest.mark.parametrize("spec", ["/a:/b:bogus", "rel", "/a:/", "a:b:c:d"])
def test_bad_bind_specs_are_400(spec: str) -> None:
    with pytest.raises(InvalidParameter):
        mounts.parse_bind(spec)


def test_duplicate_mount_point_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="Duplicate mount point"):
        mounts.plan_mounts({"Binds": ["/a:/x", "/b:/x"]}, {}, {})


def test_on_failure_restarts_exactly_up_to_the_limit() -> None:
    policy = {"Name": "on-failure", "MaximumRetryCount": 2}
    assert restart.should_restart(policy, 1, 0, False)
    assert restart.should_restart(policy, 1, 1, False)
    assert not restart.should_restart(policy, 1, 2, False)
    assert not restart.should_restart(policy, 0, 0, False)


def test_manual_stop_prevents_restart() -> None:
    assert not restart.should_restart({"Name": "always"}, 0, 0, True)
    assert restart.should_restart({"Name": "always"}, 0, 5, False)


def test_boot_brings_back_always_even_after_manual_stop() -> None:
    assert restart.starts_on_boot({"Name": "always"}, 0, 0, True)
    assert not restart.starts_on_boot({"Name": "unless-stopped"}, 0, 0, True)
    assert restart.starts_on_boot({"Name": "unless-stopped"}, 0, 0, False)
    assert not restart.starts_on_boot({"Name": "no"}, 1, 0, False)
