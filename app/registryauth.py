"""The logins `docker login` stored, as the X-Registry-Config header a build sends.

A build pulls its FROM images in the engine, which may run in a VM that has
never seen the user's logins; the docker CLI therefore sends every login it
has with the build, and so does `dockyard compose build`. They are read from
the CLI's own store ($DOCKER_CONFIG/config.json, else ~/.docker/config.json);
credential helpers (credsStore) are not run, so logins kept only there are
not sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def config_path(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    base = environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def logins(env: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """{registry: {username, password[, identitytoken], serveraddress}}; {} when none."""
    try:
        doc = json.loads(config_path(env).read_text())
    except (OSError, ValueError):
        return {}  # no logins, or a file the CLI itself would complain about
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for server, entry in auths.items():
        login = _login(entry)
        if login:
            out[str(server)] = {**login, "serveraddress": str(server)}
    return out


def _login(entry: Any) -> dict[str, str]:
    if not isinstance(entry, dict):
        return {}
    out: dict[str, str] = {}
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            user, sep, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return {}
        if sep:
            out.update(username=user, password=password)
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        out["identitytoken"] = token
    return out


def registry_config_header(env: Mapping[str, str] | None = None) -> str | None:
    """base64url JSON of logins(), as the CLI sends it; None when there is no login."""
    found = logins(env)
    if not found:
        return None
    return base64.urlsafe_b64encode(json.dumps(found).encode()).decode()
