"""The normalized project: every short form expanded, so the verbs read one shape.

The service mappings keep compose's canonical key names (what `dockyard compose config`
prints and what the config hash is computed over): `command`/`entrypoint` as lists,
`environment`/`labels` as mappings, `ports`/`volumes` in long syntax, `networks` and
`depends_on` as mappings. Mistakes found here (a port that is not a number, a volume or
network that is not declared, a dependency on an unknown service) name file, line and key.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.compose import envfile
from app.compose.errors import ComposeError
from app.compose.loader import KeyPath, as_mapping

Where = Callable[[KeyPath], str]
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_PORT = re.compile(
    r"^(?:(?P<ip>\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):)?(?:(?P<host>[0-9-]*):)?"
    r"(?P<target>[0-9]+(?:-[0-9]+)?)(?:/(?P<proto>tcp|udp|sctp))?$"
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


@dataclass
class Project:
    name: str
    working_dir: Path
    config_files: list[Path]
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """What `config` prints: name first, then the three sections."""
        out: dict[str, Any] = {"name": self.name, "services": self.services}
        if self.networks:
            out["networks"] = self.networks
        if self.volumes:
            out["volumes"] = self.volumes
        return out


def normalize(
    data: dict[str, Any],
    name: str,
    working_dir: Path,
    files: list[Path],
    env: Mapping[str, str],
    where: Where,
) -> Project:
    """The project from the merged document (already interpolated and schema-valid)."""
    project = Project(name, working_dir, files)
    project.volumes = {k: _volume(k, v or {}, name) for k, v in (data.get("volumes") or {}).items()}
    declared_nets = data.get("networks") or {}
    project.networks = {k: _network(k, v or {}, name) for k, v in declared_nets.items()}
    services = data.get("services") or {}
    for svc, raw in services.items():
        project.services[svc] = _service(svc, raw or {}, project, env, where)
    uses_default = any(
        "default" in s["networks"] for s in project.services.values() if "network_mode" not in s
    )
    if uses_default and "default" not in project.networks:
        project.networks["default"] = _network("default", {}, name)
    _check_references(project, where)
    return project


def _volume(key: str, raw: dict[str, Any], project: str) -> dict[str, Any]:
    out = dict(raw)
    external = out.get("external")
    if isinstance(external, dict):
        out["external"] = True
        out.setdefault("name", external.get("name", key))
    out["name"] = out.get("name") or (key if out.get("external") else f"{project}_{key}")
    if out.get("labels") is not None:
        out["labels"] = _str_map(out["labels"])
    return out


def _network(key: str, raw: dict[str, Any], project: str) -> dict[str, Any]:
    out = _volume(key, raw, project)
    if not out.get("external"):
        out.setdefault("driver", "bridge")
    return out


def _service(
    svc: str, raw: dict[str, Any], project: Project, env: Mapping[str, str], where: Where
) -> dict[str, Any]:
    at: Callable[..., str] = lambda *k: where(("services", svc, *k))  # noqa: E731
    if not raw.get("image") and "build" not in raw:
        raise ComposeError(f"{at()}: service {svc!r} has neither an image nor a build context")
    out = {k: v for k, v in raw.items() if k != "build" and not k.startswith("x-")}
    if "build" in raw:
        out["build"] = _build(raw["build"], project.working_dir, env, lambda *k: at("build", *k))
        out["image"] = raw.get("image") or default_image(project.name, svc)
    for key in ("command", "entrypoint"):
        if isinstance(out.get(key), str):
            out[key] = shlex.split(out[key])
    out["environment"] = _environment(raw, project.working_dir, env, at)
    out["labels"] = _str_map(raw.get("labels") or {})
    out["ports"] = [
        p for i, item in enumerate(raw.get("ports") or []) for p in _ports(item, at("ports", i))
    ]
    out["volumes"] = [
        _mount(v, project, at("volumes", i)) for i, v in enumerate(raw.get("volumes") or [])
    ]
    if "network_mode" not in raw:
        out["networks"] = _service_networks(raw.get("networks"))
    out["depends_on"] = _depends_on(raw.get("depends_on"))
    if "healthcheck" in raw:
        out["healthcheck"] = _healthcheck(raw["healthcheck"], lambda *k: at("healthcheck", *k))
    if "restart" in raw:
        _restart_policy(raw["restart"], at("restart"))
    for key in ("extra_hosts", "dns", "dns_search", "tmpfs"):
        if isinstance(out.get(key), str):
            out[key] = [out[key]]
    if isinstance(out.get("extra_hosts"), dict):
        out["extra_hosts"] = [
            f"{h}:{ip}"
            for h, ips in out["extra_hosts"].items()
            for ip in (ips if isinstance(ips, list) else [ips])
        ]
    return {k: v for k, v in out.items() if v not in ({}, [], None) or k in ("networks",)}


def default_image(project: str, service: str) -> str:
    """The name compose v2 gives a built image when the service names none."""
    return f"{project}-{service}"


def _build(raw: Any, working_dir: Path, env: Mapping[str, str], at: Callable[..., str]) -> Any:
    """`build: ./dir` or the mapping, with the context made absolute and args a mapping.

    An arg written without a value takes the shell's, and is left out when the
    shell has none (then the Dockerfile's ARG default applies), as compose does.
    """
    out = {"context": raw} if isinstance(raw, str) else dict(raw)
    context = str(out.get("context") or ".")
    if "://" in context or context.startswith("git@"):
        raise ComposeError(
            f"{at('context')}: remote build context {context!r} is not supported: "
            "check it out and give its local directory"
        )
    path = Path(context).expanduser()
    out["context"] = str(path if path.is_absolute() else (working_dir / path).resolve())
    out["dockerfile"] = str(out.get("dockerfile") or "Dockerfile")
    args: dict[str, str] = {}
    for key, value in as_mapping(out.get("args") or {}).items():
        if value is not None:
            args[key] = _scalar(value)
        elif key in env:
            args[key] = env[key]
    out["args"] = args
    out["labels"] = _str_map(out.get("labels") or {})
    return {k: v for k, v in out.items() if v not in ({}, [], None, "")}


def _str_map(value: Any) -> dict[str, str]:
    return {k: "" if v is None else _scalar(v) for k, v in as_mapping(value).items()}


def _scalar(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _environment(
    raw: dict[str, Any], working_dir: Path, env: Mapping[str, str], at: Callable[..., str]
) -> dict[str, str]:
    """env_file entries first, then `environment:`; a bare KEY comes from the shell env."""
    out: dict[str, str] = {}
    files = raw.get("env_file") or []
    for item in [files] if isinstance(files, str) else files:
        spec = item if isinstance(item, dict) else {"path": item}
        path = (working_dir / str(spec["path"])).resolve()
        if not path.is_file() and spec.get("required", True) in (False, "false"):
            continue
        if not path.is_file():
            raise ComposeError(f"{at('env_file')}: env file {path} not found")
        out.update(envfile.read(path, env))
    for key, value in as_mapping(raw.get("environment") or {}).items():
        if value is None:
            if key in env:
                out[key] = env[key]
        else:
            out[key] = _scalar(value)
    return out


def _ports(item: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(item, dict):
        target = _port_number(item.get("target"), where)
        published = str(item.get("published", "") or "")
        return [
            {
                "mode": item.get("mode", "ingress"),
                "host_ip": item.get("host_ip", ""),
                "target": target,
                "published": published,
                "protocol": item.get("protocol", "tcp"),
            }
        ]
    m = _PORT.match(str(item))
    if not m:
        raise ComposeError(
            f"{where}: invalid port {item!r}: use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]"
        )
    targets = _port_range(m["target"], where)
    hosts = _port_range(m["host"], where) if m["host"] else [None] * len(targets)
    if len(hosts) != len(targets):
        if len(targets) != 1:
            raise ComposeError(f"{where}: port ranges {item!r} must be the same length")
        targets = targets * len(hosts)
    ip = (m["ip"] or "").strip("[]")
    proto = m["proto"] or "tcp"
    return [
        {
            "mode": "ingress",
            "host_ip": ip,
            "target": t,
            "published": "" if h is None else str(h),
            "protocol": proto,
        }
        for t, h in zip(targets, hosts, strict=True)
    ]


def _port_range(text: str, where: str) -> list[int]:
    low, _, high = text.partition("-")
    lo, hi = _port_number(low, where), _port_number(high or low, where)
    if hi < lo:
        raise ComposeError(f"{where}: port range {text!r} runs backwards")
    return list(range(lo, hi + 1))


def _port_number(value: Any, where: str) -> int:
    try:
        port = int(str(value))
    except ValueError:
        raise ComposeError(f"{where}: {value!r} is not a port number (1-65535)") from None
    if not 0 < port < 65536:
        raise ComposeError(f"{where}: port {port} is out of range (1-65535)")
    return port


def _mount(item: Any, project: Project, where: str) -> dict[str, Any]:
    """Long syntax from either form; bind sources resolved against the project dir."""
    if isinstance(item, dict):
        out = dict(item)
    else:
        parts = str(item).split(":")
        if len(parts) > 3 or not all(parts):
            raise ComposeError(f"{where}: invalid volume {item!r}: use [SOURCE:]TARGET[:ro|rw]")
        if len(parts) == 1:
            out = {"type": "volume", "target": parts[0]}
        else:
            source, target = parts[0], parts[1]
            is_path = source.startswith((".", "/", "~"))
            out = {"type": "bind" if is_path else "volume", "source": source, "target": target}
            if out["type"] == "bind":
                out["bind"] = {"create_host_path": True}
            mode = parts[2] if len(parts) == 3 else ""
            if any(m not in ("ro", "rw", "z", "Z", "nocopy") for m in mode.split(",") if m):
                raise ComposeError(f"{where}: unknown volume mode {mode!r}: use ro or rw")
            if "ro" in mode.split(","):
                out["read_only"] = True
    if out["type"] == "bind":
        src = Path(str(out.get("source", ""))).expanduser()
        out["source"] = str(src if src.is_absolute() else (project.working_dir / src).resolve())
    elif out["type"] == "volume" and out.get("source") and out["source"] not in project.volumes:
        raise ComposeError(
            f"{where}: service refers to undefined volume {out['source']!r}: "
            "declare it under the top-level `volumes:` key"
        )
    if not str(out.get("target", "")).startswith("/"):
        raise ComposeError(f"{where}: mount target {out.get('target')!r} must be an absolute path")
    return out


def _service_networks(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {"default": None}
    if isinstance(raw, list):
        return {n: None for n in raw}
    return {k: (v or None) for k, v in raw.items()}


def _depends_on(raw: Any) -> dict[str, dict[str, Any]]:
    if not raw:
        return {}
    if isinstance(raw, list):
        return {s: {"condition": "service_started", "required": True} for s in raw}
    return {
        s: {
            "condition": d["condition"],
            "required": d.get("required", True),
            **({"restart": d["restart"]} if "restart" in d else {}),
        }
        for s, d in raw.items()
    }


def _healthcheck(raw: dict[str, Any], at: Callable[..., str]) -> dict[str, Any]:
    out = dict(raw)
    test = out.get("test")
    if isinstance(test, str):
        out["test"] = ["CMD-SHELL", test]
    if out.get("disable") in (True, "true"):
        return {"disable": True}
    if (
        isinstance(out.get("test"), list)
        and out["test"]
        and out["test"][0] not in ("NONE", "CMD", "CMD-SHELL")
    ):
        raise ComposeError(f"{at('test')}: a list must start with CMD, CMD-SHELL or NONE")
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if key in out:
            duration_ns(str(out[key]), at(key))
    if "retries" in out:
        try:
            out["retries"] = int(out["retries"])
        except ValueError:
            raise ComposeError(f"{at('retries')}: {out['retries']!r} is not a number") from None
    return out


def duration_ns(text: str, where: str) -> int:
    """Go-style durations ("1m30s", "500ms") in nanoseconds; a plain number is seconds."""
    if re.fullmatch(r"\d+", text):
        return int(text) * 10**9
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m[1]) * _UNITS[m[2]]
        pos = m.end()
    if pos != len(text) or not text:
        raise ComposeError(f"{where}: {text!r} is not a duration (e.g. 10s, 1m30s, 500ms)")
    return int(total)


def _restart_policy(value: str, where: str) -> None:
    name, _, count = value.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped") or (
        count and (name != "on-failure" or not count.isdigit())
    ):
        raise ComposeError(
            f"{where}: invalid restart policy {value!r}: use no, always, on-failure[:N] "
            "or unless-stopped"
        )


def _check_references(project: Project, where: Where) -> None:
    for svc, s in project.services.items():
        for dep in s.get("depends_on", {}):
            if dep not in project.services:
                raise ComposeError(
                    f"{where(('services', svc, 'depends_on'))}: service {svc!r} depends on "
                    f"undefined service {dep!r}"
                )
        for net in s.get("networks") or {}:
            if net not in project.networks:
                raise ComposeError(
                    f"{where(('services', svc, 'networks'))}: service {svc!r} refers to "
                    f"undefined network {net!r}: declare it under the top-level `networks:` key"
                )
