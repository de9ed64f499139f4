"""The host's resolv.conf: what the embedded DNS forwards to and which search domains it strips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.network import resolvconf
from engine.network.resolvconf import HostResolvConf, ResolvConf

CASES = {
    "empty": ("", ResolvConf()),
    "servers add up": (
        "nameserver 10.0.0.1\nnameserver ::1\n",
        ResolvConf(["10.0.0.1", "::1"], [], []),
    ),
    "last search or domain wins": (
        "search a.example B.example.\ndomain c.example\n",
        ResolvConf([], ["c.example"], []),
    ),
    "comments and junk": (
        "# nameserver 1.1.1.1\n; x\nnameserver 127.0.0.53 # stub\nnameserver\nbogus line\n",
        ResolvConf(["127.0.0.53"], [], []),
    ),
    "options": (
        "options ndots:2 edns0\noptions rotate\n",
        ResolvConf([], [], ["ndots:2", "edns0", "rotate"]),
    ),
}


@pytest.mark.parametrize(("text", "want"), CASES.values(), ids=CASES.keys())
def test_parse(text: str, want: ResolvConf) -> None:
    assert resolvconf.parse(text) == want


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    host = HostResolvConf(path)
    assert host.upstreams() == []  # missing: no upstreams, no error
    path.write_text("nameserver 10.0.0.1\n")
    assert host.upstreams() == [("10.0.0.1", 53)]
    tmp = tmp_path / "new"
    tmp.write_text("nameserver 10.0.0.2\nsearch corp\n")
    os.replace(tmp, path)  # how DHCP clients replace it
    assert host.upstreams() == [("10.0.0.2", 53)] and host.current().search == ["corp"]
