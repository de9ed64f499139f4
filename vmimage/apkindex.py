"""APKINDEX records and the dependency closure of a package list.

An APKINDEX is blank-line-separated records of `X:value` lines (P name, V
version, C checksum of the control segment, D depends, p provides, k provider
priority, ...). Resolution is deliberately simpler than apk's solver: a guest
image installs a fixed, small list into an empty root, so there is nothing
installed to keep and no upgrade to plan. Each dependency goes to the newest
package of that name allowing it, else to a provider (one already chosen first,
then the highest `k:`, then the first by name, so the result is reproducible).
`install_if` is not followed: the image gets only what its list pulls in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vmimage.apkversion import Constraint, Version, VersionError

_LIST_FIELDS = {"D", "p", "i"}


class ApkIndexError(ValueError):
    """The index text is malformed or a wanted package cannot be satisfied."""


@dataclass(frozen=True)
class Package:
    """One APKINDEX record; `checksum` is the raw `C:` value (`Q1` + base64 sha1)."""

    name: str
    version: str
    checksum: str
    arch: str = ""
    size: int = 0
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    provider_priority: int = 0
    license: str = ""
    origin: str = ""
    repo: str = ""

    @property
    def filename(self) -> str:
        """The file name of the package in its repository directory."""
        return f"{self.name}-{self.version}.apk"


@dataclass
class Index:
    """Packages of one or more repositories, looked up by name and by what they provide."""

    packages: list[Package] = field(default_factory=list)

    def extend(self, packages: Iterable[Package]) -> None:
        self.packages.extend(packages)

    def named(self, name: str) -> list[Package]:
        """Packages called `name`, newest first."""
        found = [p for p in self.packages if p.name == name]
        return sorted(found, key=lambda p: Version.parse(p.version), reverse=True)

    def providers(self, name: str) -> list[tuple[Package, str]]:
        """(package, provided version or "") for every package providing `name`."""
        out = []
        for pkg in self.packages:
            for item in pkg.provides:
                pname, _, pver = item.partition("=")
                if pname == name:
                    out.append((pkg, pver))
        return out


def parse_index(text: str, repo: str = "") -> list[Package]:
    """Parse APKINDEX text into packages tagged with `repo`; malformed records raise."""
    packages = []
    for number, block in enumerate(text.split("\n\n"), start=1):
        lines = [line for line in block.split("\n") if line]
        if lines:
            packages.append(_record(lines, number, repo))
    return packages


def _record(lines: list[str], number: int, repo: str) -> Package:
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            raise ApkIndexError(f"APKINDEX record {number}: line {line[:80]!r} is not 'X:value'")
        fields[key] = value
    missing = [k for k in ("P", "V", "C") if not fields.get(k)]
    if missing:
        raise ApkIndexError(f"APKINDEX record {number}: missing field(s) {', '.join(missing)}")
    try:
        Version.parse(fields["V"])
        for atom in fields.get("D", "").split():
            Constraint.parse(atom)
        size, prio = int(fields.get("S", "0")), int(fields.get("k", "0"))
    except (VersionError, ValueError) as e:
        raise ApkIndexError(f"APKINDEX record {number} ({fields['P']}): {e}") from None
    return Package(
        name=fields["P"],
        version=fields["V"],
        checksum=fields["C"],
        arch=fields.get("A", ""),
        size=size,
        depends=tuple(fields.get("D", "").split()),
        provides=tuple(fields.get("p", "").split()),
        provider_priority=prio,
        license=fields.get("L", ""),
        origin=fields.get("o", ""),
        repo=repo,
    )


def resolve(index: Index, wanted: Iterable[str]) -> list[Package]:
    """The closure of `wanted` over depends, dependencies before their dependents.

    Raises ApkIndexError naming the dependency chain of anything unsatisfiable.
    """
    chosen: dict[str, Package] = {}
    order: list[Package] = []

    def visit(atom: str, chain: tuple[str, ...]) -> None:
        want = Constraint.parse(atom)
        if want.conflict:
            return
        pkg = _pick(index, want, chosen)
        if pkg is None:
            path = " -> ".join((*chain, str(want)))
            raise ApkIndexError(f"nothing in the index satisfies {path}")
        if pkg.name in chosen:
            return
        chosen[pkg.name] = pkg
        for dep in pkg.depends:
            visit(dep, (*chain, pkg.name))
        order.append(pkg)

    for name in wanted:
        visit(name, ())
    return order


def _pick(index: Index, want: Constraint, chosen: dict[str, Package]) -> Package | None:
    if want.name in chosen and want.allows(chosen[want.name].version):
        return chosen[want.name]
    for pkg in index.named(want.name):
        if want.allows(pkg.version):
            return pkg
    # A provide without a version satisfies only a dependency without one.
    candidates = [
        pkg
        for pkg, pver in index.providers(want.name)
        if (pver and want.allows(pver)) or (not pver and not want.op)
    ]
    for pkg in candidates:
        if chosen.get(pkg.name) == pkg:
            return pkg
    candidates.sort(key=lambda p: Version.parse(p.version), reverse=True)
    candidates.sort(key=lambda p: (-p.provider_priority, p.name))
    return candidates[0] if candidates else None
