"""`docker exec` for real: the helper enters every namespace and the cgroup of a container."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runtime.exec import ExecProcess, spawn_exec
from engine.runtime.shim_client import ExecFailed, ShimHandle
from engine.runtime.spec import ContainerSpec, ExecSpec
from tests.integration.test_runtime import (  # noqa: F401 - fixtures
    CGROUP_PARENT,
    Runtime,
    busybox_lower,
    runtime,
)


@pytest.fixture
def container(runtime: Runtime) -> Iterator[tuple[ContainerSpec, ShimHandle]]:  # noqa: F811
    spec, h = runtime.launch(["sleep", "1000"], hostname="exec-box")
    h.release()
    try:
        yield spec, h
    finally:
        h.signal(signal.SIGKILL)
        h.wait(20)


def procs(spec: ContainerSpec) -> list[Path]:
    from engine.cgroups.manager import detect

    return detect(CGROUP_PARENT).procs_files(spec.id)


def output(p: ExecProcess) -> tuple[int, str]:
    assert p.stdout_fd is not None
    data = b""
    while chunk := os.read(p.stdout_fd, 65536):
        data += chunk
    os.close(p.stdout_fd)
    if p.stderr_fd is not None:
        os.close(p.stderr_fd)
    return p.wait(), data.decode()


def run_exec(c: tuple[ContainerSpec, ShimHandle], ex: ExecSpec) -> tuple[int, str]:
    spec, h = c
    return output(spawn_exec(h.pid, spec, procs(spec), ex))


def test_exec_enters_the_namespaces(container: tuple[ContainerSpec, ShimHandle]) -> None:
    code, out = run_exec(container, ExecSpec(args=["sh", "-c", "hostname; cat /proc/1/cmdline"]))
    assert code == 0
    assert out.split("\n")[:2] == ["exec-box", "sleep\x001000\x00"]


def test_exec_joins_the_cgroup(container: tuple[ContainerSpec, ShimHandle]) -> None:
    spec, h = container
    p = spawn_exec(h.pid, spec, procs(spec), ExecSpec(args=["sleep", "1000"]))
    try:
        assert str(p.pid) in procs(spec)[0].read_text().split()
    finally:
        os.kill(p.pid, signal.SIGKILL)
        output(p)


def test_exec_user_workdir_env(container: tuple[ContainerSpec, ShimHandle]) -> None:
    ex = ExecSpec(
        args=["sh", "-c", "id -u; pwd; echo $X; echo $HOME"], user="app", cwd="/tmp", env=["X=1"]
    )
    assert run_exec(container, ex) == (0, "1000\n/tmp\n1\n/home/app\n")


def test_exec_exit_code(container: tuple[ContainerSpec, ShimHandle]) -> None:
    assert run_exec(container, ExecSpec(args=["sh", "-c", "exit 7"]))[0] == 7


def test_exec_not_found_is_127(container: tuple[ContainerSpec, ShimHandle]) -> None:
    spec, h = container
    with pytest.raises(ExecFailed) as info:
        spawn_exec(h.pid, spec, procs(spec), ExecSpec(args=["nope"]))
    assert info.value.exit_code == 127
    assert 'exec: "nope": executable file not found in $PATH' in info.value.message


def test_exec_bad_workdir_is_126(container: tuple[ContainerSpec, ShimHandle]) -> None:
    spec, h = container
    with pytest.raises(ExecFailed) as info:
        spawn_exec(h.pid, spec, procs(spec), ExecSpec(args=["true"], cwd="/no/such/dir"))
    assert info.value.exit_code == 126


def test_exec_tty(container: tuple[ContainerSpec, ShimHandle]) -> None:
    spec, h = container
    p = spawn_exec(
        h.pid, spec, procs(spec), ExecSpec(args=["sh", "-c", "tty; stty size"], tty=True)
    )
    assert p.pty_fd is not None
    p.resize(40, 120)
    data = b""
    while True:
        try:
            chunk = os.read(p.pty_fd, 65536)
        except OSError:  # EIO once the command exits
            break
        if not chunk:
            break
        data += chunk
    os.close(p.pty_fd)
    assert p.wait() == 0
    lines = data.decode().split()
    assert lines[0].startswith("/dev/pts/")
