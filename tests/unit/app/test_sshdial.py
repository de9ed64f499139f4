"""The pure halves of app/sshdial.py: ssh:// addresses as the docker CLI reads them, the
login settings ~/.ssh/config gives, the remote command, and the failure messages."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from app.engine_client import EngineClient, EngineError
from app.sshdial import SshSettings, SshUrl, parse_url, remote_failure, settings_for

HOME = Path("/home/me")


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch) -> None:
    """paramiko expands IdentityFile's ~ itself, from HOME."""
    monkeypatch.setenv("HOME", str(HOME))


def test_addresses_are_parsed_like_the_docker_cli() -> None:
    assert parse_url("ssh://box") == SshUrl("box")
    assert parse_url("ssh://me@box:2222") == SshUrl("box", "me", 2222)
    assert parse_url("ssh://me@box/run/user/1000/docker.sock") == SshUrl(
        "box", "me", None, "/run/user/1000/docker.sock"
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ssh://me:secret@box", "a password in the address is not supported"),
        ("ssh://box?x=1", "query parameters and fragments are not allowed"),
        ("ssh://box#frag", "query parameters and fragments are not allowed"),
        ("ssh://", "the host name is empty"),
        ("ssh://box:notaport", "Port could not be cast"),
    ],
)
def test_bad_addresses_say_why_and_the_form(url: str, why: str) -> None:
    with pytest.raises(EngineError, match=why) as info:
        parse_url(url)
    assert "ssh://[USER@]HOST[:PORT]" in info.value.message


def test_a_bad_address_fails_at_the_first_call_not_later() -> None:
    with pytest.raises(EngineError, match="a password in the address"):
        EngineClient("ssh://me:pw@box").get("/_ping")


def test_the_remote_command_is_dial_stdio_with_the_path_as_its_host() -> None:
    assert SshUrl("box").remote_command() == "docker system dial-stdio"
    assert SshUrl("box", path="/").remote_command() == "docker system dial-stdio"
    assert (
        SshUrl("box", path="/tmp/my dir/d.sock").remote_command()
        == "docker '--host=unix:///tmp/my dir/d.sock' system dial-stdio"
    )


CONFIG = """
Host box
  HostName 10.0.0.7
  Port 2200
  User admin
  IdentityFile ~/.ssh/box_key
  IdentitiesOnly yes
  UserKnownHostsFile ~/.ssh/box_hosts
  GlobalKnownHostsFile /dev/null
  ConnectTimeout 5
  ServerAliveInterval 30
  ProxyCommand nc -X 5 -x proxy:1080 %h %p

Host jumpy
  ProxyJump bastion
"""


def settings(url: str, text: str = CONFIG) -> SshSettings:
    return settings_for(parse_url(url), paramiko.SSHConfig.from_text(text), HOME, "me")


def test_the_ssh_config_applies_and_the_url_wins_over_it() -> None:
    assert settings("ssh://box") == SshSettings(
        hostname="10.0.0.7",
        port=2200,
        user="admin",
        identity_files=("/home/me/.ssh/box_key",),
        identities_only=True,
        known_hosts=("/home/me/.ssh/box_hosts",),
        connect_timeout=5.0,
        keepalive=30,
        proxy_command="nc -X 5 -x proxy:1080 10.0.0.7 2200",
    )
    over = settings("ssh://root@box:22")
    assert (over.user, over.port, over.hostname) == ("root", 22, "10.0.0.7")


def test_without_config_the_defaults_are_sshs() -> None:
    s = settings("ssh://other", "")
    assert (s.hostname, s.port, s.user, s.identity_files, s.proxy_command) == (
        "other",
        22,
        "me",
        (),
        "",
    )
    assert s.known_hosts == (
        "/home/me/.ssh/known_hosts",
        "/home/me/.ssh/known_hosts2",
        "/etc/ssh/ssh_known_hosts",
        "/etc/ssh/ssh_known_hosts2",
    )


def test_proxyjump_is_refused_with_the_proxycommand_to_use() -> None:
    with pytest.raises(EngineError, match=r"ProxyCommand ssh -W %h:%p bastion"):
        settings("ssh://jumpy")


def test_the_remote_commands_exit_explains_the_failure() -> None:
    url = "ssh://box"
    missing = remote_failure(url, 127, b"bash: line 1: docker: command not found\n")
    assert missing is not None
    assert "the remote has no `docker` command" in missing.message
    assert "docker: command not found" in missing.message
    down = remote_failure(url, 1, b"Cannot connect to the Docker daemon\n")
    assert down is not None and "exit status 1: Cannot connect to the Docker daemon" in down.message
    assert "`docker version` works in an SSH session there" in down.message
    assert remote_failure(url, 0, b"") is None  # it ended cleanly: the engine closed
    assert remote_failure(url, -1, b"") is None  # no status: nothing to add
