"""Typed errors of the host side: each says what failed, in which stage, and what to do.

The CLI and the GUI show `message`, then the `hint` on its own line, so a hint is
written for the user ("add your user to the kvm group"), never for a developer::

    MachineError            anything machine/ could not do
    ├── ConfigError         a machine config or a command-line value is wrong (stage "config")
    ├── MachineNotFound     no machine of that name
    └── BackendUnavailable  this backend cannot run on this host (stage "backend")
"""

from __future__ import annotations


class MachineError(Exception):
    """Root of every error machine/ reports; `stage` names where it happened."""

    def __init__(self, message: str, stage: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.stage}: " if self.stage else ""
        return f"{where}{self.message}" + (f"\nhint: {self.hint}" if self.hint else "")


class ConfigError(MachineError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, "config", hint)


class MachineNotFound(MachineError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"no machine named {name!r}",
            "config",
            f"create it first: dockyard machine create {name}",
        )


class BackendUnavailable(MachineError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, "backend", hint)
