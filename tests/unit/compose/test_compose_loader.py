"""Loading a project: schema errors with file:line:key, .env and the shell, merges,
normalization of short forms, and the project name rules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from app.compose import build, envfile
from app.compose.errors import ComposeError
from app.compose.project import Options, load


def write(directory: Path, text: str, name: str = "compose.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def project_of(tmp_path: Path, text: str, env: dict[str, str] | None = None, **opts: str):
    f = write(tmp_path, text)
    return load(Options([str(f)], opts.get("name"), None), env or {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """\
            services:
              web:
                image: busybox
                ports:
                  - 8080:80
                  - true
            """,
            "compose.yaml:6: services.web.ports[1]: must be a number, a string or a mapping, "
            "not a boolean (true)",
        ),
        (
            """\
            services:
              web:
                image: busybox
                imagee: typo
            """,
            "compose.yaml:4: services.web: additional property 'imagee' is not allowed",
        ),
        (
            """\
            services:
              web:
                image: busybox
                depends_on:
                  db:
                    condition: started
            """,
            "compose.yaml:6: services.web.depends_on.db.condition: must be one of",
        ),
        (
            """\
            services:
              web:
                image: busybox
                command: 5
            """,
            "compose.yaml:4: services.web.command: must be a string or a list",
        ),
        (
            """\
            services:
              web:
                image: busybox
                ports: ["80:x"]
            """,
            "compose.yaml:4: services.web.ports[0]: invalid port '80:x'",
        ),
        (
            """\
            services:
              web:
                image: busybox
                volumes:
                  - data:/data
            """,
            "compose.yaml:5: services.web.volumes[0]: service refers to undefined volume 'data'",
        ),
        (
            """\
            services:
              web:
                image: busybox
                networks: [back]
            """,
            "compose.yaml:4: services.web.networks: service 'web' refers to undefined network",
        ),
        (
            """\
            services:
              web:
                image: busybox
                depends_on: [db]
            """,
            "compose.yaml:4: services.web.depends_on: service 'web' depends on undefined service",
        ),
        (
            """\
            services:
              web:
                build: https://example.invalid/repo.git
            """,
            "compose.yaml:3: services.web.build.context: remote build context",
        ),
        (
            """\
            services:
              web:
                image: busybox
                healthcheck:
                  interval: soon
            """,
            "compose.yaml:5: services.web.healthcheck.interval: 'soon' is not a duration",
        ),
        (
            """\
            services:
              web: {image: busybox, restart: sometimes}
            """,
            "compose.yaml:2: services.web.restart: invalid restart policy 'sometimes'",
        ),
        ("services:\n  web: [unclosed\n", "compose.yaml:3: invalid YAML"),
        ("- a\n- b\n", "compose.yaml:1: the top level must be a mapping"),
    ],
)
def test_bad_files_say_file_line_key_and_what(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ComposeError) as err:
        project_of(tmp_path, text)
    assert str(err.value).startswith(expected), str(err.value)


def test_build_string_is_the_context_and_names_the_image_after_project_and_service(
    tmp_path: Path,
) -> None:
    p = project_of(tmp_path, "name: shop\nservices:\n  web: {build: ./web}\n")
    web = p.services["web"]
    assert web["build"] == {"context": str(tmp_path / "web"), "dockerfile": "Dockerfile"}
    assert web["image"] == "shop-web"


def test_build_no_cache_and_pull_in_the_file_reach_the_build(tmp_path: Path) -> None:
    text = """\
        services:
          web: {build: {context: web, no_cache: true, pull: true}}
          api: {build: {context: api}}
        """
    p = project_of(tmp_path, text)
    assert build.build_params(p, "web", "Dockerfile", False, False)["nocache"] is True
    assert build.build_params(p, "web", "Dockerfile", False, False)["pull"] is True
    api = build.build_params(p, "api", "Dockerfile", False, False)
    assert "nocache" not in api and "pull" not in api
    assert build.build_params(p, "api", "Dockerfile", True, True)["nocache"] is True  # flags
    with pytest.raises(ComposeError, match=r"compose.yaml:2: services.web.build.no_cache"):
        project_of(tmp_path, "services:\n  web: {build: {context: web, no_cache: sometimes}}\n")


def test_build_mapping_keeps_image_target_and_resolves_args(tmp_path: Path) -> None:
    p = project_of(
        tmp_path,
        """\
        services:
          web:
            image: mine:1
            build:
              context: ctx
              dockerfile: Dockerfile.dev
              target: final
              args: [GREETING=hi, FROM_SHELL, UNSET]
              labels: {team: core}
        """,
        env={"FROM_SHELL": "shell"},
    )
    web = p.services["web"]
    assert web["image"] == "mine:1"
    assert web["build"] == {
        "context": str(tmp_path / "ctx"),
        "dockerfile": "Dockerfile.dev",
        "target": "final",
        "args": {"GREETING": "hi", "FROM_SHELL": "shell"},
        "labels": {"team": "core"},
    }


def test_dotenv_then_shell_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=fromfile\nPORT=1000\n# comment\nexport Q='a b'\n")
    p = project_of(
        tmp_path,
        """\
        services:
          web:
            image: "busybox:${TAG}"
            ports: ["${PORT}:80"]
            environment: [Q=$Q, BARE, "MISSING"]
        """,
        env={"PORT": "2000", "BARE": "shell"},
    )
    web = p.services["web"]
    assert web["image"] == "busybox:fromfile"
    assert web["ports"][0]["published"] == "2000"
    assert web["environment"] == {"Q": "a b", "BARE": "shell"}


def test_short_forms_are_normalized(tmp_path: Path) -> None:
    (tmp_path / "web.env").write_text('FROM_FILE="x\\ny"\nOVERRIDDEN=file\n')
    p = project_of(
        tmp_path,
        """\
        services:
          web:
            image: busybox
            entrypoint: sh -c 'echo "a b"'
            env_file: web.env
            environment: {OVERRIDDEN: yaml, N: 3, B: true}
            labels: [a=1, b]
            ports:
              - "127.0.0.1:8000-8001:80-81/udp"
              - {target: 90, published: "9090", host_ip: 0.0.0.0}
            volumes:
              - ./src:/src:ro
              - /anon
              - type: tmpfs
                target: /tmp
            healthcheck: {test: "true", interval: 1m30s, retries: "3"}
            extra_hosts: {host.example: 10.0.0.1}
        """,
    )
    web = p.services["web"]
    assert web["entrypoint"] == ["sh", "-c", 'echo "a b"']
    assert web["environment"] == {"FROM_FILE": "x\ny", "OVERRIDDEN": "yaml", "N": "3", "B": "true"}
    assert web["labels"] == {"a": "1", "b": ""}
    assert [(x["host_ip"], x["published"], x["target"], x["protocol"]) for x in web["ports"]] == [
        ("127.0.0.1", "8000", 80, "udp"),
        ("127.0.0.1", "8001", 81, "udp"),
        ("0.0.0.0", "9090", 90, "tcp"),
    ]
    assert web["volumes"][0] == {
        "type": "bind",
        "source": str(tmp_path / "src"),
        "target": "/src",
        "bind": {"create_host_path": True},
        "read_only": True,
    }
    assert web["volumes"][1] == {"type": "volume", "target": "/anon"}
    assert web["healthcheck"]["test"] == ["CMD-SHELL", "true"]
    assert web["healthcheck"]["retries"] == 3
    assert web["extra_hosts"] == ["host.example:10.0.0.1"]
    assert web["networks"] == {"default": None}
    assert p.networks == {"default": {"name": f"{p.name}_default", "driver": "bridge"}}


def test_top_level_networks_and_volumes(tmp_path: Path) -> None:
    p = project_of(
        tmp_path,
        """\
        name: shop
        services:
          web:
            image: busybox
            networks:
              front: {aliases: [www], ipv4_address: 10.9.0.5}
            volumes: [data:/data, ext:/ext]
        networks:
          front:
            internal: true
            ipam: {config: [{subnet: 10.9.0.0/24}]}
          outside: {external: true, name: shared}
        volumes:
          data: {}
          ext: {external: true}
        """,
    )
    assert p.name == "shop"
    assert p.networks["front"]["name"] == "shop_front"
    assert p.networks["outside"] == {"external": True, "name": "shared"}
    assert p.volumes["data"]["name"] == "shop_data"
    assert p.volumes["ext"]["name"] == "ext"
    assert "default" not in p.networks


def test_later_files_override_and_extend(tmp_path: Path) -> None:
    base = write(tmp_path, "services:\n  web:\n    image: busybox\n    ports: ['80']\n"
                 "    environment: [A=1, B=1]\n")  # fmt: skip
    over = write(
        tmp_path,
        "services:\n  web:\n    image: busybox:2\n    ports: ['81']\n    environment: {B: 2}\n",
        "override.yaml",
    )
    p = load(Options([str(base), str(over)]), {})
    web = p.services["web"]
    assert web["image"] == "busybox:2"
    assert [x["target"] for x in web["ports"]] == [80, 81]
    assert web["environment"] == {"A": "1", "B": "2"}
    assert p.config_files == [base, over]


def test_an_error_in_a_second_file_names_that_file(tmp_path: Path) -> None:
    base = write(tmp_path, "services:\n  web: {image: busybox}\n")
    over = write(tmp_path, "services:\n  web:\n    image: [x]\n", "override.yaml")
    with pytest.raises(ComposeError, match=r"^override.yaml:3: services.web.image"):
        load(Options([str(base), str(over)]), {})


@pytest.mark.parametrize(
    ("dirname", "opts", "env", "top", "expected"),
    [
        ("My_App.v2", {}, {}, None, "my_appv2"),
        ("x", {"name": "given"}, {"COMPOSE_PROJECT_NAME": "fromenv"}, "top", "given"),
        ("x", {}, {"COMPOSE_PROJECT_NAME": "fromenv"}, "top", "fromenv"),
        ("x", {}, {}, "top", "top"),
    ],
)
def test_project_name(
    tmp_path: Path, dirname: str, opts: dict[str, str], env: dict[str, str],
    top: str | None, expected: str,
) -> None:  # fmt: skip
    d = tmp_path / dirname
    d.mkdir()
    name_line = f"name: {top}\n" if top else ""
    assert project_of(d, name_line + "services: {}\n", env, **opts).name == expected


def test_bad_project_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ComposeError, match="invalid project name 'Bad'"):
        project_of(tmp_path, "services: {}\n", name="Bad")


def test_no_file_found_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComposeError, match=r"no configuration file provided.*compose\.yaml"):
        load(Options(), {})


def test_envfile_rules() -> None:
    text = 'A=1 # note\nB=\'x # y\'\nexport C="q\\""\nD\n\n#E=5\n'
    assert envfile.parse(text, "f", {"D": "shell"}) == {
        "A": "1",
        "B": "x # y",
        "C": 'q"',
        "D": "shell",
    }
    with pytest.raises(ComposeError, match=r"^f:1: 'bad key' is not a valid variable name"):
        envfile.parse("bad key=1\n", "f", {})


def test_compose_file_variable_names_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "services:\n  a: {image: busybox}\n", "one.yaml")
    write(tmp_path, "services:\n  b: {image: busybox}\n", "two.yaml")
    monkeypatch.chdir(tmp_path)
    p = load(Options(), {"COMPOSE_FILE": "one.yaml:two.yaml"})
    assert list(p.services) == ["a", "b"]
