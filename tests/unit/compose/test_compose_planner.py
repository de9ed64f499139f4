"""The pure planning half: start order, config hash, labels and create bodies."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from app.compose import containers, labels, planner
from app.compose.errors import ComposeError
from app.compose.model import Project
from app.compose.project import Options, load

STACK = """\
services:
  web:
    image: busybox
    command: ["httpd", "-f"]
    depends_on:
      api: {condition: service_healthy}
    ports: ["127.0.0.1:8080:80"]
    volumes: [data:/data, ./html:/www:ro]
    networks:
      front: {aliases: [www]}
      back: {priority: 10, ipv4_address: 10.7.0.9}
    restart: on-failure:2
    stop_grace_period: 3s
    labels: {owner: me}
  api:
    image: busybox
    depends_on: [db]
    healthcheck: {test: [CMD, "true"], interval: 2s, timeout: 500ms, start_period: 1m, retries: 4}
  db:
    image: busybox
    container_name: the-db
networks:
  front: {}
  back: {}
volumes:
  data: {}
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "compose.yaml").write_text(STACK)
    return load(Options([str(tmp_path / "compose.yaml")], "shop"), {})


def test_order_puts_dependencies_first(project: Project) -> None:
    assert planner.order(project) == ["db", "api", "web"]
    assert planner.order(project, ["api"]) == ["db", "api"]


def test_unknown_service_and_cycles_are_errors(project: Project) -> None:
    with pytest.raises(ComposeError, match="no such service: nope"):
        planner.order(project, ["nope"])
    project.services["db"]["depends_on"] = {"web": {"condition": "service_started"}}
    with pytest.raises(
        ComposeError, match="dependency cycle between services: web -> api -> db -> web"
    ):
        planner.order(project)


def test_config_hash_follows_the_config_not_the_dependencies(project: Project) -> None:
    web = project.services["web"]
    before = planner.config_hash(web)
    assert before == planner.config_hash(dict(web))
    assert planner.config_hash({**web, "depends_on": {}}) == before
    assert planner.config_hash({**web, "command": ["true"]}) != before


def test_create_body(project: Project) -> None:
    body = planner.create_body(project, "web", 1, "sha256:abc")
    assert body["Image"] == "busybox"
    assert body["Cmd"] == ["httpd", "-f"]
    assert body["StopTimeout"] == 3
    assert body["ExposedPorts"] == {"80/tcp": {}}
    hc = body["HostConfig"]
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert hc["Mounts"][0] == {"Type": "volume", "Target": "/data", "ReadOnly": False,
                               "Source": "shop_data"}  # fmt: skip
    assert hc["Binds"] == [f"{project.working_dir}/html:/www:ro"]
    # the highest priority network is the primary one, joined at create
    assert hc["NetworkMode"] == "shop_back"
    endpoint = body["NetworkingConfig"]["EndpointsConfig"]["shop_back"]
    assert endpoint == {"Aliases": ["web", "shop-web-1"], "IPAMConfig": {"IPv4Address": "10.7.0.9"}}
    assert [n for n, _ in planner.service_networks(project, "web")] == ["shop_back", "shop_front"]
    lab = body["Labels"]
    assert lab["owner"] == "me"
    assert lab[labels.PROJECT] == "shop"
    assert lab[labels.SERVICE] == "web"
    assert lab[labels.NUMBER] == "1"
    assert lab[labels.ONEOFF] == "False"
    assert lab[labels.IMAGE] == "sha256:abc"
    assert lab[labels.DEPENDS_ON] == "api:service_healthy:false"
    assert lab[labels.CONFIG_HASH] == planner.config_hash(project.services["web"])
    assert lab[labels.WORKING_DIR] == str(project.working_dir)
    assert lab[labels.CONFIG_FILES] == str(project.config_files[0])


def test_healthcheck_durations_in_nanoseconds(project: Project) -> None:
    assert planner.create_body(project, "api", 1, "")["Healthcheck"] == {
        "Test": ["CMD", "true"],
        "Interval": 2 * 10**9,
        "Timeout": 500 * 10**6,
        "StartPeriod": 60 * 10**9,
        "Retries": 4,
    }
    assert planner.healthcheck({"disable": True}) == {"Test": ["NONE"]}


def test_container_names(project: Project) -> None:
    assert planner.container_name(project, "web") == "shop-web-1"
    assert planner.container_name(project, "db") == "the-db"
    body = planner.create_body(project, "db", 1, "")
    aliases = body["NetworkingConfig"]["EndpointsConfig"]["shop_default"]["Aliases"]
    assert aliases == ["db", "the-db"]


def test_resource_labels() -> None:
    got = labels.resource_labels("shop", labels.NETWORK, "front", {"x": 1})
    assert got == {"x": "1", labels.NETWORK: "front", labels.PROJECT: "shop",
                   labels.VERSION: labels.COMPOSE_VERSION}  # fmt: skip
    assert labels.project_filter("shop", "web") == [
        "com.docker.compose.project=shop",
        "com.docker.compose.oneoff=False",
        "com.docker.compose.service=web",
    ]


def test_textwrap_is_not_needed_for_stack() -> None:
    assert textwrap.dedent(STACK) == STACK


def test_stop_groups_put_dependents_first() -> None:
    def summary(service: str, depends: str) -> dict[str, object]:
        return {"Labels": {labels.SERVICE: service, labels.DEPENDS_ON: depends}}

    found = [
        summary("db", ""),
        summary("api", "db:service_healthy:false"),
        summary("web", "api:service_started:false,db:service_started:false"),
        summary("cache", ""),
    ]
    groups = containers.stop_groups(found)  # type: ignore[arg-type]
    names = [sorted(containers.service_of(c) for c in g) for g in groups]  # type: ignore[arg-type]
    assert names == [["cache", "web"], ["api"], ["db"]]
