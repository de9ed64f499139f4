"""The one entry point of the frozen app (packaging/pyinstaller/dockyard.spec).

A frozen app has no `python`, yet Dockyard starts Python helpers by re-running its own
interpreter: the native backend runs `python -m engine serve`, the engine starts each
container's shim as `python -S -E -c CODE ROOT ...`, the qemu backend its port forwarder
as `python -m machine.forward`. So both frozen executables (`dockyard` and
`dockyard-desktop`, sharing one `_internal/`) answer to those interpreter command lines,
and otherwise run the CLI or the desktop app by their own name. The engine itself is
reached as `dockyard engine serve ...`, which is what machine/native_backend.py runs when
frozen.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# Interpreter switches our helpers pass that change nothing in a frozen app (no site
# directory, no PYTHON* variables are read, output is unbuffered by PYTHONUNBUFFERED).
IGNORED_SWITCHES = frozenset({"-S", "-E", "-s", "-u", "-B", "-I"})


def restore_library_path() -> None:
    """The bootloader points LD_LIBRARY_PATH at the bundle's libraries; programs we start
    (nft, iptables, qemu, mkfs, a container's process) must load the system's own."""
    orig = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if orig is not None:
        os.environ["LD_LIBRARY_PATH"] = orig
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)


def as_interpreter(argv: Sequence[str]) -> Callable[[], object] | None:
    """`-m MODULE ARGS` or `-c CODE ARGS` (after ignorable switches) as a callable that
    runs it with sys.argv set as CPython would; None when argv is not such a line."""
    i = 0
    while i < len(argv) and argv[i] in IGNORED_SWITCHES:
        i += 1
    if i + 1 >= len(argv) or argv[i] not in ("-m", "-c"):
        return None
    flag, target, rest = argv[i], argv[i + 1], list(argv[i + 2 :])
    if flag == "-m":

        def run_module() -> object:
            sys.argv = [target, *rest]
            return runpy.run_module(target, run_name="__main__", alter_sys=True)

        return run_module

    def run_code() -> object:
        sys.argv = ["-c", *rest]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
        return None

    return run_code


def main() -> int:
    restore_library_path()
    args = sys.argv[1:]
    helper = as_interpreter(args)
    if helper is not None:
        helper()
        return 0
    if args[:1] == ["engine"]:
        from engine.__main__ import main as engine_main

        return int(engine_main(args[1:]))
    if Path(sys.executable).name == "dockyard-desktop":
        from app.gui.app import main as desktop_main

        return int(desktop_main(args))
    from app.cli import main as cli_main

    return int(cli_main(args))


if __name__ == "__main__":
    sys.exit(main())
