"""`ports.allow_all_interfaces`: the YAML round trip, bad values refused with the field,
`dockyard machine set` and the create options, and the forwarder following the file."""

from __future__ import annotations

import json
import threading
from pathlib import Path, PurePosixPath

import paramiko
import pytest
import yaml

from app import cli
from machine import config, filenames, paths, portforward
from machine.errors import ConfigError


@pytest.fixture
def host(tmp_path: Path) -> paths.Host:
    return paths.Host("linux", PurePosixPath("/nonexistent"), {"DOCKYARD_HOME": str(tmp_path)})


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path / "home"


def no_session() -> paramiko.Transport:
    raise AssertionError("reading the setting opens no SSH session")


def forwarder(directory: Path, allow_all: bool | None = None) -> portforward.PortForwarder:
    return portforward.PortForwarder(directory, directory / "no.sock", no_session, None, allow_all)


def saved(host: paths.Host, allow: bool) -> Path:
    cfg = config.new("m", backend="native", ports=config.Ports(allow_all_interfaces=allow))
    return config.save(host, cfg)


def test_default_is_loopback_and_the_setting_round_trips(host: paths.Host) -> None:
    assert config.new("m", backend="native").ports == config.Ports(False)
    path = saved(host, True)
    assert yaml.safe_load(path.read_text())["ports"] == {"allow_all_interfaces": True}
    assert config.load(host, "m").ports.allow_all_interfaces is True
    assert config.read_ports(path.parent) == config.Ports(True)


def test_a_config_without_the_section_is_loopback_only(host: paths.Host) -> None:
    path = saved(host, True)
    doc = yaml.safe_load(path.read_text())
    del doc["ports"]
    path.write_text(yaml.safe_dump(doc))
    assert config.load(host, "m").ports == config.Ports(False)
    assert config.read_ports(path.parent) == config.Ports(False)
    assert config.read_ports(path.parent / "nowhere") == config.Ports(False)


@pytest.mark.parametrize(
    ("ports", "words"),
    [
        ("yes", "ports: give a mapping with allow_all_interfaces"),
        ({"allow_all": True}, "ports: give a mapping with allow_all_interfaces"),
        ({"allow_all_interfaces": "yes"}, "allow_all_interfaces 'yes' is not true or false"),
        ({"allow_all_interfaces": 1}, "allow_all_interfaces 1 is not true or false"),
    ],
)
def test_bad_values_name_the_field_and_change_nothing(
    host: paths.Host, ports: object, words: str
) -> None:
    path = saved(host, False)
    doc = yaml.safe_load(path.read_text())
    doc["ports"] = ports
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=words) as e:
        config.load(host, "m")
    assert str(path) in e.value.message
    with pytest.raises(ConfigError, match=words):
        config.read_ports(path.parent)
    assert yaml.safe_load(path.read_text())["ports"] == ports  # the file is the user's


def test_the_forwarder_reads_the_setting_and_logs_changes_and_problems(
    host: paths.Host,
) -> None:
    path = saved(host, False)
    pf = forwarder(path.parent)
    assert pf.allows_all() is False
    saved(host, True)
    assert pf.allows_all() is True
    path.write_text(
        path.read_text().replace("allow_all_interfaces: true", "allow_all_interfaces: 2")
    )
    assert pf.allows_all() is False  # unreadable: loopback, the safe side
    lines = [json.loads(x) for x in (path.parent / filenames.PORTS_LOG).read_text().splitlines()]
    assert [(e["event"], e["allow_all_interfaces"]) for e in lines] == [
        ("ports-setting", True),
        ("ports-setting", False),
    ]
    assert "is not true or false" in lines[1]["reason"]
    fixed = forwarder(path.parent, True)
    assert fixed.allows_all() is True


def test_the_forwarder_resyncs_when_the_yaml_is_saved(host: paths.Host) -> None:
    path = saved(host, False)
    pf = forwarder(path.parent)
    watcher = threading.Thread(target=pf._watch_config, daemon=True)
    watcher.start()
    try:
        assert not pf._wake.wait(2.5 * portforward.CONFIG_CHECK_S)
        saved(host, True)
        assert pf._wake.wait(10)
    finally:
        pf._stop.set()
        watcher.join(10)


def test_set_saves_the_setting_and_ports_shows_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["machine", "create", "m", "--disk", "1", "--publish-all-interfaces"]) == 0
    assert config.read_ports(home / "m").allow_all_interfaces is True
    capsys.readouterr()
    assert cli.main(["machine", "set", "m", "--no-publish-all-interfaces"]) == 0
    assert "listen on 127.0.0.1 only" in capsys.readouterr().out
    assert config.read_ports(home / "m").allow_all_interfaces is False
    assert cli.main(["machine", "ports", "m"]) == 0
    out = capsys.readouterr().out
    assert "dockyard machine set m --publish-all-interfaces" in out


def test_set_without_a_setting_and_a_conflicting_start_are_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["machine", "create", "m", "--disk", "1"]) == 0
    before = (home / "m" / filenames.CONFIG).read_text()
    capsys.readouterr()
    assert cli.main(["machine", "set", "m"]) == 1
    assert "nothing to set" in capsys.readouterr().err
    assert cli.main(["machine", "start", "m", "--publish-all-interfaces"]) == 1
    err = capsys.readouterr().err
    assert "exists with ports.allow_all_interfaces: false" in err
    assert "dockyard machine set m --publish-all-interfaces" in err
    assert cli.main(["machine", "set", "ghost", "--publish-all-interfaces"]) == 1
    assert "no machine named 'ghost'" in capsys.readouterr().err
    assert (home / "m" / filenames.CONFIG).read_text() == before
