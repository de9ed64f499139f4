"""The containers page's pure parts: rows from list entries, actions, terminals, CPU%."""

from __future__ import annotations

from app.gui.models.container_row import (
    ContainerRow,
    human_duration,
    port_links,
    row_from_summary,
    started_from_status,
)
from app.gui.pages.containers_actions import calls_for, enabled_actions, pause_verb
from app.gui.terminal import manual_command, terminal_argv
from app.gui.workers.stats import cpu_percent


def row(state: str, cid: str = "a" * 64, ports: bool = False) -> ContainerRow:
    links = port_links([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}])
    return ContainerRow(cid, "n", "busybox", state, "", links if ports else [])


def test_rows_from_list_entries() -> None:
    doc = {
        "Id": "b" * 64,
        "Names": ["/web"],
        "Image": "nginx",
        "State": "running",
        "Status": "Up 5 minutes (healthy)",
        "Ports": [
            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"IP": "10.1.2.3", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
            {"PrivatePort": 443, "Type": "tcp"},
        ],
        "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"},
    }
    r = row_from_summary(doc, now=1000.0)
    assert (r.name, r.project, r.service, r.started_at) == ("web", "shop", "web", 700.0)
    assert [(p.text, p.url) for p in r.ports] == [
        ("10.1.2.3:5353", ""),
        ("localhost:8080", "http://localhost:8080"),
    ]
    assert r.status_text(now=1000.0 + 3600) == "Up About an hour (healthy)"
    exited = row_from_summary({**doc, "State": "exited", "Status": "Exited (1) 2 hours ago"})
    assert exited.started_at is None and exited.status_text() == "Exited (1) 2 hours ago"


def test_start_times_and_durations_in_dockers_words() -> None:
    assert started_from_status("Up Less than a second", 50.0) == 50.0
    assert started_from_status("Up About a minute", 100.0) == 40.0
    assert started_from_status("Up 3 hours (Paused)", 20000.0) == 20000.0 - 3 * 3600
    assert started_from_status("Up 1 second", 10.0) == 9.0
    assert started_from_status("Created", 10.0) is None
    assert [human_duration(s) for s in (0.5, 1, 59, 60, 3599, 3600, 86400 * 3)] == [
        "Less than a second",
        "1 second",
        "59 seconds",
        "About a minute",
        "59 minutes",
        "About an hour",
        "3 days",
    ]


def test_actions_follow_the_selection() -> None:
    assert enabled_actions([]) == set()
    assert enabled_actions([row("exited")]) == {"start", "remove", "logs", "inspect"}
    running = enabled_actions([row("running", ports=True)])
    assert running == {
        "stop",
        "restart",
        "pause",
        "remove",
        "logs",
        "inspect",
        "terminal",
        "browse",
    }
    both = [row("running", "1" * 64), row("exited", "2" * 64)]
    assert enabled_actions(both) == {"start", "stop", "restart", "pause", "remove"}
    assert calls_for("start", both) == [("POST", f"/containers/{'2' * 64}/start", {})]
    assert calls_for("stop", both) == [("POST", f"/containers/{'1' * 64}/stop", {})]
    assert [c[0] for c in calls_for("remove", both)] == ["DELETE", "DELETE"]
    paused = [row("paused", "3" * 64), row("running", "4" * 64)]
    assert pause_verb(paused) == "pause"
    assert calls_for("pause", paused) == [("POST", f"/containers/{'4' * 64}/pause", {})]
    assert pause_verb(paused[:1]) == "unpause"


def test_terminal_commands() -> None:
    have = {"gnome-terminal", "xterm"}

    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if name in have else None

    cid, host = "c" * 64, "unix:///tmp/x y/docker.sock"
    inner = ["docker", "exec", "-it", cid, "sh"]
    assert terminal_argv(cid, host, {}, which, "linux") == ["gnome-terminal", "--", *inner]
    assert terminal_argv(cid, host, {"TERMINAL": "xterm"}, which, "linux") == [
        "xterm",
        "-e",
        *inner,
    ]
    assert terminal_argv(cid, host, {}, lambda _n: None, "linux") is None
    mac = terminal_argv(cid, host, {}, which, "darwin")
    assert mac is not None and mac[0] == "osascript" and cid in mac[2]
    assert manual_command(cid, host) == f"DOCKER_HOST='{host}' docker exec -it {cid} sh"


def test_cpu_percent_from_two_samples() -> None:
    assert cpu_percent(None, (10, 100), 2) is None
    assert cpu_percent((0, 0), (50, 100), 2) == 100.0
    assert cpu_percent((5, 100), (5, 100), 4) == 0.0
