#!/usr/bin/env python3
"""`make run`: a local registry holding the test images, the engine in the foreground, and
the desktop app on it (scripts/desktop_launch.py: a screenshot when there is no display;
RUN_ONCE=1 exits after it).

Why a registry: this machine reaches no public registry, so `docker pull` needs a local one
to be useful. It listens on 127.0.0.1:5000 (or the next free port up to 5010); docker and
our engine treat 127.0.0.0/8 registries as plain HTTP. Its storage persists under
.dockyard/registry, and it is stopped (by PID) when the engine exits or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from build_test_images import NAMES, build_all, layouts_present, push  # noqa: E402
from desktop_launch import desktop  # noqa: E402

REGISTRY_BIN = "docker-registry"
ENGINE_READY_S = 60.0


def engine_ready(sock: Path, engine: subprocess.Popen[bytes]) -> bool:
    """Whether GET /_ping answers 200 on the socket before the engine exits or time runs out."""
    deadline = time.monotonic() + ENGINE_READY_S
    while time.monotonic() < deadline and engine.poll() is None:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(sock))
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
                if s.recv(64).split(b" ")[1:2] == [b"200"]:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def stop_engine(engine: subprocess.Popen[bytes]) -> int:
    """SIGTERM (the engine stops cleanly), SIGKILL after 20 s."""
    if engine.poll() is None:
        engine.send_signal(signal.SIGTERM)
    try:
        return engine.wait(20)
    except subprocess.TimeoutExpired:
        engine.send_signal(signal.SIGKILL)
        return engine.wait()


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_registry(state: Path, ports: range) -> tuple[subprocess.Popen[bytes], str]:
    port = next((p for p in ports if port_free(p)), None)
    if port is None:
        raise SystemExit(f"no free port for the registry in {ports.start}-{ports.stop - 1}")
    state.mkdir(parents=True, exist_ok=True)
    config = state / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {state / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (state / "registry.log").open("ab")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log)
    address = f"127.0.0.1:{port}"
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"docker-registry exited; see {state / 'registry.log'}")
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=1):
                return proc, address
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("docker-registry did not answer in 10s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def instructions(sock: Path, registry: str) -> str:
    host = f"unix://{sock}"
    return (
        f"""
Dockyard engine starting on {host}

Point docker at it, either per shell:
    export DOCKER_HOST={host}
or once, as a named context:
    docker context create dockyard --docker host={host}
    docker context use dockyard

Test images are in the local registry {registry}:
"""
        + "".join(f"    docker pull {registry}/{n}\n" for n in NAMES)
        + """
Stop with Ctrl-C.
"""
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=REPO / ".dockyard" / "root")
    ap.add_argument("--socket", type=Path, default=REPO / ".dockyard" / "run" / "docker.sock")
    ap.add_argument("--images", type=Path, default=REPO / ".cache" / "test-images")
    ap.add_argument("--registry-state", type=Path, default=REPO / ".dockyard" / "registry")
    ap.add_argument("--port", type=int, default=5000, help="first registry port to try")
    ap.add_argument("--no-desktop", action="store_true", help="only the registry and engine")
    ap.add_argument(
        "--engine-arg", action="append", default=[], help="passed to the engine (repeatable)"
    )
    args = ap.parse_args()
    run_once = os.environ.get("RUN_ONCE", "") not in ("", "0")

    if not layouts_present(args.images):
        build_all(args.images.resolve())
    args.socket.parent.mkdir(parents=True, exist_ok=True)
    registry, address = start_registry(args.registry_state, range(args.port, args.port + 11))
    try:
        push(args.images.resolve(), address)
        print(instructions(args.socket.resolve(), address), flush=True)
        argv = [
            sys.executable,
            "-m",
            "engine",
            "serve",
            "--root",
            str(args.root.resolve()),
            "--host",
            f"unix://{args.socket.resolve()}",
            *args.engine_arg,
        ]
        engine = subprocess.Popen(argv, cwd=REPO)
        try:
            if args.no_desktop:
                return engine.wait()
            if not engine_ready(args.socket.resolve(), engine):
                print("the engine did not answer; not starting the desktop app", file=sys.stderr)
                return stop_engine(engine) or 1
            with desktop(f"unix://{args.socket.resolve()}", run_once) as app:
                if run_once:
                    code = app.wait()
                    stop_engine(engine)
                    return code
                return engine.wait()
        except KeyboardInterrupt:
            # The terminal sent SIGINT to the engine too; SIGTERM makes sure it stops cleanly.
            return stop_engine(engine)
    finally:
        stop(registry)


if __name__ == "__main__":
    sys.exit(main())
