"""`docker login`: check credentials against a registry, store nothing.

The CLI keeps the credentials (its config.json or a credential helper) and
sends them with each pull; the engine only answers whether the registry
accepts them, the way dockerd does: `GET /v2/` through the same basic/bearer
challenge dance a pull uses. Keeping no copy here means a login never leaves
a secret in the engine's state directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.errors import InvalidParameter
from engine.images.auth import credentials_from_dict, normalize_server
from engine.images.reference import DEFAULT_DOMAIN, REGISTRY_ENDPOINT
from engine.images.registry import RegistryClient

LOGIN_SUCCEEDED = "Login Succeeded"


def endpoint_of(server: str) -> str:
    """The host[:port] to ask: `https://index.docker.io/v1/` and "" mean Docker Hub's registry."""
    domain = normalize_server(server) if server.strip() else DEFAULT_DOMAIN
    if not domain or any(c in domain for c in " \t\\?#@"):
        raise InvalidParameter(
            f"invalid serveraddress {server!r}: give a registry host such as localhost:5000"
        )
    return REGISTRY_ENDPOINT if domain == DEFAULT_DOMAIN else domain


def login(body: dict[str, Any], insecure: Sequence[str] = ()) -> dict[str, str]:
    """Check the AuthConfig `body` against its registry; Unauthorized when refused."""
    bad = sorted(k for k, v in body.items() if v is not None and not isinstance(v, str))
    if bad:
        raise InvalidParameter(f"login fields must be strings: {', '.join(bad)}")
    creds = credentials_from_dict(body)
    if creds.empty:
        raise InvalidParameter("login needs a username and password (or an identity token)")
    server = str(body.get("serveraddress") or body.get("ServerAddress") or "")
    client = RegistryClient(endpoint_of(server), creds, insecure=insecure)
    client.check_login()
    return {"Status": LOGIN_SUCCEEDED, "IdentityToken": ""}
