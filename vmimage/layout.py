"""The guest layout every recipe shares: init, config files, the engine, modules, trimming.

Runs on the recipe's userland tree after the recipe is done, so an alpine and
a debian guest get the same init, the same sshd settings and the same paths.
"""

from __future__ import annotations

import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

from vmimage import elfdeps, enginesrc, kernel
from vmimage.recipes.base import REQUIRED_PROGRAMS, RecipeOutput

REPO = Path(__file__).resolve().parent.parent
GUEST = Path(__file__).resolve().parent / "guest"

# Loaded first, before anything else runs: virtio transports, network, disks, fw_cfg (seed).
EARLY_MODULES = ("virtio_mmio", "virtio_pci", "virtio_net", "virtio_blk", "qemu_fw_cfg")
# Then in the background while the seed, network and sshd stages run; the data stage
# waits for these. (crc32c first: ext4 and libcrc32c ask the crypto API for it.)
DISK_MODULES = ("crc32c_generic", "ext4")
# Then the rest, also in the background; the engine waits for them. Shares (9p,
# virtiofs), container rootfs (overlay), bridge networking and nftables NAT, the power
# button, console and entropy. Names a kernel lacks are skipped.
LATE_MODULES = (
    "9pnet_virtio",
    "9p",
    "virtiofs",
    "overlay",
    "bridge",
    "veth",
    "br_netfilter",
    "nf_tables",
    "nft_chain_nat",
    "nft_masq",
    "nft_nat",
    "nft_ct",
    "nf_nat",
    "nf_conntrack",
    "nft_reject_inet",
    "nft_compat",
    "nf_conntrack_netlink",
    "button",
    "evdev",
    "virtio_console",
    "virtio_rng",
)

# Modules some kernels do not have (6.18 has crc32c only as a library): skipped there.
OPTIONAL_MODULES = ("crc32c_generic",)

# Trimmed from every guest: documentation, locales, and stdlib parts the engine never imports.
PRUNE = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/bash-completion",
    "usr/share/zsh",
    "usr/share/pixmaps",
    "usr/share/applications",
    "usr/share/gdb",
    "usr/share/common-licenses",
    "usr/share/menu",
    "usr/share/python3",
    "usr/share/binfmts",
    "usr/share/readline",
    "usr/share/openssh",
    "etc/init.d",
    "etc/systemd",
    "usr/lib/systemd",
    "etc/default",
    "etc/pam.d",
    "etc/ufw",
    "etc/logrotate.d",
    "etc/rc0.d",
    "etc/cron.d",
    "etc/network",
    "etc/sysctl.d",
    "usr/lib/x86_64-linux-gnu/gconv",
    "usr/lib/aarch64-linux-gnu/gconv",
    "usr/sbin/debugfs",
    "usr/lib/tmpfiles.d",
    "usr/lib/sysusers.d",
    "usr/lib/udev",
    "usr/lib/python3/dist-packages",
)
PY_PRUNE = (
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "pydoc_data",
    "lib2to3",
    "distutils",
    "unittest",
    "sqlite3",
    "dbm",
    "curses",
    "venv",
    "xmlrpc",
    "turtle.py",
    "pydoc.py",
    "doctest.py",
    "__phello__",
    "msilib",
)
PY_DYNLOAD_PRUNE = (
    "_tkinter",
    "_sqlite3",
    "_curses",
    "_curses_panel",
    "_dbm",
    "_gdbm",
    "readline",
    "nis",
    "_test",
    "xxlimited",
    "_xxtest",
    "_ctypes_test",
    "audioop",
    "_lsprof",
)

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"
SHADOW = "root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"
# Key-only root login; direct-streamlocal (the engine socket) allowed; no DNS lookups of clients.
SSHD_CONFIG = """\
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
UseDNS no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
StreamLocalBindUnlink yes
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
"""


class LayoutError(RuntimeError):
    """The recipe's tree lacks something the shared guest needs."""


def apply(
    out: RecipeOutput, engine: dict[str, bytes], preloaded: tuple[str, ...] = ()
) -> list[str]:
    """Turn the recipe's tree into the guest tree; returns the module load order.

    `preloaded` modules are loaded before the root's init runs (by an erofs
    image's stage 1) and so are left out of the root's load lists.
    """
    root = out.rootfs
    missing = [p for p in REQUIRED_PROGRAMS if not (root / p).exists()]
    if missing:
        raise LayoutError(f"the recipe's rootfs lacks {', '.join(missing)}")
    prune(root, out.python_version)
    busybox_links(root)
    config_files(root)
    guest_files(root)
    bundle_engine(root, out.python_version, engine)
    order = install_modules(out, root, preloaded)
    lacks = elfdeps.missing_libraries(root)
    if lacks:
        listed = "; ".join(f"{f} needs {', '.join(libs)}" for f, libs in sorted(lacks.items()))
        raise LayoutError(f"missing shared libraries: {listed}")
    return order


def prune(root: Path, pyver: str) -> None:
    pylib = f"usr/lib/python{pyver}"
    for rel in (*PRUNE, *(f"{pylib}/{p}" for p in PY_PRUNE), "usr/lib/modules", "boot"):
        _remove(root / rel)
    for path in (root / pylib).glob("config-*"):
        _remove(path)
    dynload = root / pylib / "lib-dynload"
    for so in sorted(dynload.glob("*.so")) if dynload.is_dir() else []:
        if so.name.split(".", 1)[0] in PY_DYNLOAD_PRUNE:
            so.unlink()


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def busybox_links(root: Path) -> None:
    """Link busybox's applets into usr/bin, never over a real program of the recipe."""
    listing = subprocess.run(
        [str(root / "usr/bin/busybox"), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    taken = {p.name for d in ("usr/bin", "usr/sbin") for p in (root / d).iterdir()}
    for applet in listing:
        if applet not in taken and applet != "busybox":
            (root / "usr/bin" / applet).symlink_to("busybox")


def config_files(root: Path) -> None:
    for rel in (
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
        "mnt",
        "var/lib/dockyard",
        "var/log",
        "etc/ssh",
        "etc/dockyard",
        "opt/dockyard",
    ):
        (root / rel).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    files = {
        "etc/passwd": (PASSWD, 0o644),
        "etc/group": (GROUP, 0o644),
        "etc/shadow": (SHADOW, 0o600),
        "etc/ssh/sshd_config": (SSHD_CONFIG, 0o644),
        "etc/inittab": ((GUEST / "inittab").read_text(), 0o644),
        "etc/hostname": ("dockyard\n", 0o644),
        "etc/nsswitch.conf": (
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
            0o644,
        ),
        "etc/profile": ("export PATH=/usr/sbin:/usr/bin\nexport PS1='\\h:\\w# '\n", 0o644),
    }
    for rel, (text, mode) in files.items():
        path = root / rel
        if path.is_symlink():
            path.unlink()
        path.write_text(text)
        path.chmod(mode)
    init = root / "init"  # busybox runs as init when called by that name
    init.symlink_to("usr/bin/busybox")
    (root / "sbin/init").unlink(missing_ok=True)
    (root / "sbin/init").symlink_to("../bin/busybox")


def guest_files(root: Path) -> None:
    """guest/*.sh and *.py into /usr/lib/dockyard (stage1.sh goes to the stage-1 cpio)."""
    dest = root / "usr/lib/dockyard"
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted([*GUEST.glob("*.sh"), *GUEST.glob("*.py")]):
        if src.name != "stage1.sh":
            shutil.copyfile(src, dest / src.name)
            (dest / src.name).chmod(0o755 if src.suffix == ".sh" else 0o644)


def bundle_engine(root: Path, pyver: str, engine: dict[str, bytes]) -> None:
    """engine/ sources into /opt/dockyard, and bytecode for them and the stdlib."""
    dest = root / "opt/dockyard"
    enginesrc.write(engine, dest)
    compile_tree(
        root, [dest / "engine", root / f"usr/lib/python{pyver}", root / "usr/lib/dockyard"], pyver
    )


def compile_tree(root: Path, dirs: list[Path], pyver: str) -> None:
    """Bytecode in unchecked-hash form: no mtimes in it, and the guest never recompiles.

    Under an emulator, compiling the stdlib and the engine at every boot costs
    seconds. This needs a builder whose python has the guest's X.Y; otherwise
    the guest compiles at run time (slower, still correct).
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" != pyver:
        print(
            f"vmimage: builder python is not {pyver}; guest compiles at run time", file=sys.stderr
        )
        return
    for top in dirs:
        for src in sorted(top.rglob("*.py")):
            rel = "/" + str(src.relative_to(root))
            py_compile.compile(
                str(src),
                dfile=rel,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )


def install_modules(out: RecipeOutput, root: Path, preloaded: tuple[str, ...]) -> list[str]:
    """Copy only the needed .ko files and write the early and late load lists."""
    kernel.ensure_modules_dep(out.modules_dir)
    index = kernel.load_index(out.modules_dir)
    done: set[str] = set(preloaded)
    lists: dict[str, list[str]] = {}
    for listname, names in (
        ("modules.early", EARLY_MODULES),
        ("modules.disk", DISK_MODULES),
        ("modules.late", LATE_MODULES),
    ):
        optional = names if listname == "modules.late" else OPTIONAL_MODULES
        wanted = [n for n in names if n not in optional or n in _present(index, optional)]
        order = kernel.load_order(index, wanted)
        lists[listname] = [m for m in order if m not in done]
        done.update(order)
    dest = root / "usr/lib/modules" / out.kernel_release
    for listname, ordered in lists.items():
        lines = []
        for name in ordered:
            rel = index.paths[name]
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out.modules_dir / rel, dest / rel)
            lines.append(f"/usr/lib/modules/{out.kernel_release}/{rel}\n")
        (root / "etc/dockyard" / listname).write_text("".join(lines))
    return [*preloaded, *(m for names in lists.values() for m in names)]


def _present(index: kernel.ModuleIndex, names: tuple[str, ...]) -> list[str]:
    """Late modules this kernel has; some (nft_chain_nat, nft_reject_inet) vary by release."""
    return [n for n in names if n in index.deps or n in index.builtin]
