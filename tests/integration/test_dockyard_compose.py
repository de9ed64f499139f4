"""Acceptance: `dockyard compose` (the installed console script) against a real engine with
the busybox test image: up/ps/logs/stop/start/restart/down, idempotent up and recreation,
dependency conditions, published ports, networks and volumes, and refused bad files.

Each test uses its own project name on one shared engine; the `compose` fixture runs
`down -v --remove-orphans` afterwards, so nothing is left even when a test fails.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess, wait_for

DOCKYARD = Path(sys.executable).parent / "dockyard"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    yield shared_engine


class Compose:
    """One project directory and name; `run(...)` is `dockyard compose -p NAME ...`."""

    def __init__(self, eng: EngineProcess, directory: Path, name: str) -> None:
        self.eng, self.dir, self.name = eng, directory, name

    def write(self, text: str, filename: str = "compose.yaml") -> None:
        (self.dir / filename).write_text(textwrap.dedent(text))

    def argv(self, *args: str) -> list[str]:
        return [str(DOCKYARD), "compose", "-p", self.name, *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            self.argv(*args),
            cwd=self.dir,
            env=self.eng.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"{args} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
        return res

    def labelled(self, kind: str) -> list[str]:
        """Names of containers/networks/volumes carrying this project's label."""
        flt = f"label=com.docker.compose.project={self.name}"
        cmd = {"container": ["ps", "-a"], "network": ["network", "ls"], "volume": ["volume", "ls"]}[
            kind
        ]
        fmt = "{{.Names}}" if kind == "container" else "{{.Name}}"
        out = self.eng.docker(*cmd, "--filter", flt, "--format", fmt).stdout
        return sorted(out.split())

    def inspect(self, name: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.eng.docker("inspect", name).stdout)[0]


@pytest.fixture
def compose(
    eng: EngineProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Compose]:
    name = "t" + request.node.name.replace("test_", "").replace("_", "")[:20].lower()
    directory = tmp_path / "proj"
    directory.mkdir()
    c = Compose(eng, directory, name)
    try:
        yield c
    finally:
        c.run("down", "-v", "--remove-orphans", check=False)


def test_the_console_script_is_installed() -> None:
    assert DOCKYARD.is_file(), "pip install -e . installs the dockyard script"
    res = subprocess.run([str(DOCKYARD), "compose", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "up" in res.stdout


def test_up_ps_logs_stop_start_restart_down(compose: Compose) -> None:
    compose.write(
        """\
        services:
          web:
            image: busybox
            command: sh -c 'echo web says $$GREETING; exec sleep 1000'
            environment: {GREETING: "${GREETING:-hi}"}
            stop_grace_period: 1s
            depends_on: [db]
            volumes: [data:/data]
            labels: {tier: front}
          db:
            image: busybox
            command: ["sh", "-c", "echo db up >&2; exec sleep 1000"]
            stop_grace_period: 1s
        volumes:
          data: {}
        """
    )
    (compose.dir / ".env").write_text("GREETING=hello\n")
    up = compose.run("up", "-d")
    n = compose.name
    lines = up.stderr.splitlines()
    for expected in (
        f" Network {n}_default  Created",
        f' Volume "{n}_data"  Created',
        f" Container {n}-db-1  Started",
        f" Container {n}-web-1  Started",
    ):
        assert expected in lines, up.stderr
    assert lines.index(f" Container {n}-db-1  Started") < lines.index(
        f" Container {n}-web-1  Starting"
    )
    assert compose.labelled("container") == [f"{n}-db-1", f"{n}-web-1"]
    assert compose.labelled("network") == [f"{n}_default"]
    assert compose.labelled("volume") == [f"{n}_data"]

    web = compose.inspect(f"{n}-web-1")
    labels = web["Config"]["Labels"]
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "1"
    assert labels["com.docker.compose.oneoff"] == "False"
    assert labels["com.docker.compose.project.working_dir"] == str(compose.dir)
    assert labels["com.docker.compose.depends_on"] == "db:service_started:false"
    assert labels["tier"] == "front"
    assert set(web["NetworkSettings"]["Networks"][f"{n}_default"]["Aliases"]) >= {
        "web",
        f"{n}-web-1",
    }

    ps = compose.run("ps").stdout.splitlines()
    assert ps[0].split()[:4] == ["NAME", "IMAGE", "COMMAND", "SERVICE"]
    assert [line.split()[0] for line in ps[1:]] == [f"{n}-db-1", f"{n}-web-1"]
    assert all("Up" in line for line in ps[1:])

    def logs_have(service: str, text: str) -> bool:
        return text in compose.run("logs", service).stdout

    assert wait_for(lambda: logs_have("web", f"{n}-web-1  | web says hello"))
    assert wait_for(lambda: logs_have("db", "db up"))
    stamped = compose.run("logs", "-t", "--tail", "1", "db").stdout.strip()
    assert stamped.startswith(f"{n}-db-1  | 20") and stamped.endswith("db up")

    stop = compose.run("stop")
    assert stop.stderr.index(f"{n}-web-1  Stopping") < stop.stderr.index(f"{n}-db-1  Stopping")
    assert compose.run("ps").stdout.splitlines()[1:] == []
    assert len(compose.run("ps", "-a").stdout.splitlines()) == 3

    compose.run("start")
    assert len(compose.run("ps", "-q").stdout.split()) == 2
    before = compose.inspect(f"{n}-db-1")["State"]["StartedAt"]
    compose.run("restart", "db")
    assert compose.inspect(f"{n}-db-1")["State"]["StartedAt"] != before

    down = compose.run("down", "-v")
    assert f" Network {n}_default  Removed" in down.stderr.splitlines()
    assert compose.labelled("container") == []
    assert compose.labelled("network") == []
    assert compose.labelled("volume") == []


def test_up_is_idempotent_and_recreates_a_changed_service(compose: Compose) -> None:
    text = """\
        services:
          a: {image: busybox, command: [sleep, "1000"], stop_grace_period: 1s}
          b: {image: busybox, command: [sleep, "1000"], stop_grace_period: 1s}
        """
    compose.write(text)
    compose.run("up", "-d")
    n = compose.name
    ids = {s: compose.inspect(f"{n}-{s}-1")["Id"] for s in "ab"}
    again = compose.run("up", "-d")
    assert f" Container {n}-a-1  Running" in again.stderr.splitlines()
    assert {s: compose.inspect(f"{n}-{s}-1")["Id"] for s in "ab"} == ids

    compose.write(
        text.replace(
            'b: {image: busybox, command: [sleep, "1000"]',
            'b: {image: busybox, command: [sleep, "999"]',
        )
    )
    changed = compose.run("up", "-d")
    assert f" Container {n}-b-1  Recreated" in changed.stderr.splitlines()
    assert compose.inspect(f"{n}-a-1")["Id"] == ids["a"]
    assert compose.inspect(f"{n}-b-1")["Id"] != ids["b"]
    assert compose.inspect(f"{n}-b-1")["Config"]["Cmd"] == ["sleep", "999"]


def test_dependency_conditions_wait_and_failures_name_the_service(compose: Compose) -> None:
    compose.write(
        """\
        services:
          app:
            image: busybox
            command: [sleep, "1000"]
            stop_grace_period: 1s
            depends_on:
              db: {condition: service_healthy}
              migrate: {condition: service_completed_successfully}
          db:
            image: busybox
            command: sh -c 'sleep 1; touch /ready; exec sleep 1000'
            stop_grace_period: 1s
            healthcheck: {test: test -f /ready, interval: 1s, retries: 30}
          migrate:
            image: busybox
            command: [echo, migrated]
        """
    )
    up = compose.run("up", "-d")
    n = compose.name
    lines = up.stderr.splitlines()
    assert lines.index(f" Container {n}-db-1  Healthy") < lines.index(
        f" Container {n}-app-1  Starting"
    )
    assert f" Container {n}-migrate-1  Exited" in lines
    assert compose.inspect(f"{n}-db-1")["State"]["Health"]["Status"] == "healthy"
    assert compose.inspect(f"{n}-app-1")["State"]["Running"]

    compose.write(
        """\
        services:
          app:
            image: busybox
            command: [sleep, "1000"]
            depends_on: {db: {condition: service_healthy}}
          db:
            image: busybox
            command: [sleep, "1000"]
            stop_grace_period: 1s
            healthcheck: {test: ["CMD", "false"], interval: 1s, retries: 1}
        """
    )
    res = compose.run("up", "-d", "--remove-orphans", check=False)
    assert res.returncode == 1
    assert f"error: dependency failed to start: container {n}-db-1 is unhealthy" in res.stderr
    app = compose.eng.docker("inspect", f"{n}-app-1", check=False)
    assert app.returncode == 0 and json.loads(app.stdout)[0]["State"]["Status"] == "created"

    compose.write(
        """\
        services:
          app:
            image: busybox
            depends_on: {job: {condition: service_completed_successfully}}
          job: {image: busybox, command: [sh, -c, "exit 3"]}
        """
    )
    res = compose.run("up", "-d", "--remove-orphans", check=False)
    assert res.returncode == 1
    assert "error: service 'job' didn't complete successfully: exit 3" in res.stderr


def test_up_pulls_a_missing_image_and_publishes_ports(
    compose: Compose, registry_with_images: str
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    image = f"{registry_with_images}/busybox:latest"
    compose.eng.docker("rmi", image, check=False)
    compose.write(
        f"""\
        services:
          web:
            image: {image}
            command: sh -c 'mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www'
            ports: ["127.0.0.1:{port}:80"]
            stop_grace_period: 1s
          probe:
            image: busybox
            command: sh -c 'until wget -qO- http://web/; do sleep 0.2; done'
            depends_on: [web]
        """  # noqa: E501
    )
    up = compose.run("up", "-d")
    assert " web  Pulling" in up.stderr.splitlines() and " web  Pulled" in up.stderr.splitlines()

    def fetch() -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    assert wait_for(lambda: fetch() == "served\n", timeout=20)
    assert f"127.0.0.1:{port}->80/tcp" in compose.run("ps").stdout
    # the service name resolves on the project network (embedded DNS)
    assert wait_for(lambda: "served" in compose.run("logs", "probe").stdout, timeout=20)


def test_foreground_up_streams_logs_until_ctrl_c_stops_the_services(compose: Compose) -> None:
    compose.write(
        """\
        services:
          loop:
            image: busybox
            command: sh -c 'trap "echo bye; exit 0" TERM; echo loop ready; while :; do sleep 0.1; done'
          once:
            image: busybox
            command: [echo, once done]
        """  # noqa: E501
    )
    n = compose.name
    proc = subprocess.Popen(
        compose.argv("up"),
        cwd=compose.dir,
        env=compose.eng.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(90, proc.kill)  # a hung run fails instead of hanging the suite
    watchdog.start()
    try:
        seen: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line.rstrip("\n"))
            if any("loop ready" in s for s in seen) and any(
                "exited with code 0" in s for s in seen
            ):
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = "\n".join(seen) + "\n" + rest
    assert f"{n}-loop-1  | loop ready" in out
    assert f"{n}-once-1  | once done" in out
    assert f"{n}-once-1 exited with code 0" in out
    assert "Gracefully stopping..." in out
    assert f" Container {n}-loop-1  Stopped" in err.splitlines()
    assert not compose.inspect(f"{n}-loop-1")["State"]["Running"]


def test_down_finds_the_project_by_label_without_the_file(compose: Compose) -> None:
    compose.write(
        """\
        services:
          a: {image: busybox, command: [sleep, "1000"], stop_grace_period: 1s}
          gone: {image: busybox, command: [sleep, "1000"], stop_grace_period: 1s}
        networks:
          extra: {}
        """
    )
    compose.run("up", "-d")
    n = compose.name
    compose.write("services:\n  a: {image: busybox, command: [sleep, '1000']}\n")
    warned = compose.run("up", "-d")
    assert f"Found orphan containers ([{n}-gone-1])" in warned.stderr
    (compose.dir / "compose.yaml").unlink()
    assert compose.run("ps", "-q").stdout.split().__len__() == 2
    compose.run("down", "--remove-orphans")
    assert compose.labelled("container") == []
    assert compose.labelled("network") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "services:\n  web:\n    image: busybox\n    ports:\n      - {target: 80, bogus: 1}\n",
            "error: compose.yaml:5: services.web.ports[0]: additional property 'bogus' is not "
            "allowed",
        ),
        (
            "services:\n  web:\n    build: ./app\n",
            "error: service 'web': build context ",  # ./app does not exist
        ),
        (
            "services:\n  web:\n    image: busybox\n    volumes: ['nope:/data']\n",
            "error: compose.yaml:4: services.web.volumes[0]: service refers to undefined volume",
        ),
    ],
)
def test_a_bad_file_is_refused_and_creates_nothing(
    compose: Compose, text: str, message: str
) -> None:
    (compose.dir / "compose.yaml").write_text(text)
    res = compose.run("up", "-d", check=False)
    assert res.returncode == 1
    assert res.stderr.startswith(message), res.stderr
    assert "Traceback" not in res.stderr
    assert compose.labelled("container") == [] and compose.labelled("network") == []


def test_config_prints_the_normalized_interpolated_file(compose: Compose) -> None:
    compose.write(
        """\
        services:
          web:
            image: "busybox:${TAG:-latest}"
            entrypoint: sh -c 'echo hi'
            ports: ["8080:80"]
        """
    )
    out = compose.run("config").stdout
    assert f"name: {compose.name}\n" in out
    assert "image: busybox:latest" in out
    assert "- sh\n    - -c\n    - echo hi" in out
    assert "published: '8080'" in out and "target: 80" in out


def test_unreachable_engine_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a: {image: busybox}\n")
    res = subprocess.run(
        [str(DOCKYARD), "-H", f"unix://{tmp_path}/no.sock", "compose", "ps"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    assert res.stderr.startswith(f"error: cannot connect to the engine at unix://{tmp_path}")


def test_networks_volumes_static_ips_aliases_and_externals(compose: Compose) -> None:
    n = compose.name
    ext_net, ext_vol = f"{n}-outside", f"{n}-keep"
    compose.eng.docker("network", "create", ext_net)
    compose.eng.docker("volume", "create", ext_vol)
    try:
        compose.write(
            f"""\
            services:
              web:
                image: busybox
                command: [sleep, "1000"]
                stop_grace_period: 1s
                networks:
                  front: {{ipv4_address: 10.123.7.50, aliases: [www]}}
                  back: {{}}
                  outside: {{}}
                volumes: [keep:/keep, ./made/here:/here:ro]
              db:
                image: busybox
                command: sh -c 'until ping -c1 -W1 web; do sleep 0.2; done; nslookup www 127.0.0.11; exec sleep 1000'
                stop_grace_period: 1s
                networks: [back]
            networks:
              front:
                ipam: {{config: [{{subnet: 10.123.7.0/24}}]}}
              back: {{internal: true}}
              outside: {{external: true, name: {ext_net}}}
            volumes:
              keep: {{external: true, name: {ext_vol}}}
            """  # noqa: E501
        )
        compose.run("up", "-d")
        nets = compose.inspect(f"{n}-web-1")["NetworkSettings"]["Networks"]
        assert set(nets) == {f"{n}_front", f"{n}_back", ext_net}
        assert nets[f"{n}_front"]["IPAddress"] == "10.123.7.50"
        assert "www" in nets[f"{n}_front"]["Aliases"]
        assert "www" not in nets[f"{n}_back"]["Aliases"]
        back = json.loads(compose.eng.docker("network", "inspect", f"{n}_back").stdout)[0]
        assert back["Internal"] is True
        assert back["Labels"]["com.docker.compose.network"] == "back"
        assert (compose.dir / "made" / "here").is_dir()
        # db reaches web by service name on `back`; `www` is an alias on `front` only (and an
        # internal-only container's unknown names are refused rather than forwarded)
        assert wait_for(lambda: "can't find www" in compose.run("logs", "db").stdout, timeout=20)
        assert "bytes from" in compose.run("logs", "db").stdout

        compose.run("down", "-v")
        assert compose.labelled("network") == []
        networks = compose.eng.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        volumes = compose.eng.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
        assert ext_net in networks and ext_vol in volumes
    finally:
        compose.run("down", check=False)
        compose.eng.docker("network", "rm", ext_net, check=False)
        compose.eng.docker("volume", "rm", ext_vol, check=False)


def test_a_missing_external_network_is_a_clear_error(compose: Compose) -> None:
    compose.write(
        """\
        services:
          a: {image: busybox, networks: [ext]}
        networks:
          ext: {external: true, name: no-such-net}
        """
    )
    res = compose.run("up", "-d", check=False)
    assert res.returncode == 1
    assert "error: network no-such-net declared as external, but could not be found" in res.stderr
    assert compose.labelled("container") == []
