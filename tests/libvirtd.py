"""A libvirtd for the libvirt tests: the one already running, or one started (and stopped)
here as our own child. There is no systemd on the test machines to start it.

Why our libvirtd gets a private qemu.conf, bind-mounted in a mount namespace of its own
(the host's file is never touched): on a host whose /dev/kvm opens but cannot run a
guest (this machine's paravirtual kvm_pvm), libvirt 9.0 probes QEMU with KVM enabled and
then finds /dev/kvm unusable by its `libvirt-qemu` user, so it discards its capability
cache and probes QEMU again on every call: about 40 s per domain start here. Running
QEMU as root (`user = "+0"`), as the backend's per-domain DAC label does anyway, makes
the two checks agree. `stdio_handler = "file"` spares starting virtlogd too.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

QEMU_CONF = 'user = "+0"\ngroup = "+0"\nstdio_handler = "file"\n'
URI = "qemu:///system"


def answering() -> bool:
    try:
        import libvirt
    except ImportError:
        return False
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError:
        return False
    return True


def missing() -> str:
    """Why libvirt tests cannot run here, or "" when they can."""
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed (make deps)"
    for tool in ("libvirtd", "unshare", "qemu-system-x86_64"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed (make deps)"
    return ""


@contextlib.contextmanager
def running_libvirtd(workdir: Path) -> Iterator[None]:
    if answering():
        yield
        return
    conf = workdir / "qemu.conf"
    conf.write_text(QEMU_CONF)
    log = workdir / "libvirtd.log"
    libvirtd = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *["unshare", "--mount", "--propagation", "private"],
                *["sh", "-c", 'mount --bind "$0" /etc/libvirt/qemu.conf && exec "$1"'],
                *[str(conf), libvirtd],
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not answering():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
