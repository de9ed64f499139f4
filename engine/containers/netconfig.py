"""A create request's networking, checked and turned into the container's endpoints.

Docker splits it over three places (`HostConfig.NetworkMode`, `HostConfig.Links`
and `NetworkingConfig.EndpointsConfig`) and refuses many combinations with
messages clients and users know; they are all decided here, before create makes
anything, so a refused request leaves nothing behind. Network and container
lookups are passed in, which keeps this module free of the stores.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, Protocol

from engine.errors import InvalidParameter, NotFound
from engine.network.model import BRIDGE, Endpoint, Network

DEFAULT_MODES = ("", "default", "bridge")

# Docker's own wording (runconfig/errors.go), which users search for.
SHARED_NETWORK = (
    "container sharing network namespace with another container or host "
    "cannot be connected to any other network"
)
HOST_NETWORK = "container cannot be disconnected from host network or connected to host network"
NO_NETWORK = (
    "container cannot be connected to multiple networks with one of the networks in private "
    "(none) mode"
)
ALIAS_ON_DEFAULT = "network-scoped alias is supported only for containers in user defined networks"
IP_ON_DEFAULT = "user specified IP address is supported on user defined networks only"
CONTAINER_MODE_CONFLICTS = (
    ("Hostname", "conflicting options: hostname and the network mode"),
    ("Dns", "conflicting options: dns and the network mode"),
    ("ExtraHosts", "conflicting options: custom host-to-IP mapping and the network mode"),
    ("PortBindings", "conflicting options: port publishing and the container type network mode"),
    ("PublishAllPorts", "conflicting options: port publishing and the container type network mode"),
    ("ExposedPorts", "conflicting options: port exposing and the container type network mode"),
    ("MacAddress", "conflicting options: mac-address and the network mode"),
    (
        "Links",
        "conflicting options: container type network can't be used with links. "
        "This would result in undefined behavior",
    ),
)
HOST_LINKS = (
    "conflicting options: host type networking can't be used with links. "
    "This would result in undefined behavior"
)


class NetworkLookup(Protocol):
    def get(self, ref: str) -> Network: ...


def mode_of(host_config: dict[str, Any]) -> str:
    return str(host_config.get("NetworkMode") or "default")


def joined_container(host_config: dict[str, Any]) -> str:
    """The name or id after `container:`, or "" for every other mode."""
    mode = mode_of(host_config)
    if not mode.startswith("container:"):
        return ""
    target = mode.partition(":")[2]
    if not target:
        raise InvalidParameter("invalid network mode: invalid container format container:<name|id>")
    return target


def runtime_mode(host_config: dict[str, Any]) -> str:
    """The spec's network_mode: "host" shares the host's; everything else gets or joins its own."""
    return "host" if mode_of(host_config) == "host" else "none"


def endpoints(
    body: dict[str, Any],
    host_config: dict[str, Any],
    networks: NetworkLookup,
    container_exists: Callable[[str], object],
) -> dict[str, Endpoint]:
    """Network name -> configured endpoint, the NetworkMode's network first.

    `container_exists(ref)` raises NotFound for an unknown container."""
    configs = _endpoint_configs(body)
    links = _links(host_config)
    target = joined_container(host_config)
    if target:
        _check_container_mode(body, host_config, configs)
        container_exists(target)
        return {}
    mode = mode_of(host_config)
    primary = networks.get("bridge" if mode in DEFAULT_MODES else mode)
    # The CLI names the default network "default" in EndpointsConfig too.
    nets = [primary] + [networks.get("bridge" if r in DEFAULT_MODES else r) for r in configs]
    ordered: dict[str, Network] = {n.name: n for n in nets}
    _check_builtin_mix(list(ordered.values()))
    if links and primary.driver != BRIDGE:
        raise InvalidParameter(HOST_LINKS)
    for link in links:
        _check_link_target(link, container_exists)
    out: dict[str, Endpoint] = {}
    for net in ordered.values():
        keys = (net.name, net.id, mode, "default") if net is primary else (net.name, net.id)
        cfg = next((configs[k] for k in keys if k in configs), {})
        out[net.name] = endpoint(net, cfg)
    if links:
        out[primary.name].links = [*links, *out[primary.name].links]
    return out


def endpoint(net: Network, cfg: dict[str, Any]) -> Endpoint:
    """One network's endpoint from its EndpointsConfig entry (`docker network connect`
    sends the same shape)."""
    if not isinstance(cfg, dict):
        raise InvalidParameter(f"endpoint config for network {net.name} must be a JSON object")
    aliases = _strings(cfg.get("Aliases"), "Aliases")
    links = [_normal_link(x) for x in _strings(cfg.get("Links"), "Links")]
    ipam = cfg.get("IPAMConfig") or {}
    if not isinstance(ipam, dict):
        raise InvalidParameter("IPAMConfig must be a JSON object")
    static_ip = str(ipam.get("IPv4Address") or "")
    if net.builtin and aliases:
        raise InvalidParameter(ALIAS_ON_DEFAULT)
    if static_ip:
        _check_static_ip(net, static_ip)
    return Endpoint(
        network_id=net.id,
        network_name=net.name,
        aliases=aliases,
        links=links,
        static_ip=static_ip,
    )


def _check_static_ip(net: Network, ip: str) -> None:
    if net.builtin:
        raise InvalidParameter(IP_ON_DEFAULT)
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        raise InvalidParameter(f"invalid IPv4 address: {ip}") from None
    pool = net.ip_range or net.subnet
    if not pool or addr not in ipaddress.IPv4Network(pool, strict=False):
        raise InvalidParameter(
            f"invalid endpoint settings: no configured subnet or ip-range contain "
            f"the IP address {ip} (network {net.name} has {pool or 'none'})"
        )


def _endpoint_configs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nc = body.get("NetworkingConfig")
    nc = {} if nc is None else nc
    if not isinstance(nc, dict):
        raise InvalidParameter("NetworkingConfig must be a JSON object")
    configs = nc.get("EndpointsConfig")
    configs = {} if configs is None else configs
    if not isinstance(configs, dict):
        raise InvalidParameter(
            "NetworkingConfig.EndpointsConfig must be a JSON object: {network name: settings}"
        )
    return {str(k): v or {} for k, v in configs.items()}


def _check_container_mode(
    body: dict[str, Any], host_config: dict[str, Any], configs: dict[str, dict[str, Any]]
) -> None:
    for key, message in CONTAINER_MODE_CONFLICTS:
        if body.get(key) or host_config.get(key):
            raise InvalidParameter(message)
    if configs:
        raise InvalidParameter(SHARED_NETWORK)


def _check_builtin_mix(nets: list[Network]) -> None:
    if len(nets) < 2:
        return
    if any(n.driver == "host" for n in nets):
        raise InvalidParameter(HOST_NETWORK)
    if any(n.driver == "null" for n in nets):
        raise InvalidParameter(NO_NETWORK)


def _links(host_config: dict[str, Any]) -> list[str]:
    return [_normal_link(x) for x in _strings(host_config.get("Links"), "HostConfig.Links")]


def _normal_link(text: str) -> str:
    """ "web", "web:db", "/web:/me/db" -> "web:alias" (the CLI sends the last form too)."""
    name, _, alias = text.partition(":")
    name = name.strip("/")
    alias = alias.rsplit("/", 1)[-1] or name
    if not name:
        raise InvalidParameter(f"invalid link {text!r}: use name:alias")
    return f"{name}:{alias}"


def _check_link_target(link: str, container_exists: Callable[[str], object]) -> None:
    name = link.partition(":")[0]
    try:
        container_exists(name)
    except NotFound as exc:
        # As Docker: a bad link is the request's fault (a 404 would read as a missing image).
        raise InvalidParameter(f"could not get container for {name}: {exc.message}") from None


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"{what} must be a list of strings")
    return [v for v in value if v]
