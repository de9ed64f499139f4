"""The port forwarder's bookkeeping without a VM: container lists in, forwards and diffs out."""

from __future__ import annotations

from typing import Any

from machine import portplan
from machine.portplan import FAILED, LISTENING, Forward, ForwardState


def container(name: str, *ports: dict[str, Any], state: str = "running") -> dict[str, Any]:
    return {"Id": name * 8, "Names": [f"/{name}"], "State": state, "Ports": list(ports)}


def port(public: int, private: int = 80, ip: str = "10.0.2.15", proto: str = "tcp") -> Any:
    return {"IP": ip, "PrivatePort": private, "PublicPort": public, "Type": proto}


def test_default_publish_listens_on_host_loopback_and_targets_the_guest_address() -> None:
    (fwd,) = portplan.desired([container("web", port(8080))])
    assert fwd == Forward("web" * 8, "web", "tcp", "127.0.0.1", 8080, "10.0.2.15", 8080)
    assert fwd.label() == "127.0.0.1:8080/tcp"


def test_wildcard_publish_is_loopback_unless_all_interfaces_are_allowed() -> None:
    both = [container("web", port(80, ip="0.0.0.0"), port(80, ip="::"))]
    (fwd,) = portplan.desired(both)  # Docker lists IPv4 and IPv6: one host key
    assert (fwd.host_ip, fwd.guest_ip) == ("127.0.0.1", "127.0.0.1")
    (fwd,) = portplan.desired(both, allow_all=True)
    assert fwd.host_ip == "0.0.0.0"


def test_a_bare_publish_listens_on_every_interface_only_when_allowed() -> None:
    """A bare `-p 8080:80` is listed on the guest engine's --ip (10.0.2.15): no address
    asked for, so the machine's setting decides; the guest target stays for hostfwd."""
    (fwd,) = portplan.desired([container("web", port(8080))], allow_all=True)
    assert (fwd.host_ip, fwd.guest_ip) == ("0.0.0.0", "10.0.2.15")
    assert portplan.host_address("10.0.2.15", allow_all=False) == "127.0.0.1"
    assert portplan.host_address("127.0.0.3", allow_all=True) == "127.0.0.3"


def test_loopback_request_is_kept_and_other_addresses_fall_back_to_loopback() -> None:
    got = portplan.desired([container("a", port(1, ip="127.0.0.2"), port(2, ip="192.0.2.7"))])
    assert [(f.host_ip, f.guest_ip) for f in got] == [
        ("127.0.0.1", "192.0.2.7"),
        ("127.0.0.2", "127.0.0.2"),
    ]
    got = portplan.desired([container("a", port(2, ip="192.0.2.7"))], allow_all=True)
    assert got[0].host_ip == "127.0.0.1"  # a specific non-loopback address is never widened


def test_unpublished_and_stopped_containers_have_no_forwards() -> None:
    exposed = {"PrivatePort": 80, "Type": "tcp"}
    got = portplan.desired(
        [container("a", exposed), container("b", port(9000), state="exited"), container("c")]
    )
    assert got == []


def test_udp_and_tcp_on_one_port_are_two_forwards() -> None:
    got = portplan.desired([container("dns", port(53, 53), port(53, 53, proto="udp"))])
    assert sorted(f.proto for f in got) == ["tcp", "udp"]


def test_a_host_key_two_containers_want_goes_to_the_first_by_name() -> None:
    got = portplan.desired(
        [container("zeta", port(80, ip="127.0.0.1")), container("alpha", port(80))]
    )
    assert [f.container for f in got] == ["alpha"]


def test_diff_adds_removes_and_replaces_a_changed_target() -> None:
    a = Forward("a", "a", "tcp", "127.0.0.1", 1, "10.0.2.15", 1)
    b = Forward("b", "b", "tcp", "127.0.0.1", 2, "10.0.2.15", 2)
    b2 = Forward("b2", "b2", "tcp", "127.0.0.1", 2, "10.0.2.15", 2)
    c = Forward("c", "c", "udp", "127.0.0.1", 3, "10.0.2.15", 3)
    plan = portplan.diff([a, b], [b2, c])
    assert plan.remove == [a, b]
    assert plan.add == [b2, c]
    assert portplan.diff([a, b], [b, a]) == portplan.Plan([], [])


def test_events_to_forwards_to_diff_over_a_container_lifecycle() -> None:
    started = [container("web", port(8080))]
    first = portplan.desired(started)
    assert portplan.diff([], first).add == first
    died = [container("web", port(8080), state="exited")]
    assert portplan.diff(first, portplan.desired(died)).remove == first


def test_failed_forwards_still_wanted_are_retried() -> None:
    a = Forward("a", "a", "tcp", "127.0.0.1", 1, "10.0.2.15", 1)
    gone = Forward("g", "g", "tcp", "127.0.0.1", 2, "10.0.2.15", 2)
    states = [ForwardState(a, FAILED, "taken"), ForwardState(gone, FAILED, "taken")]
    assert portplan.retry_failed(states, [a]) == [a]


def test_state_round_trips_through_its_file_form() -> None:
    s = ForwardState(
        Forward("i", "web", "udp", "127.0.0.1", 53, "10.0.2.15", 53), LISTENING, "", "qmp"
    )
    assert ForwardState.from_dict(s.as_dict()) == s
