"""An engine running 1,000 containers holds more than 1,024 fds: launching and waiting
must not use select(), whose fd numbers stop there."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest

from tests.integration.test_runtime import (  # noqa: F401 - fixtures
    Runtime,
    busybox_lower,
    runtime,
    sh,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def fds_above_1024() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    null = os.open("/dev/null", os.O_RDONLY)
    held = [os.dup(null) for _ in range(1100)]
    try:
        yield
    finally:
        for fd in [null, *held]:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("fds_above_1024")
def test_launch_attach_and_wait_with_high_fd_numbers(runtime: Runtime) -> None:  # noqa: F811
    probe = os.dup(0)
    os.close(probe)
    assert probe > 1024, "the fixture did not push fds past 1024"
    code, out, _ = sh(runtime, "echo hi; exit 3")
    assert (code, out) == (3, "hi\n")
    _, h = runtime.launch(["sleep", "1000"])
    h.release()
    assert h.wait(0.05) is None  # still running: the timeout path works too
