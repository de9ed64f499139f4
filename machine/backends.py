"""Which class runs a machine, by the config's `backend` name.

Imports are lazy: the libvirt backend needs libvirt-python and the qemu backend paramiko,
and neither should be needed to run a native machine (or to print `--help`).
"""

from __future__ import annotations

import importlib

from machine.backend import Backend, MachineSpec
from machine.errors import BackendUnavailable

CLASSES = {
    "qemu": ("machine.qemu_backend", "QemuBackend"),
    "libvirt": ("machine.libvirt_backend", "LibvirtBackend"),
    "native": ("machine.native_backend", "NativeBackend"),
}


def open_backend(backend: str, spec: MachineSpec) -> Backend:
    try:
        module_name, class_name = CLASSES[backend]
    except KeyError:
        raise BackendUnavailable(
            f"no backend named {backend!r}", f"use one of {', '.join(CLASSES)}"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise BackendUnavailable(
            f"the {backend} backend cannot load: {e}",
            "install dockyard's dependencies (make deps), or pick another --backend",
        ) from None
    cls = getattr(module, class_name)
    backend_obj: Backend = cls(spec)
    return backend_obj
