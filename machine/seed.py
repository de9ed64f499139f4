"""seed.json: the configuration the host hands the guest at boot (issue 5's guest contract).

Why a file passed through fw_cfg: the guest reads it once, early, without a network; it
carries the pinned host key (a secret), so it is written 0600 and QEMU reads it from the
machine directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from machine import filenames, keys
from machine.backend import ShareSpec

SEED_VERSION = 1
DATA_DEVICE_SERIAL = "dockyard-data"


def build(
    hostname: str,
    authorized_keys: Sequence[str],
    host_key: str,
    engine_args: Sequence[str],
    shares: Sequence[ShareSpec],
    now: float,
    checkpoint: bool = False,
) -> dict[str, Any]:
    """The seed document (pure). `checkpoint`: QEMU offers the control port, so the guest
    waits for it and parks at its boot checkpoint (machine/bootstate.py)."""
    return {
        "version": SEED_VERSION,
        "hostname": hostname,
        "authorized_keys": list(authorized_keys),
        "host_key": host_key,
        "engine_args": list(engine_args),
        "shares": [
            {
                "tag": f"share{i}",
                "guest_path": share.guest_path,
                "mode": share.mode,
                "readonly": share.readonly,
            }
            for i, share in enumerate(shares)
            if share.mode != "sync"  # guest-local: the sync agent makes the folder itself
        ],
        "time": int(now),
        "data_device_serial": DATA_DEVICE_SERIAL,
        "checkpoint": checkpoint,
    }


def document(
    directory: Path,
    engine_args: Sequence[str],
    shares: Sequence[ShareSpec] = (),
    checkpoint: bool = False,
) -> dict[str, Any]:
    """The machine's seed from its keys, as `write` would write it now."""
    return build(
        "dockyard",
        [keys.client_public(directory)],
        keys.host_private(directory),
        engine_args,
        shares,
        time.time(),
        checkpoint,
    )


def write(
    directory: Path,
    engine_args: Sequence[str],
    shares: Sequence[ShareSpec] = (),
    checkpoint: bool = False,
) -> Path:
    """Write the machine's seed from its keys; returns the path."""
    doc = document(directory, engine_args, shares, checkpoint)
    path = directory / filenames.SEED
    keys.write_private(path, json.dumps(doc, indent=1) + "\n")
    return path
