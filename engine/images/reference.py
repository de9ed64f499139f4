"""Image references, normalised as Docker does (`busybox` -> docker.io/library/busybox:latest).

Normalisation lives in one place so that a pull, a tag lookup and `docker
images` all agree on what a name means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
REGISTRY_ENDPOINT = "registry-1.docker.io"
DEFAULT_TAG = "latest"

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_ID_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{64}$")


@dataclass(frozen=True)
class Reference:
    domain: str  # "docker.io", "localhost:5000"
    path: str  # "library/busybox"
    tag: str = ""  # "" when only a digest was given
    digest: str = ""  # "sha256:..."

    @property
    def repository(self) -> str:
        """The familiar repository name: `busybox`, `user/app`, `localhost:5000/x`."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix("library/")
        return f"{self.domain}/{self.path}"

    @property
    def endpoint(self) -> str:
        """Host[:port] to talk HTTP to."""
        return REGISTRY_ENDPOINT if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def familiar(self) -> str:
        """`busybox:latest` or `repo@sha256:...`, as `docker images` prints it."""
        if self.digest and not self.tag:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"

    def __str__(self) -> str:
        return self.familiar


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise; raises InvalidParameter naming the bad part."""
    if not text or text != text.strip():
        raise InvalidParameter(f"invalid reference format: {text!r}")
    rest, digest = text, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidParameter(f"invalid reference format: bad digest in {text!r}")
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidParameter(f"invalid reference format: bad tag in {text!r}")
    domain, path = _split_domain(rest)
    if not _PATH_RE.match(path):
        raise InvalidParameter(
            f"invalid reference format: repository name ({path}) must be lowercase "
            "letters, digits and separators"
        )
    if default_tag and not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, _, remainder = name.partition("/")
    is_domain = remainder and ("." in first or ":" in first or first == "localhost")
    if not is_domain or (first.lower() != first and ":" not in first and "." not in first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, remainder
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    return domain, path
