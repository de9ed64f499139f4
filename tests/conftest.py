"""Shared fixtures: test images, a local registry holding them, and engine daemons.

Scopes, and why:
- `test_images` (session): building the OCI layouts is deterministic, so once per run.
- `registry_with_images` (session): one docker-registry for the whole run; images are
  content-addressed and read-only, so tests cannot disturb each other through it.
- `engine` (function): a fresh daemon with its own root, socket and cgroup parent per test,
  so state never leaks between tests and teardown can wipe everything it started.
- `registry`, `auth_registry` (function, from tests/registry.py): empty registries.
- `shared_engine` (module): one daemon for a module of read-mostly tests, when starting a
  daemon per test would dominate the run time. Tests using it must clean up their
  containers (or use unique names) themselves.

Tests under tests/integration/ are marked `integration` automatically and skipped when not
root, because they need namespaces, mounts and cgroups.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess
from tests.registry import (  # re-exported: `registry`, `auth_registry` for every test
    auth_registry,  # noqa: F401
    push_oci_layout,
    registry,  # noqa: F401
    run_registry,
)

REPO = Path(__file__).resolve().parents[1]
IMAGES_DIR = Path(os.environ.get("DOCKYARD_TEST_IMAGES", REPO / ".cache" / "test-images"))
IMAGE_NAMES = ("busybox", "multilayer", "multiarch")


# Modules that boot guests under TCG (or freeze the whole app): they are CPU-bound, so under
# `make test`'s parallel workers they share one worker and run one after another, where
# their stage timeouts hold; every other module runs whole on one worker (its module-scoped
# fixtures are made once).
SERIAL_GROUP = "guests"
GUEST_MODULES = frozenset(
    {
        "test_vmimage_build",
        "test_machine_qemu",
        "test_machine_bootstate",
        "test_machine_libvirt",
        "test_machine_ports",
        "test_machine_shares",
        "test_packaging_linux",
    }
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration_dir = REPO / "tests" / "integration"
    skip_root = pytest.mark.skip(reason="integration tests need root (namespaces, cgroups)")
    for item in items:
        path = Path(str(item.fspath))
        group = SERIAL_GROUP if path.stem in GUEST_MODULES else str(path.relative_to(REPO))
        item.add_marker(pytest.mark.xdist_group(group))
        if integration_dir in path.parents:
            item.add_marker(pytest.mark.integration)
        elif "integration" not in item.keywords:
            item.add_marker(pytest.mark.unit)
        if "integration" in item.keywords and os.geteuid() != 0:
            item.add_marker(skip_root)


@pytest.fixture(scope="session")
def test_images() -> Path:
    """Directory holding OCI layouts busybox/, multilayer/, multiarch/ (built if missing)."""
    if not all((IMAGES_DIR / n / "index.json").is_file() for n in IMAGE_NAMES):
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "build_test_images.py"),
                "--out",
                str(IMAGES_DIR),
            ],
            check=True,
            capture_output=True,
        )
    return IMAGES_DIR


@pytest.fixture(scope="session")
def registry_with_images(
    test_images: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A local plain-HTTP registry with busybox, multilayer and multiarch at :latest.

    Yields "127.0.0.1:PORT"; pull e.g. f"{registry_with_images}/busybox"."""
    with run_registry(tmp_path_factory.mktemp("registry-with-images")) as reg:
        for name in IMAGE_NAMES:
            push_oci_layout(test_images / name, reg, f"{name}:latest")
        yield reg.host


def _engine() -> Iterator[EngineProcess]:
    eng = EngineProcess()
    try:
        eng.start()
        yield eng
    finally:
        eng.close()


@pytest.fixture
def engine() -> Iterator[EngineProcess]:
    """A fresh engine daemon for one test (function scope: no state shared between tests).

    Attributes: .socket, .root, .env (DOCKER_HOST + private DOCKER_CONFIG), .host,
    .cgroup_parent. Methods: .docker(*args, check=True, input=None, timeout=120),
    .api(method, path, body=None), .restart(), .kill9(), .start(), .stop(), .log_tail().
    Teardown removes containers via the API, stops the daemon (TERM, then KILL), kills
    recorded container PIDs and shims of this root, removes this engine's cgroups and
    unmounts anything left under its directory."""
    yield from _engine()


@pytest.fixture(scope="module")
def shared_engine() -> Iterator[EngineProcess]:
    """One engine daemon per test module (module scope: see this file's docstring)."""
    yield from _engine()
