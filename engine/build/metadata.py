"""Instructions that change only the image config: ENV, LABEL, USER, CMD, EXPOSE, ...

Each function takes the stage's `config` section (Env, Cmd, WorkingDir, ...),
the instruction with its words already expanded where Docker expands them,
and returns the history comment Docker writes for it (`CMD ["sh"]`,
`ENV A=b`). They are pure, so the exact shapes are unit-tested.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from engine.build.dockerfile import Instruction, healthcheck_test
from engine.build.dockerfile_flags import parse_go_duration
from engine.errors import InvalidParameter

Config = dict[str, Any]
_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$")
_SIGNAL = re.compile(r"^(?:SIG)?[A-Z0-9+-]+$|^\d+$")


def go_list(items: list[str]) -> str:
    """A string slice as Go's %q prints it: `["/bin/sh" "-c" "echo hi"]`."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def env_dict(config: Config) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def set_env(config: Config, pairs: list[tuple[str, str]]) -> str:
    env = env_dict(config)
    for key, value in pairs:
        env.pop(key, None)  # a redefined variable moves to the end, as in Docker
        env[key] = value
    config["Env"] = [f"{k}={v}" for k, v in env.items()]
    return "ENV " + " ".join(f"{k}={v}" for k, v in pairs)


def set_labels(config: Config, pairs: list[tuple[str, str]]) -> str:
    labels = dict(config.get("Labels") or {})
    for key, value in pairs:
        labels[key] = value
    config["Labels"] = labels
    return "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)


def set_user(config: Config, user: str) -> str:
    config["User"] = user
    return f"USER {user}"


def command(ins: Instruction, shell: list[str]) -> list[str]:
    """CMD/ENTRYPOINT/RUN words: the JSON form as given, the shell form through SHELL."""
    if ins.json_form:
        return list(ins.args)
    return [*shell, ins.args[0]] if ins.args and ins.args[0] else []


def set_cmd(config: Config, ins: Instruction, shell: list[str]) -> str:
    cmd = command(ins, shell)
    config["Cmd"] = cmd
    return f"CMD {go_list(cmd)}"


def set_entrypoint(config: Config, ins: Instruction, shell: list[str], cmd_set: bool) -> str:
    entrypoint = command(ins, shell)
    config["Entrypoint"] = entrypoint or None
    if not cmd_set:
        config["Cmd"] = None  # a CMD inherited from the base does not survive a new ENTRYPOINT
    return f"ENTRYPOINT {go_list(entrypoint)}"


def expose(config: Config, words: list[str]) -> str:
    ports = dict(config.get("ExposedPorts") or {})
    added: list[str] = []
    for word in words:
        m = _PORT.match(word.lower())
        if m is None:
            raise InvalidParameter(f"Invalid containerPort: {word}")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        proto = m.group(3) or "tcp"
        if not 0 < first <= last <= 65535:
            raise InvalidParameter(f"Invalid containerPort: {word}")
        for port in range(first, last + 1):
            key = f"{port}/{proto}"
            ports[key] = {}
            added.append(key)
    config["ExposedPorts"] = ports
    return "EXPOSE " + " ".join(sorted(set(added)))


def volume(config: Config, paths: list[str]) -> str:
    volumes = dict(config.get("Volumes") or {})
    for path in paths:
        if not path:
            raise InvalidParameter("VOLUME specified can not be an empty string")
        volumes[path] = {}
    config["Volumes"] = volumes
    return "VOLUME [" + " ".join(paths) + "]"


def stop_signal(config: Config, sig: str) -> str:
    if not _SIGNAL.match(sig.upper()):
        raise InvalidParameter(f"Invalid signal: {sig}")
    config["StopSignal"] = sig
    return f"STOPSIGNAL {sig}"


def healthcheck(config: Config, ins: Instruction) -> str:
    test = healthcheck_test(ins)
    check: dict[str, Any] = {"Test": test}
    names = {
        "interval": "Interval",
        "timeout": "Timeout",
        "start-period": "StartPeriod",
        "start-interval": "StartInterval",
    }
    for flag, key in names.items():
        if ins.flags.get(flag):
            check[key] = parse_go_duration(ins.flags[flag])
    if ins.flags.get("retries"):
        check["Retries"] = int(ins.flags["retries"])
    config["Healthcheck"] = check
    return f"HEALTHCHECK &{{{go_list(test)}}}"


def set_shell(config: Config, shell: list[str]) -> str:
    config["Shell"] = list(shell)
    return f"SHELL {go_list(shell)}"


def onbuild(config: Config, trigger: str) -> str:
    config["OnBuild"] = [*list(config.get("OnBuild") or []), trigger]
    return f"ONBUILD {trigger}"


def workdir(config: Config, path: str) -> str:
    current = str(config.get("WorkingDir") or "/")
    if not path.startswith("/"):
        path = current.rstrip("/") + "/" + path
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    config["WorkingDir"] = "/" + "/".join(parts)
    return f"WORKDIR {config['WorkingDir']}"


Apply = Callable[[Config, Instruction], str]
