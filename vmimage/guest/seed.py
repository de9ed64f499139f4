"""Apply the host's seed inside the guest (runs at boot, from boot.sh; standard library only).

The seed (guest contract, version 1) arrives through QEMU's fw_cfg as
opt/dockyard/seed. It is checked as a whole before anything is written, so a
bad seed fails the `seed` stage with a message that names the field instead
of booting a guest the host cannot reach. Outputs:
  /etc/hostname and the kernel hostname, root's authorized_keys, sshd's host key,
  /run/dockyard/engine.args  (a shell `set --` line with the engine's arguments),
  /run/dockyard/shares.sh    (mount commands for the shares),
  /run/dockyard/data-serial  (the data disk's serial),
  /run/dockyard/checkpoint   (present when the host will wake the guest at its checkpoint),
  the clock, when the guest's is behind the host's.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from typing import Any

SEED_PATHS = ("/sys/firmware/qemu_fw_cfg/by_name/opt/dockyard/seed/raw",)
SEED_VERSION = 1
SHARE_MODES = ("9p", "virtiofs")
NINEP_OPTS = "trans=virtio,version=9p2000.L,msize=524288,cache=mmap"


class SeedError(ValueError):
    """The seed is missing or malformed."""


def read_seed(paths: tuple[str, ...] | None = None) -> dict[str, Any]:
    for path in SEED_PATHS if paths is None else paths:
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        try:
            doc = json.loads(raw.rstrip(b"\0"))
        except ValueError as e:
            raise SeedError(f"seed at {path} is not JSON: {e}") from None
        return check(doc)
    raise SeedError("no seed: pass -fw_cfg name=opt/dockyard/seed,file=<seed.json> to QEMU")


def _text(doc: dict[str, Any], key: str, default: str | None = None) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str) or not value or "\n" in value.strip():
        raise SeedError(f"seed field {key!r} must be a one-line string")
    return value.strip()


def _texts(doc: dict[str, Any], key: str) -> list[str]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and "\n" not in v for v in value):
        raise SeedError(f"seed field {key!r} must be a list of one-line strings")
    return list(value)


def check(doc: Any) -> dict[str, Any]:
    """The seed, validated; raises SeedError naming the first bad field."""
    if not isinstance(doc, dict):
        raise SeedError("seed must be a JSON object")
    if doc.get("version") != SEED_VERSION:
        raise SeedError(f"seed version {doc.get('version')!r} is not {SEED_VERSION}")
    hostname = _text(doc, "hostname", "dockyard")
    if len(hostname) > 63 or not all(c.isalnum() or c == "-" for c in hostname):
        raise SeedError(f"seed hostname {hostname!r} is not a valid host name")
    if not _texts(doc, "authorized_keys"):
        raise SeedError("seed has no authorized_keys: the host could never log in")
    key = doc.get("host_key")
    if not isinstance(key, str) or "BEGIN OPENSSH PRIVATE KEY" not in key:
        raise SeedError("seed host_key must be an OpenSSH private key")
    _texts(doc, "engine_args")
    _text(doc, "data_device_serial", "dockyard-data")
    shares = doc.get("shares", [])
    if not isinstance(shares, list):
        raise SeedError("seed field 'shares' must be a list")
    for share in shares:
        check_share(share)
    if not isinstance(doc.get("time", 0), int | float):
        raise SeedError("seed field 'time' must be a number of seconds")
    if not isinstance(doc.get("checkpoint", False), bool):
        raise SeedError("seed field 'checkpoint' must be true or false")
    return doc


def check_share(share: Any) -> None:
    if not isinstance(share, dict):
        raise SeedError("each share must be an object")
    tag, path = share.get("tag"), share.get("guest_path")
    if not isinstance(tag, str) or not tag or not tag.replace("_", "").replace("-", "").isalnum():
        raise SeedError(f"share tag {tag!r} must be letters, digits, - or _")
    if not isinstance(path, str) or not path.startswith("/") or "\n" in path:
        raise SeedError(f"share {tag}: guest_path must be an absolute path")
    if share.get("mode", "9p") not in SHARE_MODES:
        raise SeedError(f"share {tag}: mode must be one of {', '.join(SHARE_MODES)}")


def share_commands(shares: list[dict[str, Any]]) -> str:
    """Shell lines that mount each share (9p or virtiofs), read-only when asked."""
    lines = []
    for s in shares:
        path = shlex.quote(s["guest_path"])
        ro = ",ro" if s.get("readonly") else ""
        if s.get("mode", "9p") == "virtiofs":
            mount = f"mount -t virtiofs -o rw{ro} {s['tag']} {path}"
        else:
            mount = f"mount -t 9p -o {NINEP_OPTS}{ro} {s['tag']} {path}"
        fail = f'echo "dockyard: share {s["tag"]} not mounted at {path}" >/dev/console'
        lines.append(f"mkdir -p {path} && {mount} || {fail}")
    return "".join(line + "\n" for line in lines)


def write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def apply(doc: dict[str, Any], root: str = "/", set_system: bool = True) -> None:
    """Write the seed's files under `root`; `set_system` also sets hostname and clock."""
    hostname = doc.get("hostname", "dockyard")
    write(f"{root}etc/hostname", hostname + "\n")
    write(f"{root}etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {hostname}\n")
    os.makedirs(f"{root}root/.ssh", mode=0o700, exist_ok=True)
    write(
        f"{root}root/.ssh/authorized_keys", "".join(k + "\n" for k in doc["authorized_keys"]), 0o600
    )
    write(f"{root}etc/ssh/ssh_host_ed25519_key", doc["host_key"].strip() + "\n", 0o600)
    args = " ".join(shlex.quote(a) for a in doc.get("engine_args", []))
    write(f"{root}run/dockyard/engine.args", f"set -- {args}\n")
    write(f"{root}run/dockyard/shares.sh", share_commands(doc.get("shares", [])))
    write(f"{root}run/dockyard/data-serial", doc.get("data_device_serial", "dockyard-data") + "\n")
    if doc.get("checkpoint"):
        write(f"{root}run/dockyard/checkpoint", "")
    if set_system:
        socket.sethostname(hostname)
        host_time = float(doc.get("time", 0))
        if host_time > time.time():
            time.clock_settime(time.CLOCK_REALTIME, host_time)


def main() -> int:
    try:
        apply(read_seed())
    except (SeedError, OSError) as e:
        write("/run/dockyard/seed.error", f"{e}\n")
        print(f"dockyard: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
