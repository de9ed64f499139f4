"""A machine's config: one YAML file per machine, `<data dir>/<machine>/machine.yaml`.

Why YAML: users read and edit it by hand, and comments they add are theirs to keep
(we rewrite the file only through `dockyard machine create` or the GUI). Every value is
validated when it is read or given, and an error names the field and what to write
instead, so a hand edit gone wrong fails at `start` with a message, not a traceback.

Defaults are sized for a laptop that also runs other things: half the host's CPUs, and
a quarter of its RAM up to 4 GiB. The SSH port is chosen free at create and kept, so the
pinned host key and any user ssh config stay valid across starts.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from machine import atomic, filenames, paths
from machine.backend import MachineSpec, ShareSpec
from machine.errors import ConfigError, MachineNotFound

BACKENDS = ("qemu", "libvirt", "native")
RECIPES = ("debian", "alpine")
ARCHES = ("x86_64", "aarch64")
SHARE_MODES = ("virtiofs", "9p", "sync")
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
MIB = 1 << 20
GIB = 1 << 30
MIN_MEMORY_MIB = 256
MIN_DISK_GIB = 1
MAX_DISK_GIB = 16384
UNITS = {"": 1, "k": 1 << 10, "m": MIB, "g": GIB, "t": 1 << 40}
REPO = Path(__file__).resolve().parents[1]
SIZE_RE = re.compile(r"\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


@dataclass
class Image:
    """Which guest image boots: a recipe and arch, at `path` or the default build dir."""

    recipe: str = "debian"
    arch: str = ""  # "" = the host's arch
    path: str = ""  # "" = <repo>/.cache/vmimage/<recipe>-<arch>/


@dataclass
class Share:
    """A host directory shown inside the guest: mounted by the guest init (virtiofs, 9p)
    or kept in sync with a guest-local copy (sync). The guest path defaults to the host
    path, so `docker run -v $PWD:$PWD` names the same folder on both sides."""

    tag: str
    host_path: str
    guest_path: str = ""  # "" = host_path
    mode: str = "virtiofs"
    readonly: bool = False
    ignore: list[str] = field(default_factory=list)  # sync only, .gitignore syntax


@dataclass
class Ports:
    """How the host offers the ports containers publish in the guest (machine/portplan.py).

    Off by default: `-p 8080:80` (or `-p 0.0.0.0:8080:80`) then listens on the host's
    127.0.0.1 only, so nothing a container serves is reachable from the network until the
    user says so here. The forwarder re-reads this at each resync, so a change applies to
    a running machine (`dockyard machine set` asks it to resync at once)."""

    allow_all_interfaces: bool = False


@dataclass
class MachineConfig:
    name: str
    backend: str = "qemu"
    cpus: int = 1
    memory_mib: int = 1024
    disk_gib: int = 20
    image: Image = field(default_factory=Image)
    ssh_port: int = 0
    ports: Ports = field(default_factory=Ports)
    shares: list[Share] = field(default_factory=list)
    engine_args: list[str] = field(default_factory=list)


# -- host facts and defaults -----------------------------------------------------------


def host_cpus() -> int:
    return os.cpu_count() or 1


def host_memory_mib() -> int:
    """Physical RAM; 8 GiB when the OS does not say (Windows has no sysconf)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MIB
    except (AttributeError, ValueError, OSError):
        return 8192


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def default_cpus(cpus: int) -> int:
    return max(1, cpus // 2)


def default_memory_mib(ram_mib: int) -> int:
    return max(MIN_MEMORY_MIB, min(4096, ram_mib // 4))


def free_port(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A loopback TCP port nothing listens on now, and no other machine has claimed."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port
    raise ConfigError("found no free TCP port on 127.0.0.1 for SSH", "give one with --ssh-port")


# -- sizes -------------------------------------------------------------------------------


def parse_size(value: str | int, default_unit: str, what: str) -> int:
    """Bytes from `4096`, `4g`, `4G`, `4GiB`, `512MB` (binary units throughout, as QEMU's
    -m); a bare number is in `default_unit` ("m" or "g")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * UNITS[default_unit]
    match = SIZE_RE.fullmatch(str(value))
    if not match:
        raise ConfigError(
            f"{what}: {value!r} is not a size",
            f"write a whole number with an optional unit, e.g. 4GiB, 512MiB or 2048 "
            f"(a bare number is in {default_unit.upper()}iB)",
        )
    unit = match.group(2).lower() or default_unit
    return int(match.group(1)) * UNITS[unit]


def format_mib(mib: int) -> str:
    return f"{mib // 1024}GiB" if mib % 1024 == 0 else f"{mib}MiB"


def memory_mib(value: str | int) -> int:
    size = parse_size(value, "m", "memory")
    if size % MIB:
        raise ConfigError(f"memory: {value!r} is not a whole number of MiB", "e.g. 2GiB or 1536MiB")
    return size // MIB


def disk_gib(value: str | int) -> int:
    size = parse_size(value, "g", "disk")
    if size % GIB:
        raise ConfigError(f"disk: {value!r} is not a whole number of GiB", "e.g. 20GiB")
    return size // GIB


# -- validation --------------------------------------------------------------------------


def validate(cfg: MachineConfig, cpus: int | None = None, ram_mib: int | None = None) -> None:
    """Raise ConfigError naming the first wrong field and what to write instead."""
    cpus = cpus or host_cpus()
    ram_mib = ram_mib or host_memory_mib()
    check_name(cfg.name)
    _check_choice("backend", cfg.backend, BACKENDS)
    if not 1 <= cfg.cpus <= cpus:
        raise ConfigError(f"cpus: {cfg.cpus} is out of range", f"this host has {cpus} CPUs")
    if not MIN_MEMORY_MIB <= cfg.memory_mib <= ram_mib:
        raise ConfigError(
            f"memory: {format_mib(cfg.memory_mib)} is out of range",
            f"give at least {MIN_MEMORY_MIB}MiB and at most this host's {format_mib(ram_mib)}",
        )
    if not MIN_DISK_GIB <= cfg.disk_gib <= MAX_DISK_GIB:
        raise ConfigError(
            f"disk: {cfg.disk_gib}GiB is out of range",
            f"give {MIN_DISK_GIB}GiB to {MAX_DISK_GIB}GiB (the file grows as it fills)",
        )
    if not 1024 <= cfg.ssh_port <= 65535:
        raise ConfigError(f"ssh_port: {cfg.ssh_port} is out of range", "use 1024 to 65535")
    _check_choice("image.recipe", cfg.image.recipe, RECIPES)
    _check_choice("image.arch", cfg.image.arch, ARCHES)
    tags = set()
    for share in cfg.shares:
        _check_share(share)
        if share.tag in tags:
            raise ConfigError(f"shares: tag {share.tag!r} is used twice", "give each a new tag")
        tags.add(share.tag)
    _check_overlaps(cfg.shares)
    if not all(isinstance(a, str) for a in cfg.engine_args):
        raise ConfigError("engine_args: every item must be a string", "quote numbers")


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ConfigError(
            f"machine name {name!r} is not allowed",
            "use 1-32 of a-z, 0-9, '_', '.', '-', starting with a letter or digit",
        )


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{what}: {value!r} is not one of {', '.join(choices)}")


# Guest directories a share must not hide (be, or be a parent of); the system trees also
# take no share below them. Below /tmp, /root or /home is fine (`-v $TMPDIR:$TMPDIR`).
SYSTEM_GUEST_PATHS = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/opt/dockyard", "/proc", "/run",
    "/sbin", "/sys", "/usr", "/var/lib/dockyard",
)  # fmt: skip
RESERVED_GUEST_PATHS = (*SYSTEM_GUEST_PATHS, "/root", "/tmp", "/var/log")


def _check_share(share: Share) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,31}", share.tag):
        raise ConfigError(
            f"shares: tag {share.tag!r} is not allowed", "use 1-31 of A-Z a-z 0-9 _ -"
        )
    if not share.host_path:
        raise ConfigError(f"shares: {share.tag} has no host_path", "give the folder to share")
    if not os.path.isabs(share.host_path):
        raise ConfigError(
            f"shares: host_path {share.host_path!r} is not absolute",
            "give the full path, e.g. /home/me/src",
        )
    guest = share.guest_path or share.host_path
    if not guest.startswith("/") or "\n" in guest:
        raise ConfigError(
            f"shares: guest_path {guest!r} is not absolute",
            "give a Linux path, e.g. /Users/me/src (on Windows give guest_path explicitly)",
        )
    norm = os.path.normpath(guest)
    for reserved in RESERVED_GUEST_PATHS:
        below = reserved in SYSTEM_GUEST_PATHS and norm.startswith(reserved + "/")
        if norm == "/" or norm == reserved or reserved.startswith(norm + "/") or below:
            raise ConfigError(
                f"shares: guest_path {guest!r} would hide the guest's {reserved}",
                "share it at another guest_path, e.g. under /mnt or /home",
            )
    _check_choice("shares.mode", share.mode, SHARE_MODES)
    if share.mode == "sync" and share.readonly:
        raise ConfigError(
            f"shares: {share.host_path} is a read-only sync share, which is not supported",
            "use mode 9p or virtiofs for a read-only share, or drop readonly",
        )
    if share.ignore and share.mode != "sync":
        raise ConfigError(
            f"shares: {share.host_path} has ignore patterns but mode {share.mode}",
            "ignore patterns apply to sync shares only; remove them or use mode sync",
        )
    if not all(isinstance(p, str) and p.strip() and "\n" not in p for p in share.ignore):
        raise ConfigError(
            f"shares: {share.host_path}: every ignore pattern must be a non-empty line",
            "e.g. ignore: [node_modules/, '*.pyc']",
        )


def _check_overlaps(shares: list[Share]) -> None:
    """Two shares on one guest folder, or one inside another, would hide each other."""
    seen: list[str] = []
    for share in shares:
        guest = os.path.normpath(share.guest_path or share.host_path)
        for other in seen:
            if guest == other or guest.startswith(other + "/") or other.startswith(guest + "/"):
                raise ConfigError(
                    f"shares: guest paths {other} and {guest} overlap",
                    "share the common parent once, or give one another guest_path",
                )
        seen.append(guest)


# -- building and (de)serialising ------------------------------------------------------


def new(
    name: str,
    backend: str = "qemu",
    cpus: int | None = None,
    memory: str | int | None = None,
    disk: str | int | None = None,
    ssh_port: int | None = None,
    engine_args: list[str] | None = None,
    image: Image | None = None,
    taken_ports: set[int] | frozenset[int] = frozenset(),
    ports: Ports | None = None,
) -> MachineConfig:
    """A validated config for `dockyard machine create`, with the host's defaults."""
    image = image or Image()
    cfg = MachineConfig(
        name=name,
        backend=backend,
        cpus=default_cpus(host_cpus()) if cpus is None else cpus,
        memory_mib=default_memory_mib(host_memory_mib()) if memory is None else memory_mib(memory),
        disk_gib=20 if disk is None else disk_gib(disk),
        image=Image(image.recipe, image.arch or host_arch(), image.path),
        ssh_port=free_port(taken_ports) if ssh_port is None else ssh_port,
        ports=ports or Ports(),
        engine_args=list(engine_args or []),
    )
    validate(cfg)
    return cfg


def to_dict(cfg: MachineConfig) -> dict[str, Any]:
    doc = asdict(cfg)
    doc["memory"] = format_mib(doc.pop("memory_mib"))
    doc["disk"] = f"{doc.pop('disk_gib')}GiB"
    order = ("name", "backend", "cpus", "memory", "disk", "image", "ssh_port", "ports")
    return {k: doc[k] for k in (*order, "shares", "engine_args")}


def from_dict(doc: Any) -> MachineConfig:
    """A config from parsed YAML; unknown or mistyped fields are errors, not ignored."""
    if not isinstance(doc, dict):
        raise ConfigError("the machine config is not a mapping of fields", "see `machine create`")
    known = {"name", "backend", "cpus", "memory", "disk", "image", "ssh_port", "ports"}
    unknown = set(doc) - known - {"shares", "engine_args"}
    if unknown:
        raise ConfigError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
    cfg = MachineConfig(
        name=_typed(doc, "name", str),
        backend=_typed(doc, "backend", str, "qemu"),
        cpus=_typed(doc, "cpus", int, 1),
        memory_mib=memory_mib(_typed(doc, "memory", (str, int), "1GiB")),
        disk_gib=disk_gib(_typed(doc, "disk", (str, int), "20GiB")),
        image=_image(doc.get("image") or {}),
        ssh_port=_typed(doc, "ssh_port", int, 0),
        ports=ports_from(doc.get("ports")),
        shares=[_share(s, i) for i, s in enumerate(_typed(doc, "shares", list, []))],
        engine_args=[str(a) for a in _typed(doc, "engine_args", list, [])],
    )
    validate(cfg)
    return cfg


def _typed(
    doc: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    if key not in doc or doc[key] is None:
        if default is None:
            raise ConfigError(f"{key}: missing")
        return default
    value = doc[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ConfigError(f"{key}: {value!r} has the wrong type")
    return value


def _image(doc: Any) -> Image:
    if not isinstance(doc, dict) or set(doc) - {"recipe", "arch", "path"}:
        raise ConfigError("image: give a mapping with recipe, arch and path")
    return Image(
        recipe=str(doc.get("recipe") or "debian"),
        arch=str(doc.get("arch") or host_arch()),
        path=str(doc.get("path") or ""),
    )


def ports_from(doc: Any) -> Ports:
    """The `ports:` section; absent or empty is the default (loopback only)."""
    doc = doc if doc is not None else {}
    if not isinstance(doc, dict) or set(doc) - {"allow_all_interfaces"}:
        raise ConfigError(
            "ports: give a mapping with allow_all_interfaces",
            "e.g. ports: {allow_all_interfaces: false}",
        )
    allow = doc.get("allow_all_interfaces", False)
    if not isinstance(allow, bool):
        raise ConfigError(f"ports: allow_all_interfaces {allow!r} is not true or false")
    return Ports(allow_all_interfaces=allow)


def read_ports(directory: Path) -> Ports:
    """The `ports:` section of the machine.yaml in `directory`, for the port forwarder,
    which knows its machine only by its directory. Only this section is checked: a hand
    edit gone wrong elsewhere is reported at the next command, and must not change where
    a running machine's forwards listen. No file is the default; a bad section raises."""
    try:
        text = (directory / filenames.CONFIG).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Ports()
    except OSError as e:
        raise ConfigError(f"cannot read {directory / filenames.CONFIG}: {e}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{directory / filenames.CONFIG} is not valid YAML: {e}") from None
    return ports_from(doc.get("ports") if isinstance(doc, dict) else None)


SHARE_FIELDS = ("tag", "host_path", "guest_path", "mode", "readonly", "ignore")


def _share(doc: Any, index: int = 0) -> Share:
    if not isinstance(doc, dict) or set(doc) - set(SHARE_FIELDS):
        raise ConfigError(
            "shares: each share is a mapping of " + ", ".join(SHARE_FIELDS),
            "e.g. - {host_path: /home/me/src, mode: virtiofs}",
        )
    readonly = doc.get("readonly", False)
    if not isinstance(readonly, bool):
        raise ConfigError(f"shares: readonly {readonly!r} is not true or false")
    ignore = doc.get("ignore") or []
    if not isinstance(ignore, list):
        raise ConfigError("shares: ignore must be a list of patterns", "e.g. [node_modules/]")
    return Share(
        tag=str(doc.get("tag") or f"share{index}"),
        host_path=str(doc.get("host_path") or ""),
        guest_path=str(doc.get("guest_path") or ""),
        mode=str(doc.get("mode") or "virtiofs"),
        readonly=readonly,
        ignore=[p if isinstance(p, str) else str(p) for p in ignore],
    )


def image_dir(image: Image) -> Path:
    """The vmimage output directory: the configured path, else the default build location
    (vm-contract.md: <repo>/.cache/vmimage/<recipe>-<arch>/, what `make images` builds)."""
    if image.path:
        return Path(image.path).expanduser()
    return images_home() / f"{image.recipe}-{image.arch}"


def images_home() -> Path:
    """Where the prebuilt guest images are: in the packaged app, `guest/` beside its
    executables (packaging/build.py puts them there); from a checkout, `make images`'s."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent / "guest"
    return REPO / ".cache" / "vmimage"


def to_spec(host: paths.Host, cfg: MachineConfig) -> MachineSpec:
    """What a backend needs (machine/backend.py): the backends never read YAML."""
    return MachineSpec(
        name=cfg.name,
        directory=Path(paths.machine_dir(host, cfg.name)),
        cpus=cfg.cpus,
        memory_mb=cfg.memory_mib,
        disk_gb=cfg.disk_gib,
        image_dir=image_dir(cfg.image),
        ssh_port=cfg.ssh_port,
        engine_args=list(cfg.engine_args),
        shares=[
            ShareSpec(
                Path(s.host_path), s.guest_path or s.host_path, s.mode, s.readonly, tuple(s.ignore)
            )
            for s in cfg.shares
        ],
    )


# -- files -------------------------------------------------------------------------------


def config_path(host: paths.Host, name: str) -> Path:
    return Path(paths.machine_dir(host, name)) / filenames.CONFIG


def load(host: paths.Host, name: str) -> MachineConfig:
    check_name(name)
    path = config_path(host, name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MachineNotFound(name) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}", "fix or re-create it") from None
    try:
        cfg = from_dict(doc)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e.message}", e.hint) from None
    if cfg.name != name:
        raise ConfigError(f"{path} names machine {cfg.name!r}", f"set name: {name}")
    return cfg


def save(host: paths.Host, cfg: MachineConfig) -> Path:
    """Validate and write atomically (0600: the file names the machine's SSH port and
    paths, nothing secret, but nothing others need either)."""
    validate(cfg)
    path = config_path(host, cfg.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)
    atomic.write_text(path, text, mode=0o600)
    return path


def names(host: paths.Host) -> list[str]:
    """Every machine with a config under the data dir."""
    root = Path(paths.data_dir(host))
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{filenames.CONFIG}"))


def taken_ports(host: paths.Host) -> set[int]:
    """SSH ports other machines claimed (readable configs only; a broken one claims none)."""
    ports = set()
    for name in names(host):
        try:
            ports.add(load(host, name).ssh_port)
        except ConfigError:
            continue
    return ports
