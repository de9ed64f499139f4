"""`dockyard machine`: argument parsing, and the errors a user sees before anything runs
(bad values are refused with the field and a hint, and leave nothing behind)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from app import cli, machine_cli
from machine import bootstate, filenames

needs_native = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="creating a native machine needs Linux and root",
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path / "home"


def test_start_options_parse() -> None:
    args = cli.parser().parse_args(
        [
            "machine",
            "start",
            "dev",
            "--backend",
            "native",
            "--cpus",
            "2",
            "--memory",
            "2GiB",
            "--disk",
            "30",
            "--engine-arg=--bridge=dy9",
            "--engine-arg=--ip=127.0.0.1",
        ]
    )
    assert (args.area, args.verb, args.name, args.backend) == ("machine", "start", "dev", "native")
    assert (args.cpus, args.memory, args.disk) == (2, "2GiB", "30")
    assert args.engine_args == ["--bridge=dy9", "--ip=127.0.0.1"]


@pytest.mark.parametrize("verb", ["create", "start", "stop", "restart", "status", "logs", "rm"])
def test_name_defaults_to_default(verb: str) -> None:
    args = cli.parser().parse_args(["machine", verb])
    assert args.name == "default"


@pytest.mark.parametrize(
    ("argv", "name", "command"),
    [
        ([], "default", []),
        (["m"], "m", []),
        (["--", "uname", "-a"], "default", ["uname", "-a"]),
        (["m", "--", "uname", "-a"], "m", ["uname", "-a"]),
        (["m", "uname", "-a"], "m", ["uname", "-a"]),
        (["--", "ls", "--", "x"], "default", ["ls", "--", "x"]),
    ],
)
def test_ssh_takes_an_optional_name_and_a_command(
    argv: list[str], name: str, command: list[str]
) -> None:
    args = cli.parser().parse_args(["machine", "ssh", *argv])
    assert machine_cli.ssh_words(args.words) == (name, command)


def test_unknown_backend_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["machine", "create", "--backend", "vbox"])
    assert "invalid choice: 'vbox'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--memory", "lots"], "memory: 'lots' is not a size"),
        (["--cpus", "0"], "cpus: 0 is out of range"),
        (["--disk", "0"], "disk: 0GiB is out of range"),
        (["--ssh-port", "80"], "ssh_port: 80 is out of range"),
    ],
)
def test_bad_create_values_fail_cleanly_and_write_nothing(
    home: Path, args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["machine", "create", "m", "--backend", "native", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: config: ") and words in err and "Traceback" not in err
    assert not (home / "m").exists()


def test_bad_name_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["machine", "create", "Bad/Name", "--backend", "native"]) == 1
    assert "machine name 'Bad/Name' is not allowed" in capsys.readouterr().err
    assert not home.exists() or not any(home.iterdir())


@pytest.mark.parametrize("verb", ["stop", "status", "logs", "rm", "ssh"])
def test_missing_machine_says_how_to_create_it(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["machine", verb, "ghost"]) == 1
    err = capsys.readouterr().err
    assert "no machine named 'ghost'" in err
    assert "dockyard machine create ghost" in err


@needs_native
def test_create_then_conflicting_start_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["machine", "create", "m", "--backend", "native"]) == 0
    before = (home / "m" / "machine.yaml").read_text()
    assert cli.main(["machine", "create", "m", "--backend", "native"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["machine", "start", "m", "--backend", "qemu"]) == 1
    err = capsys.readouterr().err
    assert "exists with other backend" in err and "dockyard machine rm m" in err
    assert (home / "m" / "machine.yaml").read_text() == before


@needs_native
def test_status_ls_and_rm_of_a_stopped_machine(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["machine", "create", "m", "--backend", "native"]) == 0
    capsys.readouterr()
    assert cli.main(["machine", "status", "m"]) == 0
    assert "machine m: stopped" in capsys.readouterr().out
    assert cli.main(["machine", "ls"]) == 0
    assert "native" in capsys.readouterr().out
    assert cli.main(["machine", "ssh", "m"]) == 1
    assert "no guest" in capsys.readouterr().err
    assert cli.main(["machine", "rm", "m"]) == 0
    assert not (home / "m").exists()


def test_status_names_the_saved_boot_and_start_fresh_discards_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A qemu machine with a saved boot state: status says so (and why not, when QEMU
    refused one); `start --fresh` drops it before the boot. The boot itself fails here on
    purpose (no image at the path given), after the state is gone."""
    assert cli.main(["machine", "create", "q", "--image", str(home / "no-image")]) == 0
    directory = home / "q"
    (directory / filenames.BOOT_STATE).write_bytes(b"x" * 2**20)
    bootstate.record(directory, bootstate.Meta("k", True, size=2**20))
    capsys.readouterr()
    assert cli.main(["machine", "status", "q"]) == 0
    assert "saved boot: 1 MiB, used when the seed and VM are unchanged" in capsys.readouterr().out
    assert cli.main(["machine", "start", "q", "--fresh"]) == 1
    assert "no usable guest image" in capsys.readouterr().err
    assert not (directory / filenames.BOOT_STATE).exists()
    bootstate.record(directory, bootstate.Meta("k", False, "vhost-user-fs: no migration"))
    assert cli.main(["machine", "status", "q", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["saved_boot"] == "none, every start boots afresh: vhost-user-fs: no migration"
