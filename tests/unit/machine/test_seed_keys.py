"""The seed document and the machine's keys."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import paramiko

from machine import filenames, keys, seed
from machine.backend import ShareSpec


def test_seed_document_follows_the_contract() -> None:
    doc = seed.build(
        "dockyard",
        ["ssh-ed25519 AAAA dockyard-host"],
        "-----BEGIN OPENSSH PRIVATE KEY-----\n...",
        ["--insecure-registry", "10.0.2.2:5000"],
        [ShareSpec(Path("/Users/x"), "/Users/x", "9p", False)],
        1234.9,
    )
    assert doc == {
        "version": 1,
        "hostname": "dockyard",
        "authorized_keys": ["ssh-ed25519 AAAA dockyard-host"],
        "host_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n...",
        "engine_args": ["--insecure-registry", "10.0.2.2:5000"],
        "shares": [{"tag": "share0", "guest_path": "/Users/x", "mode": "9p", "readonly": False}],
        "time": 1234,
        "data_device_serial": "dockyard-data",
        "checkpoint": False,
    }


def test_keys_are_private_loadable_and_stable(tmp_path: Path) -> None:
    keys.ensure(tmp_path)
    for name in (filenames.SSH_KEY, filenames.HOST_KEY, filenames.SSH_KEY_PUB):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    client = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / filenames.SSH_KEY))
    assert keys.client_public(tmp_path).startswith(f"ssh-ed25519 {client.get_base64()} ")
    host = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / filenames.HOST_KEY))
    assert keys.pinned_host_key(tmp_path) == f"ssh-ed25519 {host.get_base64()}"
    before = keys.pinned_host_key(tmp_path)
    keys.ensure(tmp_path)
    assert keys.pinned_host_key(tmp_path) == before


def test_seed_written_0600_with_the_machine_keys(tmp_path: Path) -> None:
    keys.ensure(tmp_path)
    path = seed.write(tmp_path, ["--debug"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["authorized_keys"] == [keys.client_public(tmp_path)]
    assert doc["host_key"] == keys.host_private(tmp_path)
    assert doc["engine_args"] == ["--debug"]
    assert doc["checkpoint"] is False
    assert json.loads(seed.write(tmp_path, [], checkpoint=True).read_text())["checkpoint"] is True
