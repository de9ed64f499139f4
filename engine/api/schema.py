"""Type checks of request bodies, before any verb sees them.

Docker's daemon decodes JSON into Go structs, so a string where an int64 is
expected is refused with a 400 before anything happens. The verbs here take
plain dicts and trust their shapes, so without this module `"Memory": "lots"`
would surface as a Python TypeError (a 500) or, worse, be iterated character
by character (`"Env": "A=B"`). Each check names the field, the expected type
and what was given, so the user knows what to fix. Semantic checks that need
nothing but the request (signals, capabilities, ulimits, resource ranges) run
here too, so a refused create writes nothing.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterable
from typing import Any

from engine.cgroups import validate as resources_check
from engine.containers.create import resources as resources_of
from engine.errors import InvalidParameter
from engine.runtime import capabilities
from engine.runtime.init import RLIMITS

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_SIGNAL = 64

Check = Callable[[str, Any], None]


def _kind(value: Any) -> str:
    """The JSON name of a decoded value, as the user wrote it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _refuse(field: str, expected: str, value: Any) -> InvalidParameter:
    shown = "" if isinstance(value, (dict, list)) else f" {value!r}"
    return InvalidParameter(f"invalid {field}: expected {expected}, got {_kind(value)}{shown}")


def is_int(value: Any) -> bool:
    """An int64 as Go decodes it: no booleans, no fractions, no NaN, no overflow."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return False
        value = int(value)
    return isinstance(value, int) and INT64_MIN <= value <= INT64_MAX


def check_int(field: str, value: Any) -> None:
    if value is not None and not is_int(value):
        raise _refuse(field, "an integer (64-bit)", value)


def check_nonneg_int(field: str, value: Any) -> None:
    check_int(field, value)
    if value is not None and value < 0:
        raise InvalidParameter(f"invalid {field}: {value} is negative; give 0 or more")


def check_bool(field: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise _refuse(field, "true or false", value)


def check_str(field: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise _refuse(field, "a string", value)


def check_str_list(field: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise _refuse(field, "an array of strings", value)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _refuse(f"{field}[{i}]", "a string", item)


def check_command(field: str, value: Any) -> None:
    """Cmd and Entrypoint: Docker's strslice takes a string or an array of strings."""
    if not isinstance(value, str):
        check_str_list(field, value)


def check_object(field: str, value: Any) -> None:
    if value is not None and not isinstance(value, dict):
        raise _refuse(field, "a JSON object", value)


def check_str_map(field: str, value: Any) -> None:
    check_object(field, value)
    for key, item in (value or {}).items():
        if not isinstance(item, str):
            raise _refuse(f"{field}[{key!r}]", "a string", item)


def check_object_list(field: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise _refuse(field, "an array of objects", value)
    for i, item in enumerate(value):
        check_object(f"{field}[{i}]", item)
        if item is None:
            raise _refuse(f"{field}[{i}]", "a JSON object", item)


CONFIG_FIELDS: dict[str, Check] = {
    "Hostname": check_str,
    "Domainname": check_str,
    "User": check_str,
    "WorkingDir": check_str,
    "StopSignal": check_str,
    "Image": check_str,
    "AttachStdin": check_bool,
    "AttachStdout": check_bool,
    "AttachStderr": check_bool,
    "Tty": check_bool,
    "OpenStdin": check_bool,
    "StdinOnce": check_bool,
    "NetworkDisabled": check_bool,
    "ArgsEscaped": check_bool,
    "Env": check_str_list,
    "Cmd": check_command,
    "Entrypoint": check_command,
    "Labels": check_str_map,
    "Volumes": check_object,
    "ExposedPorts": check_object,
    "Healthcheck": check_object,
    "StopTimeout": check_int,
    "HostConfig": check_object,
    "NetworkingConfig": check_object,
}

HOST_CONFIG_FIELDS: dict[str, Check] = {
    "Binds": check_str_list,
    "Links": check_str_list,
    "VolumesFrom": check_str_list,
    "CapAdd": check_command,
    "CapDrop": check_command,
    "Dns": check_str_list,
    "DnsOptions": check_str_list,
    "DnsSearch": check_str_list,
    "ExtraHosts": check_str_list,
    "GroupAdd": check_str_list,
    "SecurityOpt": check_str_list,
    "MaskedPaths": check_str_list,
    "ReadonlyPaths": check_str_list,
    "NetworkMode": check_str,
    "IpcMode": check_str,
    "PidMode": check_str,
    "UTSMode": check_str,
    "UsernsMode": check_str,
    "CgroupnsMode": check_str,
    "CgroupParent": check_str,
    "Runtime": check_str,
    "CpusetCpus": check_str,
    "CpusetMems": check_str,
    "VolumeDriver": check_str,
    "AutoRemove": check_bool,
    "Privileged": check_bool,
    "PublishAllPorts": check_bool,
    "ReadonlyRootfs": check_bool,
    "Init": check_bool,
    "OomKillDisable": check_bool,
    "Memory": check_int,
    "MemorySwap": check_int,
    "MemoryReservation": check_nonneg_int,
    "NanoCpus": check_int,
    "CpuShares": check_nonneg_int,
    "CpuQuota": check_int,
    "CpuPeriod": check_nonneg_int,
    "CpuRealtimePeriod": check_nonneg_int,
    "CpuRealtimeRuntime": check_nonneg_int,
    "BlkioWeight": check_nonneg_int,
    "PidsLimit": check_int,
    "OomScoreAdj": check_int,
    "ShmSize": check_nonneg_int,
    "MemorySwappiness": check_int,
    "Tmpfs": check_str_map,
    "Sysctls": check_str_map,
    "StorageOpt": check_str_map,
    "PortBindings": check_object,
    "LogConfig": check_object,
    "RestartPolicy": check_object,
    "Mounts": check_object_list,
    "Ulimits": check_object_list,
    "Devices": check_object_list,
}


def _check_fields(prefix: str, body: dict[str, Any], fields: dict[str, Check]) -> None:
    for key, check in fields.items():
        if key in body:
            check(prefix + key, body[key])


def check_signal(field: str, value: str) -> int:
    """`SIGTERM`, `TERM`, `15`: a signal the kernel knows, or a 400 naming the field."""
    text = value.strip().upper()
    if text.isdigit():
        number = int(text)
        if 0 < number <= MAX_SIGNAL:
            return number
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        if name in signal.Signals.__members__:
            return int(signal.Signals[name])
    raise InvalidParameter(
        f"invalid {field}: {value!r} is not a signal; give a name such as SIGTERM or a "
        f"number from 1 to {MAX_SIGNAL}"
    )


def _check_restart_policy(policy: dict[str, Any]) -> None:
    check_str("HostConfig.RestartPolicy.Name", policy.get("Name"))
    check_nonneg_int("HostConfig.RestartPolicy.MaximumRetryCount", policy.get("MaximumRetryCount"))


def _check_log_config(log_config: dict[str, Any]) -> None:
    check_str("HostConfig.LogConfig.Type", log_config.get("Type"))
    check_str_map("HostConfig.LogConfig.Config", log_config.get("Config"))


def _check_mounts(mounts: Iterable[dict[str, Any]]) -> None:
    for i, m in enumerate(mounts):
        field = f"HostConfig.Mounts[{i}]"
        for key in ("Type", "Source", "Target", "Consistency"):
            check_str(f"{field}.{key}", m.get(key))
        check_bool(f"{field}.ReadOnly", m.get("ReadOnly"))
        for key in ("BindOptions", "VolumeOptions", "TmpfsOptions"):
            check_object(f"{field}.{key}", m.get(key))
        tmpfs = m.get("TmpfsOptions") or {}
        check_nonneg_int(f"{field}.TmpfsOptions.SizeBytes", tmpfs.get("SizeBytes"))
        check_nonneg_int(f"{field}.TmpfsOptions.Mode", tmpfs.get("Mode"))


def _check_ulimits(ulimits: Iterable[dict[str, Any]]) -> None:
    for i, u in enumerate(ulimits):
        field = f"HostConfig.Ulimits[{i}]"
        name = u.get("Name")
        if not isinstance(name, str) or name not in RLIMITS:
            raise InvalidParameter(
                f"invalid {field}.Name: {name!r} is not a ulimit; use one of "
                f"{', '.join(sorted(RLIMITS))}"
            )
        check_int(f"{field}.Soft", u.get("Soft"))
        check_int(f"{field}.Hard", u.get("Hard"))
        soft, hard = int(u.get("Soft") or 0), int(u.get("Hard") or 0)
        if soft > hard >= 0:
            raise InvalidParameter(
                f"invalid ulimit {name}: soft limit {soft} is above hard limit {hard}"
            )


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def check_create(body: dict[str, Any]) -> None:
    """A container create body, checked as Docker's decoder and validators would."""
    _check_fields("", body, CONFIG_FIELDS)
    if body.get("StopSignal"):
        check_signal("StopSignal", body["StopSignal"])
    hc = body.get("HostConfig") or {}
    _check_fields("HostConfig.", hc, HOST_CONFIG_FIELDS)
    _check_restart_policy(hc.get("RestartPolicy") or {})
    _check_log_config(hc.get("LogConfig") or {})
    _check_mounts(hc.get("Mounts") or [])
    _check_ulimits(hc.get("Ulimits") or [])
    for cap in _as_list(hc.get("CapAdd")) + _as_list(hc.get("CapDrop")):
        capabilities.normalize(cap)
    _check_console_size("HostConfig.ConsoleSize", hc.get("ConsoleSize"))
    resources_check.validate(resources_of(hc))


EXEC_FIELDS: dict[str, Check] = {
    "Cmd": check_command,
    "Env": check_str_list,
    "WorkingDir": check_str,
    "User": check_str,
    "DetachKeys": check_str,
    "Tty": check_bool,
    "AttachStdin": check_bool,
    "AttachStdout": check_bool,
    "AttachStderr": check_bool,
    "Privileged": check_bool,
    "Detach": check_bool,
}


def check_exec(body: dict[str, Any]) -> None:
    _check_fields("", body, EXEC_FIELDS)
    _check_console_size("ConsoleSize", body.get("ConsoleSize"))


def _check_console_size(field: str, size: Any) -> None:
    if size is not None and not (
        isinstance(size, list) and len(size) == 2 and all(is_int(v) and v >= 0 for v in size)
    ):
        raise _refuse(field, "[height, width] of two integers >= 0", size)


VOLUME_FIELDS: dict[str, Check] = {
    "Name": check_str,
    "Driver": check_str,
    "Labels": check_str_map,
    "DriverOpts": check_str_map,
}


def check_volume_create(body: dict[str, Any]) -> None:
    _check_fields("", body, VOLUME_FIELDS)


def filters(raw: Any, allowed: Iterable[str] | None) -> dict[str, list[str]]:
    """Docker's `filters` query value, in either shape (`{"k": ["v"]}` or the old
    `{"k": {"v": true}}`), with keys checked against what the endpoint knows
    (`allowed` None leaves the key check to the caller)."""
    if raw in (None, "", {}):
        return {}
    if not isinstance(raw, dict):
        raise InvalidParameter(
            f'invalid filters: expected a JSON object such as {{"name": ["web"]}}, got {_kind(raw)}'
        )
    known = None if allowed is None else set(allowed)
    out: dict[str, list[str]] = {}
    for key, values in raw.items():
        if known is not None and key not in known:
            raise InvalidParameter(
                f"invalid filter '{key}': this endpoint filters on {', '.join(sorted(known))}"
            )
        if isinstance(values, dict):
            values = list(values)
        elif isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidParameter(
                f'invalid filter \'{key}\': values must be strings, as in {{"{key}": ["value"]}}'
            )
        out[key] = values
    return out


NETWORK_FIELDS: dict[str, Check] = {
    "Name": check_str,
    "Driver": check_str,
    "Scope": check_str,
    "Internal": check_bool,
    "Attachable": check_bool,
    "Ingress": check_bool,
    "ConfigOnly": check_bool,
    "EnableIPv4": check_bool,
    "EnableIPv6": check_bool,
    "CheckDuplicate": check_bool,
    "Labels": check_str_map,
    "Options": check_str_map,
    "ConfigFrom": check_object,
    "IPAM": check_object,
}

IPAM_FIELDS: dict[str, Check] = {
    "Driver": check_str,
    "Options": check_str_map,
    "Config": check_object_list,
}

IPAM_CONFIG_FIELDS: dict[str, Check] = {
    "Subnet": check_str,
    "IPRange": check_str,
    "Gateway": check_str,
    "AuxiliaryAddresses": check_str_map,
}

NETWORK_DRIVERS = ("bridge",)


def check_network_create(body: dict[str, Any]) -> None:
    """A network create body: the types, then what only bridge networks on one host allow."""
    _check_fields("", body, NETWORK_FIELDS)
    ipam = body.get("IPAM") or {}
    _check_fields("IPAM.", ipam, IPAM_FIELDS)
    configs = ipam.get("Config") or []
    for i, cfg in enumerate(configs):
        _check_fields(f"IPAM.Config[{i}].", cfg, IPAM_CONFIG_FIELDS)
    driver = body.get("Driver") or "bridge"
    if driver not in NETWORK_DRIVERS:
        raise InvalidParameter(
            f'network driver "{driver}" is not supported: create networks with the bridge '
            "driver (the host and none networks exist already)"
        )
    _refuse_network_features(body, ipam)
    if len(configs) > 1:
        raise InvalidParameter("a network takes one IPv4 subnet: give one --subnet")
    if any(":" in str(cfg.get(k) or "") for cfg in configs for k in IPAM_CONFIG_FIELDS):
        raise InvalidParameter("IPv6 is not supported: give IPv4 subnets, ranges and gateways")
    if any(cfg.get("AuxiliaryAddresses") for cfg in configs):
        raise InvalidParameter("auxiliary addresses (--aux-address) are not supported")


def _refuse_network_features(body: dict[str, Any], ipam: dict[str, Any]) -> None:
    refused = (
        (body.get("EnableIPv6") is True, "IPv6 networks are not supported: leave out --ipv6"),
        (body.get("EnableIPv4") is False, "a network without IPv4 is not supported"),
        (body.get("Ingress") is True, "ingress networks need swarm mode, which is not supported"),
        (body.get("ConfigOnly") is True, "config-only networks are not supported"),
        (
            bool((body.get("ConfigFrom") or {}).get("Network")),
            "networks configured from another network (--config-from) are not supported",
        ),
        (
            str(body.get("Scope") or "local") != "local",
            f"scope {body.get('Scope')!r} is not supported: networks are local",
        ),
        (
            str(ipam.get("Driver") or "default") != "default",
            f"IPAM driver {ipam.get('Driver')!r} is not supported: use the default one",
        ),
        (bool(ipam.get("Options")), "IPAM driver options (--ipam-opt) are not supported"),
    )
    for bad, message in refused:
        if bad:
            raise InvalidParameter(message)


ENDPOINT_FIELDS: dict[str, Check] = {
    "Aliases": check_str_list,
    "Links": check_str_list,
    "DriverOpts": check_str_map,
    "IPAMConfig": check_object,
    "NetworkID": check_str,
    "MacAddress": check_str,
}


def check_network_connect(body: dict[str, Any]) -> None:
    """POST /networks/{id}/connect and /disconnect: Container, EndpointConfig, Force."""
    check_str("Container", body.get("Container"))
    if not body.get("Container"):
        raise InvalidParameter("Container is missing: give the container's name or id")
    check_bool("Force", body.get("Force"))
    check_object("EndpointConfig", body.get("EndpointConfig"))
    endpoint = body.get("EndpointConfig") or {}
    _check_fields("EndpointConfig.", endpoint, ENDPOINT_FIELDS)
    ipam = endpoint.get("IPAMConfig") or {}
    check_str("EndpointConfig.IPAMConfig.IPv4Address", ipam.get("IPv4Address"))
    if ipam.get("IPv6Address"):
        raise InvalidParameter("IPv6 is not supported: leave out --ip6")
