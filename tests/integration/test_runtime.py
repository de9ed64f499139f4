"""The container runtime for real: shim, namespaces, overlay, caps, logs, live-restore.

Root only. The image is Debian's busybox-static in a temp dir used as the
single lowerdir; every test's processes, cgroups and temp dirs are removed
by the `runtime` fixture even when the test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.runtime.shim_client import ExecFailed, ShimHandle
from engine.runtime.spec import ContainerSpec, Mount
from tests.engine_process import alive

REPO = Path(__file__).resolve().parents[2]
CGROUP_PARENT = "dockyard-test"
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\nextra:x:2000:app\n"


def build_busybox_rootfs(dest: Path) -> None:
    """busybox-static plus relative applet links (--install -s would link host paths)."""
    (dest / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", dest / "bin" / "busybox")
    applets = subprocess.run(
        ["/bin/busybox", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", dest / "bin" / applet)
    (dest / "etc").mkdir()
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    (dest / "home" / "app").mkdir(parents=True)
    (dest / "tmp").mkdir(mode=0o1777)
    (dest / "bin" / "noexec").write_text("#!/bin/sh\necho never\n")
    (dest / "bin" / "noexec").chmod(0o644)


@pytest.fixture(scope="session")
def busybox_lower() -> Iterator[Path]:
    if not Path("/bin/busybox").exists():
        pytest.skip("needs Debian's busybox-static at /bin/busybox")
    top = Path(tempfile.mkdtemp(prefix="dockyard-rt-lower-"))
    try:
        build_busybox_rootfs(top / "lower")
        yield top / "lower"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def cgroup_dirs(cid: str) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    return [d / CGROUP_PARENT / cid for d in root.iterdir() if (d / CGROUP_PARENT / cid).exists()]


class Runtime:
    """Makes specs in a private temp dir and tears down everything they started."""

    def __init__(self, lower: Path) -> None:
        self.lower = lower
        self.tmp = Path(tempfile.mkdtemp(prefix="dockyard-rt-"))
        self.specs: list[tuple[ContainerSpec, Path]] = []

    def spec(self, args: list[str], **kw: object) -> tuple[ContainerSpec, Path]:
        cid = uuid.uuid4().hex
        base = self.tmp / cid[:12]
        for name in ("upper", "work", "rootfs", "state"):
            (base / name).mkdir(parents=True)
        spec = ContainerSpec(
            id=cid,
            lowerdirs=[str(self.lower)],
            upperdir=str(base / "upper"),
            workdir=str(base / "work"),
            rootfs=str(base / "rootfs"),
            args=args,
            env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            log_path=str(base / "container.log"),
            cgroup_parent=CGROUP_PARENT,
        )
        for key, value in kw.items():
            setattr(spec, key, value)
        self.specs.append((spec, base / "state"))
        return spec, base / "state"

    def launch(self, args: list[str], **kw: object) -> tuple[ContainerSpec, ShimHandle]:
        spec, state = self.spec(args, **kw)
        return spec, ShimHandle.launch(spec, state)

    def cleanup(self) -> None:
        from engine.cgroups.manager import detect

        for spec, state in self.specs:
            with contextlib.suppress(OSError, ValueError, KeyError):
                info = json.loads((state / "shim.json").read_text())
                if not (state / "exit.json").exists():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(info["pid"]), signal.SIGKILL)
                deadline = time.monotonic() + 5
                while alive(int(info["shim_pid"])) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if alive(int(info["shim_pid"])):
                    os.kill(int(info["shim_pid"]), signal.SIGKILL)
            with contextlib.suppress(Exception):
                detect(CGROUP_PARENT).remove(spec.id)
        with contextlib.suppress(Exception):
            detect(CGROUP_PARENT).prune()  # the parent too, once no test container is left in it
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def runtime(busybox_lower: Path) -> Iterator[Runtime]:
    rt = Runtime(busybox_lower)
    try:
        yield rt
    finally:
        rt.cleanup()


def read_all(sock: socket.socket, timeout: float = 20) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return data


def demux(data: bytes) -> tuple[bytes, bytes]:
    out = {1: b"", 2: b""}
    while data:
        stream, length = struct.unpack(">BxxxI", data[:8])
        out[stream] += data[8 : 8 + length]
        data = data[8 + length :]
    return out[1], out[2]


def run(rt: Runtime, args: list[str], **kw: object) -> tuple[int, str, str]:
    spec, h = rt.launch(args, **kw)
    sock = h.attach(False, True, True)
    h.release()
    raw = read_all(sock)
    status = h.wait(20)
    assert status is not None
    if spec.tty:
        return status.exit_code, raw.decode(), ""
    out, err = demux(raw)
    return status.exit_code, out.decode(), err.decode()


def sh(rt: Runtime, script: str, **kw: object) -> tuple[int, str, str]:
    return run(rt, ["sh", "-c", script], **kw)


# -- output ----------------------------------------------------------------


def test_output_reaches_attached_socket_and_json_log(runtime: Runtime) -> None:
    spec, h = runtime.launch(["sh", "-c", "echo hi; echo oops >&2; printf tail"])
    sock = h.attach(False, True, True)
    h.release()
    out, err = demux(read_all(sock))
    assert (out, err) == (b"hi\ntail", b"oops\n")
    assert h.wait(20) is not None
    records = [json.loads(line) for line in Path(spec.log_path).read_text().splitlines()]
    by_stream = {(r["stream"], r["log"]) for r in records}
    assert by_stream == {("stdout", "hi\n"), ("stderr", "oops\n"), ("stdout", "tail")}
    assert all(r["time"].endswith("Z") for r in records)


def test_log_rotation_keeps_max_file(runtime: Runtime) -> None:
    code, _, _ = sh(
        runtime,
        "i=0; while [ $i -lt 200 ]; do echo line$i; i=$((i+1)); done",
        log_max_size=1000,
        log_max_file=3,
    )
    assert code == 0
    spec = runtime.specs[-1][0]
    log = Path(spec.log_path)
    assert log.exists() and Path(f"{log}.1").exists() and Path(f"{log}.2").exists()
    assert not Path(f"{log}.3").exists()
    assert "line199" in log.read_text()


# -- exit codes --------------------------------------------------------------


@pytest.mark.parametrize(("args", "code"), [(["true"], 0), (["sh", "-c", "exit 3"], 3)])
def test_exit_codes(runtime: Runtime, args: list[str], code: int) -> None:
    assert run(runtime, args)[0] == code


def test_command_not_found_is_127(runtime: Runtime) -> None:
    _, h = runtime.launch(["no-such-command"])
    with pytest.raises(ExecFailed) as info:
        h.release()
    assert info.value.exit_code == 127
    assert 'exec: "no-such-command": executable file not found in $PATH' in info.value.message
    status = h.wait(20)
    assert status is not None and status.exit_code == 127
    assert "executable file not found" in status.error


def test_not_executable_is_126(runtime: Runtime) -> None:
    _, h = runtime.launch(["/bin/noexec"])
    with pytest.raises(ExecFailed) as info:
        h.release()
    assert info.value.exit_code == 126
    status = h.wait(20)
    assert status is not None and status.exit_code == 126


def test_sigkill_is_137(runtime: Runtime) -> None:
    _, h = runtime.launch(["sleep", "1000"])
    h.release()
    assert h.wait(0.2) is None
    h.signal(signal.SIGKILL)
    status = h.wait(20)
    assert status is not None and status.exit_code == 137


def test_init_reaper_forwards_signals(runtime: Runtime) -> None:
    _, h = runtime.launch(["sleep", "1000"], init=True)
    h.release()
    assert h.wait(0.2) is None
    h.signal(signal.SIGTERM)  # a bare PID 1 would ignore it; the reaper forwards it
    status = h.wait(20)
    assert status is not None and status.exit_code == 128 + signal.SIGTERM


def test_init_runs_command_as_pid_2(runtime: Runtime) -> None:
    code, out, _ = sh(runtime, "echo $$; exit 4", init=True)
    assert (code, out) == (4, "2\n")


# -- isolation -----------------------------------------------------------------


def test_hostname(runtime: Runtime) -> None:
    assert sh(runtime, "hostname", hostname="box1")[1] == "box1\n"


def test_default_hostname_is_short_id(runtime: Runtime) -> None:
    _, out, _ = sh(runtime, "hostname")
    assert out.strip() == runtime.specs[-1][0].id[:12]


def test_pid_namespace(runtime: Runtime) -> None:
    code, out, _ = sh(runtime, "echo $$; ls /proc | grep -c '^[0-9]'")
    assert code == 0
    pid, count = out.split()
    assert pid == "1"
    assert int(count) <= 3  # sh, and ls/grep: no host process is visible


def test_masked_and_readonly_paths(runtime: Runtime) -> None:
    # This kernel may lack /proc/kcore; every masked file that exists reads empty.
    files = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list") if Path(p).exists()]
    assert files
    script = (
        "".join(f"wc -c < {p}; " for p in files)
        + "(echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo WROTE || echo RO; "
        "ls /sys/firmware | wc -l; grep -c ' /proc/sys ro,' /proc/self/mountinfo"
    )
    _, out, _ = sh(runtime, script)
    assert out.split() == ["0"] * len(files) + ["RO", "0", "1"]


def test_capabilities_are_dockers_default(runtime: Runtime) -> None:
    _, out, _ = sh(runtime, "grep -E '^(CapEff|CapBnd|CapInh|NoNewPrivs)' /proc/self/status")
    fields = dict(line.split(":\t") for line in out.splitlines())
    assert fields == {
        "CapInh": "0000000000000000",
        "CapEff": "00000000a80425fb",
        "CapBnd": "00000000a80425fb",
        "NoNewPrivs": "1",
    }


def test_cap_drop_all_and_add(runtime: Runtime) -> None:
    _, out, _ = sh(
        runtime, "grep CapEff /proc/self/status", cap_drop=["ALL"], cap_add=["net_admin"]
    )
    assert out.split()[1] == f"{1 << 12:016x}"


def test_non_root_user_has_no_effective_caps(runtime: Runtime) -> None:
    _, out, _ = sh(runtime, "grep CapEff /proc/self/status", user="1000")
    assert out.split()[1] == "0" * 16


# -- process settings -----------------------------------------------------------


def test_cwd_env_and_numeric_user(runtime: Runtime) -> None:
    code, out, _ = sh(
        runtime,
        "pwd; echo $FOO; id -u; id -g; echo $HOME",
        cwd="/tmp",
        env=["PATH=/bin", "FOO=bar"],
        user="4242:2000",
    )
    assert (code, out.split()) == (0, ["/tmp", "bar", "4242", "2000", "/"])


def test_named_user_from_the_image_passwd(runtime: Runtime) -> None:
    _, out, _ = sh(runtime, "id -u; id -g; id -G; echo $HOME", user="app")
    assert out.split() == ["1000", "1000", "1000", "2000", "/home/app"]


def test_missing_workdir_is_created(runtime: Runtime) -> None:
    assert sh(runtime, "pwd", cwd="/srv/app")[1] == "/srv/app\n"


def test_unknown_user_fails_setup(runtime: Runtime) -> None:
    with pytest.raises(EngineError) as info:
        runtime.launch(["true"], user="nobody-here")
    assert "unable to find user nobody-here: no matching entries in passwd file" in str(info.value)
    assert cgroup_dirs(runtime.specs[-1][0].id) == []


# -- filesystem -------------------------------------------------------------------


def test_readonly_bind_mount_and_tmpfs(runtime: Runtime) -> None:
    src = runtime.tmp / "data"
    src.mkdir()
    (src / "f").write_text("from host\n")
    mounts = [
        Mount(target="/data", source=str(src), readonly=True),
        Mount(target="/scratch", kind="tmpfs", options=["size=1m"]),
    ]
    script = "cat /data/f; touch /data/g 2>/dev/null || echo RO; touch /scratch/x && echo TMP"
    _, out, _ = sh(runtime, script, mounts=mounts)
    assert out.split("\n")[:3] == ["from host", "RO", "TMP"]
    assert not (src / "g").exists()


def test_readonly_rootfs(runtime: Runtime) -> None:
    _, out, _ = sh(
        runtime,
        "touch /x 2>/dev/null || echo RO; touch /dev/shm/y && echo SHM",
        readonly_rootfs=True,
    )
    assert out.split() == ["RO", "SHM"]


def test_etc_files_are_bound(runtime: Runtime) -> None:
    hosts = runtime.tmp / "hosts"
    hosts.write_text("127.0.0.1 localhost special\n")
    assert "special" in sh(runtime, "cat /etc/hosts", hosts_path=str(hosts))[1]


def test_writes_land_in_upperdir(runtime: Runtime) -> None:
    sh(runtime, "echo x > /made-here")
    spec = runtime.specs[-1][0]
    assert (Path(spec.upperdir) / "made-here").read_text() == "x\n"
    assert not (runtime.lower / "made-here").exists()


def test_nothing_left_mounted_and_cgroup_removed(runtime: Runtime) -> None:
    spec, h = runtime.launch(["sleep", "1000"])
    h.release()
    assert cgroup_dirs(spec.id) != []
    h.signal(signal.SIGKILL)
    assert h.wait(20) is not None
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(runtime.tmp) not in mountinfo
    assert cgroup_dirs(spec.id) == []


# -- stdio ---------------------------------------------------------------------------


def test_stdin_once_half_close_ends_input(runtime: Runtime) -> None:
    _, h = runtime.launch(["cat"], open_stdin=True, stdin_once=True)
    sock = h.attach(True, True, True)
    h.release()
    sock.sendall(b"abc\n")
    sock.shutdown(socket.SHUT_WR)
    out, _ = demux(read_all(sock))
    assert out == b"abc\n"
    status = h.wait(20)
    assert status is not None and status.exit_code == 0


def test_tty_and_resize(runtime: Runtime) -> None:
    spec, h = runtime.launch(["sh", "-c", "tty; stty size"], tty=True)
    sock = h.attach(False, True, True)
    h.resize(30, 100)
    h.release()
    out = read_all(sock).decode()
    assert out.split() == ["/dev/pts/0", "30", "100"]
    status = h.wait(20)
    assert status is not None and status.exit_code == 0
    assert '"stream":"stdout"' in Path(spec.log_path).read_text()


# -- live restore --------------------------------------------------------------------

LAUNCHER = """
import sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from engine.runtime.spec import ContainerSpec
from engine.runtime.shim_client import ShimHandle
import json
spec = ContainerSpec.from_json(json.loads(Path({spec!r}).read_text()))
h = ShimHandle.launch(spec, Path({state!r}))
h.release()
print(h.pid, flush=True)
time.sleep(1000)
"""


def test_shim_survives_sigkill_of_its_launcher(runtime: Runtime) -> None:
    spec, state = runtime.spec(["sleep", "1000"])
    spec_file = runtime.tmp / "spec-in.json"
    spec_file.write_text(json.dumps(spec.to_json()))
    code = LAUNCHER.format(repo=str(REPO), spec=str(spec_file), state=str(state))
    launcher = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert launcher.stdout is not None
        pid = int(launcher.stdout.readline())
    finally:
        launcher.kill()  # SIGKILL, like a crashing daemon
        launcher.wait()
    assert alive(pid)
    h = ShimHandle.recover(state)
    assert h is not None and h.pid == pid
    assert h.exit_status() is None
    h.signal(signal.SIGKILL)
    status = h.wait(20)
    assert status is not None and status.exit_code == 137
    assert ShimHandle.recover(state) is None
