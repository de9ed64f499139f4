"""Run our engine daemon as a child process, talk to it, and leave nothing behind.

Why a module of its own: the pytest fixtures (tests/conftest.py) and the benchmarks (bench/)
start engines the same way, and both must clean up the same things when an engine or a test
dies half-way: container processes, shims, mounts under the root, cgroups, the temp dir.

Cleanup only ever touches what this run started: container PIDs recorded under *this*
engine's root, shims whose command line names *this* root, cgroups under *this* engine's
unique cgroup parent, mounts under *this* root.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.network import firewall
from engine.network.datapath import veth_name
from engine.network.manager import firewall_table

REPO = Path(__file__).resolve().parents[1]
SHIM_MARKER = "engine.runtime.shim"
ENGINE_MARKER = "engine.runtime."  # shims run engine.runtime.shim or .template code
CGROUP_FS = Path("/sys/fs/cgroup")
_seq = itertools.count(1)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket: enough for /_ping and JSON calls."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def api_call(
    sock_path: str | os.PathLike[str],
    method: str,
    path: str,
    body: Any = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One request; returns (status, decoded JSON or text or None)."""
    conn = UnixHTTPConnection(sock_path, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    if not raw:
        return resp.status, None
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode(errors="replace")


class EngineStartError(RuntimeError):
    pass


class EngineProcess:
    """One engine daemon in its own short temp dir (unix socket paths must stay < 108 bytes).

    Layout: <dir>/root (--root), <dir>/run (--exec-root), <dir>/docker.sock,
    <dir>/engine.log, <dir>/docker-config.
    """

    def __init__(self, base: Path | None = None, cgroup_parent: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dy-", dir=base or "/tmp"))
        self.root = self.dir / "root"
        self.exec_root = self.dir / "run"
        self.socket = self.dir / "docker.sock"
        self.log_path = self.dir / "engine.log"
        self.config_dir = self.dir / "docker-config"
        self.config_dir.mkdir()
        self.cgroup_parent = cgroup_parent or f"dockyard-it-{os.getpid()}-{next(_seq)}"
        self.bridge = free_bridge_name()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    # -- environment -------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus DOCKER_HOST and a private DOCKER_CONFIG (no user creds leak in)."""
        env = dict(os.environ)
        env.pop("DOCKER_CONTEXT", None)
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.config_dir))
        return env

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "engine",
            "serve",
            "--root",
            str(self.root),
            "--host",
            self.host,
            "--exec-root",
            str(self.exec_root),
            "--cgroup-parent",
            self.cgroup_parent,
            "--bridge",
            self.bridge,
        ]

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        """Start the daemon and wait until GET /_ping answers; on failure show the log."""
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv(),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        self.started_at = time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EngineStartError(
                    f"engine exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self.ping():
                return
            time.sleep(0.05)
        raise EngineStartError(f"engine did not answer /_ping in {timeout}s:\n{self.log_tail()}")

    def ping(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            status, _ = api_call(self.socket, "GET", "/_ping", timeout=2)
        except OSError:
            return False
        return status == 200

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the daemon, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill9(self) -> None:
        """Crash the daemon (containers and shims stay up) to test recovery."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- clients -----------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """JSON call that raises on an HTTP error, with the engine's message."""
        status, data = api_call(self.socket, method, path, body, timeout)
        if status >= 400:
            raise AssertionError(f"{method} {path} -> {status}: {data}")
        return data

    def docker(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real docker CLI against this engine; on failure show output and log."""
        cmd = ["docker", *args]
        res = subprocess.run(
            cmd,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {res.returncode}\nstdout: {res.stdout}\n"
                f"stderr: {res.stderr}\nengine log:\n{self.log_tail()}"
            )
        return res

    @contextlib.contextmanager
    def docker_running(self, *args: str, stdin: bool = False) -> Iterator[subprocess.Popen[str]]:
        """The real docker CLI left running (`logs -f`, `attach`, `wait`) with stdout piped,
        and stdin too if asked; killed and reaped on the way out if it has not ended."""
        proc = subprocess.Popen(
            ["docker", *args],
            env=self.env,
            stdin=subprocess.PIPE if stdin else None,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    # -- cleanup -----------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything this engine started, whatever state it is in. Never raises."""
        steps = (
            self._remove_containers_via_api,
            self.stop,
            self._kill_leftovers,
            self._cleanup_cgroups,
            self._unmount_root,
            self._remove_network_leftovers,
        )
        for step in steps:
            with contextlib.suppress(Exception):
                step()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EngineProcess:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _remove_containers_via_api(self, budget: float = 120.0) -> None:
        """Force-remove every container through the engine, within `budget` seconds; what
        is left after that is killed by PID and cgroup in the later cleanup steps."""
        if self.proc is None or self.proc.poll() is not None or not self.ping():
            return
        deadline = time.monotonic() + budget
        _, items = api_call(self.socket, "GET", "/containers/json?all=1", timeout=10)
        for item in items or []:
            if time.monotonic() > deadline:
                return
            cid = item["Id"]
            try:
                status, _ = api_call(
                    self.socket, "DELETE", f"/containers/{cid}?force=1&v=1", timeout=20
                )
            except OSError:
                status = 599
            if status >= 400 and status != 404:
                with contextlib.suppress(OSError):
                    api_call(self.socket, "POST", f"/containers/{cid}/kill", timeout=10)

    def recorded_pids(self) -> list[int]:
        """Container init PIDs the engine recorded, best effort: "Pid" in
        <root>/containers/<id>/state.json, or State.Pid in config.v2.json."""
        pids = []
        for record in (self.root / "containers").glob("*/*.json"):
            with contextlib.suppress(Exception):
                doc = json.loads(record.read_text())
                pid = int(doc.get("Pid") or doc.get("State", {}).get("Pid") or 0)
                if pid > 0:
                    pids.append(pid)
        return sorted(set(pids))

    def shim_pids(self) -> list[int]:
        """This engine's shims: parents of recorded container PIDs that run engine code
        (shims fork from a template, so their cmdline need not name the root), plus any
        process whose cmdline names the shim module and this engine's directory."""
        found = set(shim_pids(self.dir))
        for pid in self.recorded_pids():
            parent = parent_pid(pid)
            if parent > 1 and ENGINE_MARKER in cmdline(parent):
                found.add(parent)
        return sorted(found)

    def _is_ours(self, pid: int) -> bool:
        """Guard against PID reuse: it runs in our cgroup parent, or names our root."""
        try:
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            return False
        return self.cgroup_parent in cgroups or str(self.dir).encode() in cmdline

    def _kill_leftovers(self) -> None:
        """Find shims first (via their containers), then kill containers and shims."""
        shims = self.shim_pids()
        for pid in self.recorded_pids():
            if self._is_ours(pid):
                kill_quietly(pid)
        for pid in shims:
            kill_quietly(pid)

    def cgroup_dirs(self) -> list[Path]:
        """Our cgroup-parent dirs in every hierarchy: at the top, or under our own cgroup."""
        found: set[Path] = set()
        for hier in CGROUP_FS.iterdir():
            candidate = hier / self.cgroup_parent
            if candidate.is_dir():
                found.add(candidate)
        for rel in own_cgroup_paths():
            for hier in CGROUP_FS.iterdir():
                candidate = hier / rel.lstrip("/") / self.cgroup_parent
                if candidate.is_dir():
                    found.add(candidate)
        if (CGROUP_FS / self.cgroup_parent).is_dir():
            found.add(CGROUP_FS / self.cgroup_parent)
        return sorted(found)

    def _cleanup_cgroups(self) -> None:
        for top in self.cgroup_dirs():
            remove_cgroup_tree(top)

    def _unmount_root(self) -> None:
        for mnt in mounts_under(self.dir):
            subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)

    def network_links(self) -> list[str]:
        """Links this engine makes, named as the engine names them: its default bridge,
        its networks' bridges (recorded under <root>/networks) and one veth per container
        and network ("dyv" + sha256(container id + network id)[:11])."""
        bridges, net_ids = {self.bridge}, set()
        for record in (self.root / "networks").glob("*.json"):
            with contextlib.suppress(Exception):
                doc = json.loads(record.read_text())
                net_ids.add(str(doc["id"]))
                if doc.get("bridge"):
                    bridges.add(str(doc["bridge"]))
        cids = [p.name for p in (self.root / "containers").glob("*") if p.is_dir()]
        veths = {veth_name(cid, nid) for cid in cids for nid in net_ids}
        return sorted(bridges | veths)

    def firewall_table(self) -> str:
        return firewall_table(self.bridge)

    def _remove_network_leftovers(self) -> None:
        """What an engine that died without cleaning up leaves: its links, and its firewall
        rules, removed by the engine's own backend for its table (nft or iptables)."""
        present = {p.name for p in Path("/sys/class/net").iterdir()}
        for link in self.network_links():
            if link in present:
                run_quiet(["ip", "link", "del", link])
        firewall.detect(self.firewall_table()).clear()


# -- helpers shared with bench/ ---------------------------------------------------------


def free_bridge_name() -> str:
    """A default bridge of the engine's own (<= 15 chars), so engines running at once (other
    test runs on this machine too) never share one: one no link on the host has yet."""
    while True:
        name = f"dyt{os.getpid() % 10000}{next(_seq)}"[:15]
        if not Path("/sys/class/net", name).exists():
            return name


def alive(pid: int) -> bool:
    """Running, not a zombie: this box's PID 1 reaps adopted processes lazily, so a process
    that has exited can linger as a zombie that still answers kill(pid, 0)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def kill_quietly(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def proc_cmdlines() -> Iterator[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        yield int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace")


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def parent_pid(pid: int) -> int:
    """PPid from /proc/PID/stat (after the parenthesised comm, which may hold spaces)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def shim_pids(under: Path) -> list[int]:
    """Shim processes whose cmdline names the shim module and a path under `under` (the
    engine's dir, holding both its root and its exec root)."""
    return [pid for pid, cmd in proc_cmdlines() if SHIM_MARKER in cmd and str(under) in cmd]


def _proc_kib(path: str, key: str) -> int:
    """The kB figure on the `key` line of a /proc file, 0 if the process is gone."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid: int) -> int:
    """Resident set size from /proc/PID/status (VmRSS), 0 if gone."""
    return _proc_kib(f"/proc/{pid}/status", "VmRSS:")


def pss_kib(pid: int) -> int:
    """Proportional set size (shared pages split among sharers), 0 if gone. Fairer than RSS
    for shims forked from one template, which share most of their pages."""
    return _proc_kib(f"/proc/{pid}/smaps_rollup", "Pss:")


def own_cgroup_paths() -> list[str]:
    paths = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            path = line.split(":", 2)[2]
            if path not in ("/", ""):
                paths.append(path)
    return paths


def remove_cgroup_tree(top: Path) -> None:
    """Kill every process in the tree, then rmdir bottom-up (cgroupfs dirs rmdir only)."""
    dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    dirs.append(top)
    for d in dirs:
        with contextlib.suppress(OSError):
            for pid in (d / "cgroup.procs").read_text().split():
                kill_quietly(int(pid))
    for d in dirs:
        for _ in range(50):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def mounts_under(path: Path) -> list[str]:
    """Mount points below `path`, deepest first (mountinfo field 5, octal-escaped)."""
    prefix = str(path.resolve())
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: -p.count("/"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll `pred()` until truthy or timeout; returns the final truthiness."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


@contextlib.contextmanager
def running_engine(
    base: Path | None = None, cgroup_parent: str | None = None
) -> Iterator[EngineProcess]:
    with EngineProcess(base, cgroup_parent) as eng:
        yield eng


def run_quiet(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False, **kw)
