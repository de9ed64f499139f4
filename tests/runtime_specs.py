"""A ContainerSpec for tests that only record what the runtime would do (RecordingSyscalls):
its paths need not exist, because nothing is mounted or launched."""

from __future__ import annotations

from engine.runtime.spec import ContainerSpec


def paper_spec(**kw: object) -> ContainerSpec:
    """A spec over two placeholder lower layers; `kw` overrides any field."""
    s = ContainerSpec(
        id="abcdef0123456789",
        lowerdirs=["/l2", "/l1"],
        upperdir="/u",
        workdir="/w",
        rootfs="/nonexistent-rootfs",
        args=["true"],
        env=[],
    )
    for k, v in kw.items():
        setattr(s, k, v)
    return s
