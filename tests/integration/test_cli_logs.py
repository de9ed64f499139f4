"""Acceptance: `docker logs` options and json-file rotation through the real docker CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess


@pytest.fixture(scope="module")
def eng(shared_engine: EngineProcess, registry_with_images: str) -> Iterator[EngineProcess]:
    shared_engine.docker("pull", f"{registry_with_images}/busybox")
    shared_engine.docker("tag", f"{registry_with_images}/busybox", "busybox")
    yield shared_engine


def _stamp(line: str) -> tuple[datetime, str]:
    """Split a `docker logs -t` line into its RFC3339Nano time and its text."""
    stamp, _, text = line.partition(" ")
    base, _, frac = stamp.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(base + "." + (frac + "000000")[:6] + "+00:00")
    return moment, text


def test_logs_timestamps_tail_since_until(eng: EngineProcess) -> None:
    script = "echo one; echo two >&2; sleep 1.1; echo three; echo four >&2"
    eng.docker("run", "--name", "lg1", "busybox", "sh", "-c", script)
    try:
        plain = eng.docker("logs", "lg1")
        assert plain.stdout == "one\nthree\n" and plain.stderr == "two\nfour\n"
        stamped = eng.docker("logs", "-t", "lg1")
        lines = sorted(
            (_stamp(x) for x in (stamped.stdout + stamped.stderr).splitlines()),
            key=lambda pair: pair[0],
        )
        assert [text for _, text in lines] == ["one", "two", "three", "four"]
        assert lines[2][0] > lines[1][0]
        tail = eng.docker("logs", "--tail", "1", "lg1")
        assert tail.stdout + tail.stderr == "four\n"
        assert eng.docker("logs", "--tail", "0", "lg1").stdout == ""
        gap = lines[1][0] + (lines[2][0] - lines[1][0]) / 2
        since = eng.docker("logs", "--since", gap.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "lg1")
        assert since.stdout == "three\n" and since.stderr == "four\n"
        until = eng.docker("logs", "--until", gap.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "lg1")
        assert until.stdout == "one\n" and until.stderr == "two\n"
        both = eng.docker(
            "logs", "--since", "1", "--until", gap.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "lg1"
        )
        assert both.stdout == "one\n"
        bad = eng.docker("logs", "--tail", "lots", "lg1", check=False)
        assert bad.returncode != 0
    finally:
        eng.docker("rm", "-f", "lg1", check=False)


def test_json_file_rotation_keeps_the_newest_lines(eng: EngineProcess) -> None:
    script = 'i=1; while [ $i -le 400 ]; do echo "line-$i padding padding"; i=$((i+1)); done'
    eng.docker(
        "run",
        "--name",
        "rot1",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        script,
    )
    try:
        info = json.loads(eng.docker("inspect", "rot1").stdout)[0]
        assert info["HostConfig"]["LogConfig"] == {
            "Type": "json-file",
            "Config": {"max-size": "1k", "max-file": "3"},
        }
        log = Path(info["LogPath"])
        files = sorted(p.name for p in log.parent.glob(log.name + "*"))
        assert files == [log.name, log.name + ".1", log.name + ".2"]
        for name in files:
            size = (log.parent / name).stat().st_size
            assert size <= 1024 + 200  # at most one record past the limit
        lines = eng.docker("logs", "rot1").stdout.splitlines()
        assert lines and lines[-1] == "line-400 padding padding"
        numbers = [int(x.split()[0].removeprefix("line-")) for x in lines]
        assert numbers == list(range(numbers[0], 401))  # in order, no gaps
        assert numbers[0] > 1  # the oldest lines were rotated away
        assert eng.docker("logs", "--tail", "2", "rot1").stdout.splitlines() == [
            "line-399 padding padding",
            "line-400 padding padding",
        ]
    finally:
        eng.docker("rm", "-f", "rot1", check=False)


def test_follow_across_rotation_loses_nothing(eng: EngineProcess) -> None:
    script = (
        'i=1; while [ $i -le 300 ]; do echo "n-$i pad pad pad"; i=$((i+1)); '
        "[ $((i % 20)) -eq 0 ] && sleep 0.05; done"
    )
    eng.docker(
        "run",
        "-d",
        "--name",
        "rot2",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=5",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; " + script,
    )
    try:
        out = eng.docker("logs", "-f", "rot2", timeout=60).stdout.splitlines()
        numbers = [int(x.split()[0].removeprefix("n-")) for x in out]
        assert numbers == list(range(numbers[0], 301))
        assert numbers[0] == 1 or len(numbers) > 50
    finally:
        eng.docker("rm", "-f", "rot2", check=False)
