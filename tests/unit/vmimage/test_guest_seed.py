"""The guest's seed helper: what it accepts, what it refuses, and the files it writes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import pathmodule

GUEST = Path(__file__).resolve().parents[3] / "vmimage" / "guest"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


seed = pathmodule.load("guest_seed", GUEST / "seed.py")


def good() -> dict[str, Any]:
    return {
        "version": 1,
        "hostname": "dockyard",
        "authorized_keys": ["ssh-ed25519 AAAA dockyard-host"],
        "host_key": KEY,
        "engine_args": ["--insecure-registry", "10.0.2.2:5000", "it's quoted"],
        "shares": [
            {"tag": "share0", "guest_path": "/Users/x y", "mode": "9p", "readonly": True},
            {"tag": "share1", "guest_path": "/home/a", "mode": "virtiofs"},
        ],
        "time": 1700000000,
        "data_device_serial": "dockyard-data",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "version"),
        ({"hostname": "bad host"}, "host name"),
        ({"authorized_keys": []}, "no authorized_keys"),
        ({"authorized_keys": ["a\nb"]}, "authorized_keys"),
        ({"host_key": "not a key"}, "host_key"),
        ({"engine_args": "--debug"}, "engine_args"),
        ({"shares": [{"tag": "a;b", "guest_path": "/x"}]}, "share tag"),
        ({"shares": [{"tag": "a", "guest_path": "rel"}]}, "absolute"),
        ({"shares": [{"tag": "a", "guest_path": "/x", "mode": "nfs"}]}, "mode"),
        ({"time": "now"}, "time"),
        ({"checkpoint": "yes"}, "checkpoint"),
    ],
)
def test_bad_seeds_are_refused_by_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(seed.SeedError, match=message):
        seed.check({**good(), **change})


def test_seed_read_from_fw_cfg_file_with_padding(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.write_bytes(json.dumps(good()).encode() + b"\0" * 64)
    assert seed.read_seed((str(raw),))["hostname"] == "dockyard"
    raw.write_bytes(b"{not json")
    with pytest.raises(seed.SeedError, match="not JSON"):
        seed.read_seed((str(raw),))
    with pytest.raises(seed.SeedError, match="-fw_cfg name=opt/dockyard/seed"):
        seed.read_seed((str(tmp_path / "absent"),))


def test_apply_writes_keys_args_and_shares(tmp_path: Path) -> None:
    root = str(tmp_path) + "/"
    seed.apply(seed.check(good()), root=root, set_system=False)
    keys = tmp_path / "root/.ssh/authorized_keys"
    assert keys.read_text() == "ssh-ed25519 AAAA dockyard-host\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    hostkey = tmp_path / "etc/ssh/ssh_host_ed25519_key"
    assert hostkey.read_text() == KEY and stat.S_IMODE(hostkey.stat().st_mode) == 0o600
    assert (tmp_path / "run/dockyard/data-serial").read_text() == "dockyard-data\n"
    # The engine arguments come back exactly through the shell's `set --`.
    script = f'. {tmp_path}/run/dockyard/engine.args; printf "%s\\n" "$@"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == good()["engine_args"]
    shares = (tmp_path / "run/dockyard/shares.sh").read_text()
    assert (
        "mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=mmap,ro share0" in shares
    )
    assert "'/Users/x y'" in shares
    assert "mount -t virtiofs -o rw share1 /home/a" in shares
    subprocess.run(["sh", "-n", "-c", shares], check=True)
    assert not (tmp_path / "run/dockyard/checkpoint").exists()


def test_a_seed_with_checkpoint_tells_boot_sh_to_park(tmp_path: Path) -> None:
    """boot.sh parks at its checkpoint only when told: the virtio port itself shows up
    some time after its driver loads, too late to be asked."""
    seed.apply(seed.check({**good(), "checkpoint": True}), root=f"{tmp_path}/", set_system=False)
    assert (tmp_path / "run/dockyard/checkpoint").exists()


def test_main_reports_a_bad_seed(tmp_path: Path) -> None:
    """Run as boot.sh runs it: a failure leaves a one-line reason for the fail marker."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import seed;"
        "seed.SEED_PATHS = (sys.argv[2],);"
        "seed.write = (lambda w: lambda p, t, m=0o644: w(p.replace('/run', sys.argv[3]), t, m))"
        "(seed.write); sys.exit(seed.main())"
    )
    (tmp_path / "raw").write_text(json.dumps({**good(), "host_key": "x"}))
    proc = subprocess.run(
        [sys.executable, "-c", code, str(GUEST), str(tmp_path / "raw"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "host_key" in (tmp_path / "dockyard/seed.error").read_text()
    assert not os.path.exists(tmp_path / "dockyard/seed.done")
