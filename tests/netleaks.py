"""Leak checks for networking: the host's links, netns files, mounts and firewall rules are
back to what they were once an engine's containers and networks are gone.

Why a module of its own: the compose-stack test and the network-leak test ask the same
question at the end of different scenarios.

Several engines (other test runs, on the same machine) may add and remove their own links
and rules while a test runs, so a plain before/after diff would blame them on us. A leak is
therefore something that appeared *and* belongs to the engine under test: it names one of
that engine's bridges, veths or firewall table, or lies under its directory. The
`Owner` learns those names from the engine's API while the test runs (`observe()`), and
computes veth names with the engine's own rule ("dyv" + sha256(container id + network
id)[:11]), so containers removed before they were observed are covered once their ids are
known (`add_container`, e.g. from `docker run --cidfile`). Links and rules the host had
before and that are gone after are reported too, unless they belong to some Dockyard engine
(any of them may have ended meanwhile).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.network.datapath import veth_name
from engine.network.firewall_common import chain_tag
from engine.network.manager import DEFAULT_BRIDGE, bridge_device, firewall_table
from tests.engine_process import EngineProcess, api_call

# Names every Dockyard engine uses: bridges dy-<id>, veths dyv<hash>, the default dockyard0,
# and test engines' default bridges dyt<pid><n>.
DOCKYARD_NAME = re.compile(r"\bdy(v[0-9a-f]{11}|-[0-9a-f]{12}|t\d+)\b|dockyard", re.IGNORECASE)


# Kinds where the host's own entries must survive: an engine deleting a host link or rule is
# a bug. (Mounts and netns files of other engines' containers come and go all the time.)
HOST_OWNED = ("links", "nft", "iptables")


def _lines(cmd: list[str]) -> set[str]:
    """Output lines of a listing command with handles and counters masked (they change on
    every listing), or nothing if the tool is missing here."""
    if shutil.which(cmd[0]) is None:
        return set()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    out = set()
    for line in res.stdout.splitlines():
        line = re.sub(r"# handle \d+|\[\d+:\d+\]|packets \d+ bytes \d+", "", line).strip()
        if line and not line.startswith("#"):
            out.add(line)
    return out


def _nft_lines() -> set[str]:
    """`nft list ruleset` lines, each prefixed with its table: a bare `chain forward {` could
    belong to any table, and only the table says whose it is."""
    if shutil.which("nft") is None:
        return set()
    res = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False)
    out, table = set(), ""
    for line in res.stdout.splitlines():
        line = re.sub(r"# handle \d+|packets \d+ bytes \d+", "", line).strip()
        if line.startswith("table "):
            table = line.removesuffix("{").strip()
        if line and not line.startswith("#"):
            out.add(line if line.startswith("table ") else f"{table}: {line}")
    return out


@dataclass(frozen=True)
class HostState:
    """What networking leaves on the host, as comparable sets of names and lines."""

    links: frozenset[str]
    netns: frozenset[str]  # files under /run/netns and under the engine's dir
    mounts: frozenset[str]  # mount points
    nft: frozenset[str]  # `nft list ruleset` lines
    iptables: frozenset[str]  # `iptables-save` lines

    @classmethod
    def take(cls, engine_dir: Path | None = None) -> HostState:
        netns = (
            {str(p) for p in Path("/run/netns").glob("*")} if Path("/run/netns").is_dir() else set()
        )
        if engine_dir is not None:
            netns |= {str(p) for p in engine_dir.glob("run/netns/*")}
        mounts = set()
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                mounts.add(line.split()[4].encode().decode("unicode_escape"))
        return cls(
            links=frozenset(p.name for p in Path("/sys/class/net").iterdir()),
            netns=frozenset(netns),
            mounts=frozenset(mounts),
            nft=frozenset(_nft_lines()),
            iptables=frozenset(_lines(["iptables-save"])),
        )

    def items(self) -> dict[str, frozenset[str]]:
        return {
            "links": self.links,
            "netns": self.netns,
            "mounts": self.mounts,
            "nft": self.nft,
            "iptables": self.iptables,
        }


@dataclass
class Owner:
    """The names one engine owns, learnt while it runs."""

    engine: EngineProcess
    bridges: set[str] = field(default_factory=set)
    network_ids: set[str] = field(default_factory=set)
    container_ids: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        argv = self.engine.argv()
        bridge = argv[argv.index("--bridge") + 1] if "--bridge" in argv else DEFAULT_BRIDGE
        table = firewall_table(bridge)
        self.bridges.add(bridge)
        # nft: the table's own name; iptables: the chains named after it.
        tag = chain_tag(table)
        self.tables |= {table, f"DOCKYARD-{tag}-FWD", f"DOCKYARD-{tag}-NAT"}

    def add_container(self, cid: str) -> None:
        self.container_ids.add(cid.strip())

    def observe(self) -> None:
        """Record the engine's current networks and containers (call it whenever they
        change; harmless when the engine is down)."""
        with contextlib.suppress(OSError):
            _, nets = api_call(self.engine.socket, "GET", "/networks")
            for net in nets if isinstance(nets, list) else []:
                self._add_network(net)
            _, ctrs = api_call(self.engine.socket, "GET", "/containers/json?all=1")
            for ctr in ctrs if isinstance(ctrs, list) else []:
                self.container_ids.add(ctr["Id"])
                for ep in (ctr.get("NetworkSettings") or {}).get("Networks", {}).values():
                    if ep.get("NetworkID"):
                        self.network_ids.add(ep["NetworkID"])

    def _add_network(self, net: dict[str, object]) -> None:
        nid = str(net.get("Id", ""))
        if net.get("Driver") != "bridge" or not nid:
            return
        self.network_ids.add(nid)
        options = net.get("Options") or {}
        assert isinstance(options, dict)
        name = options.get("com.docker.network.bridge.name")
        if net.get("Name") != "bridge":
            self.bridges.add(str(name or bridge_device(nid)))
        elif name:
            self.bridges.add(str(name))

    def tokens(self) -> set[str]:
        """Whole names only: subnets are not among them, because another engine may have
        been handed the same subnet since (its rules then name its own bridge)."""
        veths = {veth_name(c, n) for c in self.container_ids for n in self.network_ids}
        return self.bridges | self.tables | veths | {str(self.engine.dir)}

    def owns(self, item: str) -> bool:
        """`item` names one of our tokens as a whole word ("dyt1" is not in "dyt10")."""
        alternatives = "|".join(re.escape(t) for t in sorted(self.tokens(), key=len, reverse=True))
        return re.search(rf"(?<![\w-])({alternatives})(?![\w])", item) is not None


def leaks(before: HostState, after: HostState, owner: Owner) -> dict[str, list[str]]:
    """What the engine left behind, and what the host lost, per kind (empty when clean)."""
    found: dict[str, list[str]] = {}
    for kind, now in after.items().items():
        was = before.items()[kind]
        left = sorted(x for x in now - was if owner.owns(x))
        lost = sorted(x for x in was - now if kind in HOST_OWNED and not DOCKYARD_NAME.search(x))
        if left:
            found[f"{kind} left"] = left
        if lost:
            found[f"{kind} lost"] = lost
    return found


def assert_no_leaks(before: HostState, owner: Owner, settle: float = 10.0) -> None:
    """Compare the host now with `before`; cleanup that runs in the background (a container's
    exit handling) gets `settle` seconds to finish."""
    deadline = time.monotonic() + settle
    while True:
        found = leaks(before, HostState.take(owner.engine.dir), owner)
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not found, f"left on the host: {found}\nengine log:\n{owner.engine.log_tail()}"
