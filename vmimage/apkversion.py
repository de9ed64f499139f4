"""Alpine package versions: ordering and the constraints a dependency puts on them.

The resolver must pick the same package apk would, so versions compare the way
apk-tools' version.c orders them, not as strings ("1.10" > "1.9", "1.0_rc1" <
"1.0" < "1.0_p1" < "1.0-r1"). A version is: dot-separated numbers, an optional
letter, any number of `_suffix[N]`, an optional `~hash`, an optional `-rN`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Pre-release suffixes sort before the bare version, post-release ones after it.
_SUFFIX_RANK = {
    "alpha": -4,
    "beta": -3,
    "pre": -2,
    "rc": -1,
    "cvs": 1,
    "svn": 2,
    "git": 3,
    "hg": 4,
    "p": 5,
}
_VERSION = re.compile(
    r"^(?P<nums>\d+(?:\.\d+)*)(?P<letter>[a-z]?)"
    r"(?P<suffixes>(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)"
    r"(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<rev>\d+))?$"
)
_SUFFIX = re.compile(r"_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(\d*)")
_CONSTRAINT = re.compile(r"^(?P<name>[^<>=~]+?)(?P<op>>=|<=|><|=~|>|<|=|~)(?P<version>.+)$")


class VersionError(ValueError):
    """A version or dependency string that apk itself would refuse."""


@dataclass(frozen=True, order=True)
class Version:
    """A parsed version whose tuple order is apk's order."""

    key: tuple[tuple[int, ...], int, tuple[tuple[int, int], ...], int]
    text: str

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse `text`; raise VersionError naming the bad version."""
        m = _VERSION.match(text)
        if m is None:
            raise VersionError(f"not an apk version: {text!r}")
        nums = tuple(int(n) for n in m["nums"].split("."))
        letter = ord(m["letter"]) if m["letter"] else 0
        suffixes = tuple((_SUFFIX_RANK[s], int(n or 0)) for s, n in _SUFFIX.findall(m["suffixes"]))
        # A version with no suffix sorts between pre- and post-release ones.
        padded = (*suffixes, (0, 0))
        return cls((nums, letter, padded, int(m["rev"] or 0)), text)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version `a` sorts before, equal to or after `b`."""
    va, vb = Version.parse(a).key, Version.parse(b).key
    return (va > vb) - (va < vb)


@dataclass(frozen=True)
class Constraint:
    """One dependency atom of an APKINDEX `D:` line: `name`, `name>=1.2`, `!name`."""

    name: str
    op: str = ""
    version: str = ""
    conflict: bool = False

    @classmethod
    def parse(cls, atom: str) -> Constraint:
        """Parse one atom; a repository tag (`name@edge`) is dropped."""
        conflict = atom.startswith("!")
        atom = atom.removeprefix("!")
        m = _CONSTRAINT.match(atom)
        if m is None:
            name, op, version = atom, "", ""
        else:
            name, op, version = m["name"], m["op"], m["version"]
            Version.parse(version)
        name = name.split("@", 1)[0]
        if not name:
            raise VersionError(f"dependency without a name: {atom!r}")
        return cls(name, op, version, conflict)

    def allows(self, version: str) -> bool:
        """Whether `version` satisfies this constraint (any version when it has none)."""
        if not self.op:
            return True
        if self.op in ("~", "=~"):
            return version == self.version or version.startswith(self.version + ".")
        c = compare(version, self.version)
        return {
            "=": c == 0,
            ">": c > 0,
            "<": c < 0,
            ">=": c >= 0,
            "<=": c <= 0,
            "><": c != 0,
        }[self.op]

    def __str__(self) -> str:
        return ("!" if self.conflict else "") + self.name + self.op + self.version
