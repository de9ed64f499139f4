"""The cgroup namespace is entered apart from the others, once the shim has joined the init.

The init builds its rootfs while the shim moves it into its cgroup, so nothing in
`prepare_filesystem` may unshare CLONE_NEWCGROUP: a namespace made before the move
would be rooted at the shim's cgroup and show the container the host's tree.
"""

from __future__ import annotations

from engine.runtime import init
from engine.runtime.syscalls import CLONE_NEWCGROUP, CLONE_NEWNET, RecordingSyscalls
from tests.runtime_specs import paper_spec


def test_filesystem_setup_leaves_the_cgroup_namespace_alone() -> None:
    for network in ("none", "host"):
        sc = RecordingSyscalls()
        init.prepare_filesystem(paper_spec(lowerdirs=["/l1"], network_mode=network), sc)
        unshares = [c for c in sc.calls if c[0] == "unshare"]
        assert len(unshares) == 1
        assert not unshares[0][1] & CLONE_NEWCGROUP
        assert bool(unshares[0][1] & CLONE_NEWNET) == (network != "host")


def test_enter_cgroup_namespace_unshares_only_it() -> None:
    sc = RecordingSyscalls()
    init.enter_cgroup_namespace(sc)
    assert sc.calls == [("unshare", CLONE_NEWCGROUP)]
