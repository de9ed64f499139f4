"""The datapath for real: netns, bridges and veths over rtnetlink, as root.

Most tests run inside a throwaway stand-in for the host's netns (tests/netsandbox.py),
so `ip -o link` before and after compare exactly while other engines run on the host.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from engine.network import datapath, netns
from engine.network.netlink import Netlink
from tests.netsandbox import connect, inside, isolated_host, link_names

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

BR = "dybr0"


def _netns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_two_netns_on_one_bridge_talk_and_leave_nothing() -> None:
    with isolated_host() as box:
        before = link_names()
        a, b = box.netns("a"), box.netns("b")
        datapath.ensure_bridge(BR, "10.20.0.1", 24)
        datapath.ensure_bridge(BR, "10.20.0.1", 24)  # idempotent
        datapath.attach(a, BR, "dyva", "eth0", "02:42:0a:14:00:02", "10.20.0.2", 24, "10.20.0.1")
        datapath.attach(b, BR, "dyvb", "eth0", "02:42:0a:14:00:03", "10.20.0.3", 24, None)
        # attach returns only once the wire passes traffic: a packet sent into a
        # link the kernel has not activated yet is dropped.
        with Netlink() as nl:
            assert all(nl.require_link(n).operational for n in (BR, "dyva", "dyvb"))
        assert "state UP" in inside(a, "ip", "-o", "link", "show", "eth0")

        assert connect(b, a, "10.20.0.2") == "10.20.0.3"
        assert connect(a, b, "10.20.0.3") == "10.20.0.2"
        assert "default via 10.20.0.1 dev eth0" in inside(a, "ip", "route")
        assert "default" not in inside(b, "ip", "route")
        addr = inside(a, "ip", "-o", "-4", "addr", "show", "eth0")
        assert "inet 10.20.0.2/24 brd 10.20.0.255" in addr
        link = inside(a, "ip", "-o", "link", "show", "eth0")
        assert "link/ether 02:42:0a:14:00:02" in link and "UP" in link
        assert sorted(datapath.ports(BR)) == ["dyva", "dyvb"]
        assert {"dyva", "dyvb", BR} <= set(datapath.link_names())

        datapath.detach("dyva")
        datapath.detach("dyvb")
        datapath.detach("dyvb")  # idempotent
        assert "eth0" not in inside(a, "ip", "-o", "link")
        datapath.remove_bridge(BR)
        datapath.remove_bridge(BR)
        assert link_names() == before


def test_bridge_mtu_and_address_and_veth_follows_it() -> None:
    with isolated_host() as box:
        a = box.netns("a")
        datapath.ensure_bridge(BR, "10.21.0.1", 16, mtu=1400)
        datapath.attach(a, BR, "dyva", "eth1", "", "10.21.3.4", 16, "10.21.0.1")
        with Netlink() as nl:
            br = nl.require_link(BR)
            assert br.kind == "bridge" and br.up and br.mtu == 1400
            assert nl.addresses(br.index) == [("10.21.0.1", 16)]
            assert nl.require_link("dyva").master == br.index
        assert "mtu 1400" in inside(a, "ip", "-o", "link", "show", "eth1")
        # A changed MTU is applied to an existing bridge.
        datapath.ensure_bridge(BR, "10.21.0.1", 16, mtu=1500)
        with Netlink() as nl:
            assert nl.require_link(BR).mtu == 1500


def test_bad_attach_is_a_clean_oserror_that_leaves_nothing() -> None:
    with isolated_host() as box:
        a = box.netns("a")
        datapath.ensure_bridge(BR, "10.22.0.1", 24)
        before, inner = link_names(), inside(a, "ip", "-o", "link")

        with pytest.raises(OSError, match="no bridge named 'nope'") as e:
            datapath.attach(a, "nope", "dyva", "eth0", "", "10.22.0.2", 24, None)
        assert e.value.errno == errno.ENODEV
        with pytest.raises(OSError, match="invalid interface name") as e:
            datapath.attach(a, BR, "dyv-name-far-too-long", "eth0", "", "10.22.0.2", 24, None)
        assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError, match="invalid MAC"):
            datapath.attach(a, BR, "dyva", "eth0", "02:42", "10.22.0.2", 24, None)
        with pytest.raises(OSError, match="invalid IPv4"):
            datapath.attach(a, BR, "dyva", "eth0", "", "10.22.0.300", 24, None)
        with pytest.raises(OSError, match="no network namespace"):
            datapath.attach(box.root / "missing", BR, "dyva", "eth0", "", "10.22.0.2", 24, None)
        # A step after the veth exists fails: the veth is rolled back.
        with pytest.raises(OSError, match=r"default route via 10\.99\.0\.1 on eth0") as e:
            datapath.attach(a, BR, "dyva", "eth0", "", "10.22.0.2", 24, "10.99.0.1")
        assert e.value.errno == errno.ENETUNREACH
        assert link_names() == before
        assert inside(a, "ip", "-o", "link") == inner


def test_taken_names_fail_without_touching_the_owner() -> None:
    with isolated_host() as box:
        a = box.netns("a")
        datapath.ensure_bridge(BR, "10.23.0.1", 24)
        datapath.attach(a, BR, "dyva", "eth0", "", "10.23.0.2", 24, None)
        with pytest.raises(OSError) as e:  # host end taken
            datapath.attach(box.netns("b"), BR, "dyva", "eth0", "", "10.23.0.3", 24, None)
        assert e.value.errno == errno.EEXIST
        with pytest.raises(OSError) as e:  # name inside the netns taken
            datapath.attach(a, BR, "dyvb", "eth0", "", "10.23.0.4", 24, None)
        assert e.value.errno == errno.EEXIST
        assert "dyvb" not in datapath.link_names()
        assert connect(a, a, "10.23.0.2") == "10.23.0.2"  # the first veth still works
        # Wrong kinds are refused, not deleted.
        with pytest.raises(OSError, match="not a bridge; left alone"):
            datapath.remove_bridge("dyva")
        with pytest.raises(OSError, match="not a veth; left alone"):
            datapath.detach(BR)
        with pytest.raises(OSError, match="not a bridge"):
            datapath.ensure_bridge("dyva", "10.24.0.1", 24)
        assert {"dyva", BR} <= set(datapath.link_names())


def test_a_failed_bridge_setup_removes_the_bridge_it_made() -> None:
    with isolated_host():
        before = link_names()
        with pytest.raises(OSError):
            datapath.ensure_bridge(BR, "10.25.0.1", 24, mtu=70000)
        with pytest.raises(OSError, match="invalid prefix length"):
            datapath.ensure_bridge(BR, "10.25.0.1", 40)
        assert link_names() == before


def test_netns_lifecycle_and_entered_always_restores(tmp_path: Path) -> None:
    path = tmp_path / "ns"
    mine = _netns_inode()
    try:
        netns.create(path)
        assert netns.exists(path)
        with pytest.raises(OSError) as e:
            netns.create(path)
        assert e.value.errno == errno.EEXIST
        with netns.entered(path):
            assert _netns_inode() == os.stat(path).st_ino != mine
            assert datapath.link_names() == ["lo"]
            with Netlink() as nl:
                assert nl.require_link("lo").up
        assert _netns_inode() == mine
        with pytest.raises(RuntimeError), netns.entered(path):
            raise RuntimeError("boom")
        assert _netns_inode() == mine
        with pytest.raises(OSError, match="no network namespace"), netns.entered(tmp_path / "x"):
            pass
        (tmp_path / "plain").write_text("")
        plain = tmp_path / "plain"
        with pytest.raises(OSError, match="enter network namespace"), netns.entered(plain):
            pass
        assert _netns_inode() == mine
        assert not netns.exists(tmp_path / "plain")
    finally:
        netns.remove(path)
    netns.remove(path)  # idempotent
    assert not path.exists() and not netns.exists(path)


def test_on_the_real_host_namespace_our_links_come_and_go(tmp_path: Path) -> None:
    """The same calls against the machine's own netns, with names unique to this run."""
    tag = f"{os.getpid() % 100000:05d}"
    br, veth, ns = f"dyt{tag}", f"dyvt{tag}", tmp_path / "c"
    try:
        netns.create(ns)
        datapath.ensure_bridge(br, "10.251.77.1", 30)
        datapath.attach(ns, br, veth, "eth0", "", "10.251.77.2", 30, "10.251.77.1")
        assert {br, veth} <= set(datapath.link_names())
        assert "default via 10.251.77.1" in inside(ns, "ip", "route")
    finally:
        datapath.detach(veth)
        datapath.remove_bridge(br)
        netns.remove(ns)
    assert not {br, veth} & set(datapath.link_names())
