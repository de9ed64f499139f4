"""Remove secrets from text that leaves the computer in a diagnostics bundle.

Why redact text rather than only skip files: secrets end up where nobody planned them —
a private key pasted into a container's output lands in the engine log, a registry
password passed as an engine argument sits in machine.yaml, `docker login` keeps base64
`user:password` in the docker config. Each rule replaces the value and keeps the key, so
the bundle still shows *that* something was set. The rules are deliberately greedy: a
diagnostics reader loses little when a harmless value is hidden.
"""

from __future__ import annotations

import json
import re
from typing import Any

MASK = "<redacted>"
SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|auth|api[_-]?key|private[_-]?key|credential)",
    re.IGNORECASE,
)
RULES = [
    # PEM blocks of any private key (RSA, EC, OPENSSH, ENCRYPTED ...), even if truncated.
    re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
        re.DOTALL,
    ),
    # HTTP Authorization headers (before the key rule, which would take only the scheme).
    re.compile(r"(?P<key>\b(?:Basic|Bearer)\s+)(?P<value>[A-Za-z0-9+/=._~-]{8,})"),
    # key=value, key: value, "key": "value", --key=value, --key value for secret-ish keys.
    re.compile(
        r"""(?P<key>["']?[\w.-]*(?:pass(?:word|wd|phrase)?|secret|token|auth|api[_-]?key|"""
        r"""credential)[\w.-]*["']?\s*(?:[:=]|\s)\s*)(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s,}\]]+)""",
        re.IGNORECASE,
    ),
    # user:password@ in URLs.
    re.compile(r"(?P<key>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<value>[^@\s/]+)(?=@)"),
]


def text(value: str) -> str:
    """`value` with every secret the rules know replaced by MASK."""
    for rule in RULES:
        if "value" in rule.groupindex:
            value = rule.sub(lambda m: m.group("key") + MASK, value)
        else:
            value = rule.sub(MASK, value)
    return value


def json_doc(doc: Any) -> Any:
    """A JSON value with secret-named members masked; for the docker config, every entry of
    `auths` keeps only its registry name."""
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for key, item in doc.items():
            if key == "auths" and isinstance(item, dict):
                out[key] = {registry: MASK for registry in item}
            elif SECRET_KEY.search(str(key)) and not isinstance(item, dict | list):
                out[key] = MASK
            else:
                out[key] = json_doc(item)
        return out
    if isinstance(doc, list):
        return [json_doc(item) for item in doc]
    if isinstance(doc, str):
        return text(doc)
    return doc


def json_text(raw: str) -> str:
    """Redacted JSON text; text that is not JSON goes through the text rules."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return text(raw)
    return json.dumps(json_doc(doc), indent=2)
