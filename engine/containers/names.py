"""Container names: validation and Docker-style random `adjective_surname` names."""

from __future__ import annotations

import random
import re

from engine.errors import Conflict, InvalidParameter

_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_LEFT = (
    "admiring",
    "brave",
    "clever",
    "dazzling",
    "eager",
    "focused",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "loving",
    "modest",
    "nifty",
    "optimistic",
    "quirky",
    "relaxed",
    "serene",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "youthful",
    "zealous",
)
_RIGHT = (
    "babbage",
    "curie",
    "dijkstra",
    "euler",
    "fermi",
    "goldberg",
    "hopper",
    "johnson",
    "knuth",
    "lamport",
    "lovelace",
    "mccarthy",
    "noether",
    "pike",
    "ritchie",
    "shannon",
    "thompson",
    "turing",
    "wozniak",
    "yonath",
    "zuse",
)


def validate(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InvalidParameter(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.lstrip("/")


def generate(taken: set[str]) -> str:
    """A free `adjective_surname`; with a number appended once plain names grow scarce."""
    for attempt in range(1000):
        name = f"{random.choice(_LEFT)}_{random.choice(_RIGHT)}"
        if attempt >= 10:
            name += str(random.randint(1, 10 ** (2 + attempt // 100)))
        if name not in taken:
            return name
    raise Conflict("no free container name could be generated; pass --name")
