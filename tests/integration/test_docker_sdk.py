"""Acceptance: the docker SDK (docker-py 7.x) against our engine."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.engine_process import EngineProcess


@pytest.fixture(scope="module")
def client(
    shared_engine: EngineProcess, registry_with_images: str
) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=shared_engine.host, version="auto")
    c.images.pull(f"{registry_with_images}/busybox", tag="latest")
    try:
        yield c
    finally:
        c.close()


def test_run_with_remove_returns_output(
    client: docker.DockerClient, registry_with_images: str
) -> None:
    out = client.containers.run(f"{registry_with_images}/busybox", "echo sdk-hi", remove=True)
    assert out == b"sdk-hi\n"


def test_detached_logs_stream(client: docker.DockerClient, registry_with_images: str) -> None:
    ct = client.containers.run(
        f"{registry_with_images}/busybox",
        ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.1; done"],
        detach=True,
    )
    try:
        lines = b"".join(ct.logs(stream=True, follow=True)).decode().split()
        assert lines == ["line1", "line2", "line3"]
        ct.reload()
        assert ct.status == "exited"
        assert ct.wait()["StatusCode"] == 0
    finally:
        ct.remove(force=True)


def test_exec_run(client: docker.DockerClient, registry_with_images: str) -> None:
    ct = client.containers.run(f"{registry_with_images}/busybox", "sleep 100", detach=True)
    try:
        res = ct.exec_run("sh -c 'echo exec-out; echo err >&2; exit 3'")
        assert res.exit_code == 3
        assert b"exec-out" in res.output and b"err" in res.output
        assert ct.exec_run("whoami", user="1000").output.strip() == b"app"
        assert ct.exec_run("pwd", workdir="/tmp").output == b"/tmp\n"
        assert ct.exec_run("sh -c 'echo $X'", environment={"X": "y"}).output == b"y\n"
        assert ct.exec_run("no-such-binary").exit_code == 127
    finally:
        ct.remove(force=True)


def test_images_pull_selects_platform(
    client: docker.DockerClient, registry_with_images: str
) -> None:
    amd = client.images.pull(f"{registry_with_images}/multiarch", tag="latest")
    assert amd.attrs["Architecture"] == "amd64"
    arm = client.images.pull(
        f"{registry_with_images}/multiarch", tag="latest", platform="linux/arm64"
    )
    assert arm.attrs["Architecture"] == "arm64"
    assert arm.id != amd.id


def test_volumes_create(client: docker.DockerClient) -> None:
    vol = client.volumes.create("sdk-vol", labels={"team": "dock"})
    try:
        assert client.volumes.get("sdk-vol").attrs["Labels"] == {"team": "dock"}
    finally:
        vol.remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("sdk-vol")


def test_errors_map_to_sdk_exceptions(client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("does-not-exist")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nope:missing")
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.create("busybox-never-pulled-here:x", "true")
    assert info.value.status_code == 404
