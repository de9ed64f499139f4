"""The `sync` share mode: a two-way synchronisation of a host folder and a guest-local
folder over SSH (SFTP for the bytes, a small guest agent for scans, hashes and inotify).

Why sync at all: it works on every host, including Windows, where QEMU offers neither 9p
nor virtiofs; and the guest reads and writes its own disk at native speed.

Layout (each module one concern):
    ignore.py       gitignore-like patterns, the same on both sides
    tree.py         lstat-only scans and content hashes of one folder (never follows links)
    fsops.py        guarded changes (checked target, temp then rename, no parent links)
    inotify.py      Linux inotify through ctypes
    guest_agent.py  the guest's watcher and scanner: JSON lines over an SSH exec channel
    agentpack.py    the agent as a zip application the host uploads (and vmimage carries)
    agent.py        the host's client of that agent
    index.py        what both sides held after the last sync, persisted per share
    planner.py      what to do for each (base, host, guest) triple: pure, unit-tested
    sides.py        the same file operations on the host (os) and the guest (SFTP)
    reconcile.py    one pass: scan the scopes, hash the candidates, plan, apply
    session.py      SyncSession: a thread per share, watchers, pause/resume, reconnect
    status.py       the status file of a session and `sync_status` for the CLI
    shares.py       a machine's sync shares as sessions (the hook for the backend)

This package's __init__, ignore, tree, fsops, inotify and guest_agent use only the
standard library: they are what runs in the guest, from a plain python3.
"""
