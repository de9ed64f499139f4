"""Every file of a machine's directory, named once.

Why one module: the QEMU backend, the forwarder, the CLI and the tests all reach into the
same directory; naming each file here keeps them agreeing. Keep the names short: macOS
limits a unix socket path to 104 bytes, and the machine directory already sits deep
under the platform's data directory.
"""

from __future__ import annotations

SEED = "seed.json"  # host -> guest configuration, passed through fw_cfg (vm-contract.md)
SERIAL_LOG = "serial.log"  # the guest's ttyS0; stage lines are parsed from it, kept on crash
QEMU_LOG = "qemu.log"  # QEMU's own stdout/stderr (argument and host errors)
QEMU_PID = "qemu.pid"  # written by QEMU itself (-pidfile)
QEMU_ARGV = "qemu.argv"  # the argv last used, one argument per line, for bug reports
QMP_SOCK = "qmp.sock"  # QMP monitor socket (status, powerdown, quit)
DATA_DISK = "data.qcow2"  # persistent guest disk: the engine root (/var/lib/dockyard)
SSH_KEY = "id_ed25519"  # the host's client key for root@guest (0600)
SSH_KEY_PUB = "id_ed25519.pub"  # its public half, put in the seed's authorized_keys
HOST_KEY = "ssh_host_ed25519_key"  # the guest's host key, made on the host (0600, in seed)
HOST_KEY_PUB = "ssh_host_ed25519_key.pub"  # the pinned public half the client checks
KNOWN_HOSTS = "known_hosts"  # the pinned host key, for the OpenSSH client (`machine ssh`)
SSH_PORT = "ssh.port"  # the loopback port forwarded to guest :22 for this run
SOCKET = "docker.sock"  # the forwarded engine API socket (0600)
FORWARD_PID = "forward.pid"  # the forwarder process that serves docker.sock
FORWARD_LOG = "forward.log"  # its log
STAGES = "stages.json"  # the stages of the last start, for status and the benchmark
CONFIG = "machine.yaml"  # the machine's config (machine/config.py): backend, sizes, image
ENGINE_ROOT = "root"  # native backend: the engine's --root (images, containers, volumes)
ENGINE_PID = "engine.pid"  # native backend: pid of the engine process it started
ENGINE_LOG = "engine.log"  # native backend: the engine's stdout and stderr
LIBVIRT_XML = "libvirt.xml"  # libvirt backend: the transient domain last created, for bug reports
PORTS = "ports.json"  # the port forwarder's forwards, each with its state and reason
PORTS_LOG = "ports.log"  # its events, JSON lines: forward added/removed/failed, clock steps
SHARES = "shares.json"  # the shares of this run (host path, guest path, mode, ignore)
SHARES_PID = "shares.pid"  # the share keeper: sync sessions and event replay (sharehost.py)
SHARES_LOG = "shares.log"  # its log
DISK_USAGE = "disk.json"  # the guest's disk use at the last stop, and the last compaction
CONTROL_SOCK = "ctl.sock"  # QEMU's end of the guest's control port (the boot wake-up)
BOOT_STATE = "boot.state"  # the guest saved at its boot checkpoint (bootstate.py; 0600)
BOOT_META = "boot.json"  # that state's key, or why QEMU could not save one
