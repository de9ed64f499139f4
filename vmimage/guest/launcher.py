"""The guest's engine process from the first second of boot (stdlib only).

Under an emulator, importing the engine takes seconds, and so does the rest
of the boot (network, sshd, data disk). This process overlaps the two: it
applies the seed (boot.sh waits for that), imports the engine while boot.sh
carries on. When QEMU offers the control port, it then holds the boot
checkpoint (wakeup.py): once boot.sh has parked too, it prints the
`checkpoint` stage and waits for the host's wake-up line, so the host can
save the guest right there and later start from that state. Then it waits
until the data disk and the late modules are ready and runs `engine serve`
in this same process. A thread prints the `engine` stage marker once
`/_ping` answers, which saves a separate Python start.
Signal files in /run/dockyard:
  seed.done / seed.error   written here, read by boot.sh
  parked                   written by boot.sh: it waits at the checkpoint
  awake                    written here once the host's wake-up line is applied
  data.ready, late.ready   written by boot.sh, awaited here
  boot.failed              written by boot.sh when a stage failed: give up
"""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, "/opt/dockyard")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ping  # guest/ping.py, next to this file
import seed  # guest/seed.py, next to this file
import wakeup  # guest/wakeup.py, next to this file

RUN = "/run/dockyard"
ROOT = "/var/lib/dockyard"
SOCKET = f"{RUN}/docker.sock"
ENGINE_TIMEOUT = 120.0
PORT_WAIT_S = 60.0  # the host announces the port to the driver after it loads


def console(line: str) -> None:
    try:
        with open("/dev/console", "w") as f:
            f.write(line + "\n")
    except OSError:
        print(line, file=sys.stderr)


def uptime() -> str:
    with open("/proc/uptime") as f:
        return f.read().split()[0]


def apply_seed() -> list[str]:
    """Apply the seed; returns the engine arguments. Exits on a bad seed."""
    try:
        doc = seed.read_seed()
        seed.apply(doc)
    except (seed.SeedError, OSError) as e:
        seed.write(f"{RUN}/seed.error", f"{e}\n")
        sys.exit(1)
    seed.write(f"{RUN}/seed.done", "")
    return list(doc.get("engine_args", []))


def wait_for(*names: str, any_of: bool = False) -> None:
    """Block until every file in `names` (or one, with `any_of`) exists under RUN; exit if
    the boot failed."""
    done = any if any_of else all
    while not done(os.path.exists(f"{RUN}/{n}") for n in names):
        if os.path.exists(f"{RUN}/boot.failed"):
            sys.exit(1)
        time.sleep(0.01)


def announce_ready() -> None:
    if ping.main(SOCKET, ENGINE_TIMEOUT) == 0:
        console(f"dockyard-stage engine {uptime()}")
    else:
        console(f"dockyard-fail engine no answer to /_ping within {ENGINE_TIMEOUT:.0f} s")


def checkpoint() -> None:
    """Hold the boot checkpoint when boot.sh parked there (the seed said QEMU offers the
    control port); boot.sh itself goes on when this process writes `awake`."""
    wait_for("parked", "awake", any_of=True)
    if not os.path.exists(f"{RUN}/parked"):
        return
    port = wakeup.wait_for_port(PORT_WAIT_S)
    if port is None:
        console(f"dockyard-fail checkpoint no control port {wakeup.PORT_NAME} appeared")
        sys.exit(1)
    console(f"dockyard-stage checkpoint {uptime()}")
    try:
        wakeup.wait_and_apply(port)
    except OSError as e:
        console(f"dockyard-fail checkpoint the control port {port} failed: {e}")
        sys.exit(1)
    seed.write(f"{RUN}/awake", "")


def main() -> int:
    args = apply_seed()
    import engine.__main__ as engine_main  # the slow part, overlapped with the boot
    import engine.daemon  # noqa: F401

    checkpoint()
    wait_for("data.ready", "late.ready")
    os.chdir(ROOT)
    threading.Thread(target=announce_ready, daemon=True).start()
    return engine_main.main(["serve", "--root", ROOT, "--host", f"unix://{SOCKET}", *args])


if __name__ == "__main__":
    sys.exit(main())
