"""The /etc/hosts, /etc/hostname and /etc/resolv.conf each container gets.

They are engine-owned files bind-mounted over the image's, as Docker does,
so a container sees its own hostname and working DNS whatever its image holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.atomicfile import write_many
from engine.runtime.spec import ContainerSpec

HOST_RESOLV = Path("/etc/resolv.conf")
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")
EMBEDDED_DNS = "127.0.0.11"


def hosts_content(
    hostname: str,
    extra_hosts: list[str],
    host_network: bool,
    own_ips: Sequence[str] = (),
    linked: Sequence[tuple[str, str]] = (),
) -> str:
    """`own_ips` (the container's addresses, once it has a network) name the hostname
    instead of 127.0.1.1; `linked` are (address, names) of `--link`ed containers."""
    if host_network:
        try:
            base = Path("/etc/hosts").read_text()
        except OSError:
            base = "127.0.0.1\tlocalhost\n"
    else:
        base = (
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            "ff02::2\tip6-allrouters\n"
        )
        if hostname and not own_ips:
            base += f"127.0.1.1\t{hostname}\n"
    for entry in extra_hosts:
        name, _, addr = entry.partition(":")
        if name and addr:
            base += f"{addr}\t{name}\n"
    for addr, names in linked:
        base += f"{addr}\t{names}\n"
    for addr in own_ips:
        base += f"{addr}\t{hostname}\n"
    return base


def resolv_content(
    dns: list[str],
    search: list[str],
    options: list[str],
    host_network: bool,
    embedded_dns: bool = False,
) -> str:
    """`embedded_dns`: the container asks the engine's DNS at 127.0.0.11 (which answers
    its networks' names and forwards the rest to `dns`, else the host's servers),
    keeping the host's search domains and options."""
    try:
        host = HOST_RESOLV.read_text()
    except OSError:
        host = ""
    lines = host.splitlines()
    servers = dns or [
        ln.split()[1] for ln in lines if ln.startswith("nameserver ") and len(ln.split()) > 1
    ]
    if embedded_dns:
        servers = [EMBEDDED_DNS]
        options = options or [
            w for ln in lines if ln.startswith("options ") for w in ln.split()[1:]
        ]
    elif not host_network:
        # A loopback resolver on the host is unreachable from the container's own netns.
        servers = [s for s in servers if not s.startswith("127.") and s != "::1"] or list(
            FALLBACK_DNS
        )
    out = [f"nameserver {s}" for s in servers]
    searches = search or [w for ln in lines if ln.startswith("search ") for w in ln.split()[1:]]
    if searches:
        out.append("search " + " ".join(searches))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def write_host_files(
    cdir: Path, hostname: str, host_config: dict[str, Any], host_network: bool
) -> dict[str, str]:
    """Write the three files, unsynced: a record that names them is saved next, and
    if a crash loses or empties one, `restore_host_files` rewrites it when the engine
    loads that record. (Syncing three new files costs a journal commit each: ~3 ms of
    every `docker run`.)"""
    contents = host_file_contents(cdir, hostname, host_config, host_network)
    write_many(contents, durable=False)
    return {k: str(cdir / name) for k, name in FILES.items()}


FILES = {"hosts": "hosts", "hostname": "hostname", "resolv": "resolv.conf"}


def host_file_contents(
    cdir: Path, hostname: str, host_config: dict[str, Any], host_network: bool
) -> dict[Path, bytes]:
    """The files' bytes, from the hostname and HostConfig's ExtraHosts and Dns* lists."""

    def listed(key: str) -> list[str]:
        return [str(v) for v in host_config.get(key) or []]

    hosts = hosts_content(hostname, listed("ExtraHosts"), host_network)
    resolv = resolv_content(listed("Dns"), listed("DnsSearch"), listed("DnsOptions"), host_network)
    return {
        cdir / FILES["hosts"]: hosts.encode(),
        cdir / FILES["hostname"]: f"{hostname}\n".encode(),
        cdir / FILES["resolv"]: resolv.encode(),
    }


def restore_host_files(spec: ContainerSpec, host_config: dict[str, Any]) -> list[Path]:
    """Rewrite (synced) the host files of a loaded container that a crash lost or left
    empty (they are written unsynced; none is ever legitimately empty); returns them.
    Files that are intact, including ones the container edited, are left alone."""
    if not spec.hosts_path:
        return []
    cdir = Path(spec.hosts_path).parent
    contents = host_file_contents(cdir, spec.hostname, host_config, spec.network_mode == "host")
    lost = {path: data for path, data in contents.items() if _lost(path)}
    if lost and cdir.is_dir():
        write_many(lost)
    return list(lost)


def _lost(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except FileNotFoundError:
        return True


def write_network_files(
    spec: ContainerSpec,
    host_config: dict[str, Any],
    own_ips: Sequence[str],
    linked: Sequence[tuple[str, str]],
    embedded_dns: bool,
) -> None:
    """At start, once the container has its addresses: /etc/hosts names them (and the
    `--link`ed containers), /etc/resolv.conf points at the embedded DNS. Unsynced, as
    at create: both are rebuilt at every start."""
    if not spec.hosts_path:
        return

    def listed(key: str) -> list[str]:
        return [str(v) for v in host_config.get(key) or []]

    hosts = hosts_content(spec.hostname, listed("ExtraHosts"), False, own_ips, linked)
    resolv = resolv_content(
        listed("Dns"), listed("DnsSearch"), listed("DnsOptions"), False, embedded_dns
    )
    write_many(
        {Path(spec.hosts_path): hosts.encode(), Path(spec.resolv_conf_path): resolv.encode()},
        durable=False,
    )
