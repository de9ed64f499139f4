"""FROM and COPY --from: the image a name means, pulled when it is not here.

A local image wins unless the build asked for `--pull`, as in Docker. The
credentials come from the request's X-Registry-Config header (the CLI sends
every registry it has a login for), picked by the image's registry.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from engine.errors import InvalidParameter, NotFound
from engine.images import pull as pull_mod
from engine.images import reference
from engine.images.auth import normalize_server
from engine.images.registry import RegistryUnreachable
from engine.images.store import Image, ImageStore


def decode_registry_config(header: str) -> dict[str, dict[str, Any]]:
    """X-Registry-Config: base64url JSON of {registry: auth config}; {} when absent."""
    text = header.strip()
    if not text:
        return {}
    try:
        doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameter("invalid X-Registry-Config header: not base64url JSON") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid X-Registry-Config header: not a JSON object")
    return {normalize_server(str(k)): v for k, v in doc.items() if isinstance(v, dict)}


def resolve(
    store: ImageStore,
    name: str,
    *,
    pull: bool,
    platform: str,
    auths: dict[str, dict[str, Any]],
    insecure: Sequence[str],
    progress: Callable[[dict[str, Any]], None],
) -> Image:
    """The image `name` names, pulling it when missing (or always, with `pull`)."""
    try:
        ref = reference.parse(name)
    except InvalidParameter as exc:
        raise InvalidParameter(
            f"invalid reference format for base image {name!r}: {exc.message}"
        ) from None
    if not pull:
        try:
            return store.get(name)
        except NotFound:
            pass
    try:
        return pull_mod.pull(
            store,
            ref,
            platform=platform or None,
            auth=auths.get(ref.domain),
            progress=progress,
            insecure=insecure,
        )
    except (NotFound, RegistryUnreachable) as exc:
        raise NotFound(
            f"pull access denied or image not found for {ref.familiar}: {exc.message}"
        ) from None
