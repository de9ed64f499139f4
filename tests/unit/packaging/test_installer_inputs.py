"""Acceptance 3: the generated macOS and Windows build inputs are pinned.

Each input is compared byte for byte with its golden copy in golden/ (regenerate them
with `UPDATE_GOLDEN=1 pytest tests/unit/packaging` after a deliberate change, and review
the diff), and the properties that matter are asserted on their own so a golden update
cannot silently drop one: the hypervisor entitlement, the bundle identity, inside-out
signing without --deep, the dmg layout, the WHPX check and its instructions.
"""

from __future__ import annotations

import os
import plistlib
import shlex
from pathlib import Path
from types import ModuleType

import pytest

from tests import pathmodule

REPO = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).resolve().parent / "golden"
FAKE_REPO = Path("/src/dockyard")  # the spec embeds paths; pin them host-independently


def load(name: str) -> ModuleType:
    """packaging/ is not importable by name (PyPI's `packaging` owns that name)."""
    return pathmodule.load(f"dockyard_packaging_{name}", REPO / "packaging" / name / "build.py")


macos = load("macos")
windows = load("windows")
MAC = macos.Options("1.2.3", arch="arm64", identity="Developer ID Application: Dockyard (TEAM)")


def pinned(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(data)
    assert path.is_file(), f"no golden {name}: run with UPDATE_GOLDEN=1"
    assert data == path.read_bytes(), f"{name} changed; review, then UPDATE_GOLDEN=1"


def test_macos_inputs_are_pinned(tmp_path: Path) -> None:
    written = macos.write_inputs(MAC, tmp_path)
    assert sorted(written) == ["Info.plist", "dockyard-macos.spec", "entitlements.plist"]
    pinned("Info.plist", written["Info.plist"].read_bytes())
    pinned("entitlements.plist", written["entitlements.plist"].read_bytes())
    pinned("dockyard-macos.spec", macos.spec_text(MAC, FAKE_REPO).encode())


def test_entitlements_allow_hvf_and_tcg() -> None:
    doc = plistlib.loads(macos.entitlements_plist())
    assert doc == {
        "com.apple.security.hypervisor": True,
        "com.apple.security.cs.allow-jit": True,
    }


def test_info_plist_identity_and_version() -> None:
    doc = plistlib.loads(macos.info_plist(MAC))
    assert doc["CFBundleIdentifier"] == "org.dockyard.Dockyard"
    assert doc["CFBundleExecutable"] == "dockyard-desktop"
    assert doc["CFBundleShortVersionString"] == doc["CFBundleVersion"] == "1.2.3"
    assert doc["CFBundleIconFile"] == "dockyard.icns"
    assert doc["LSMinimumSystemVersion"] == "12.0"


def test_spec_wraps_the_one_dir_build_in_a_bundle() -> None:
    text = macos.spec_text(MAC, FAKE_REPO)
    compile(text, "dockyard-macos.spec", "exec")
    assert "SPECPATH = '/src/dockyard/packaging/pyinstaller'" in text
    assert "exec(open(SPECPATH + '/dockyard.spec').read())" in text
    assert "icon='/src/dockyard/packaging/assets/dockyard.icns'" in text


def test_signing_is_inside_out_with_the_hardened_runtime() -> None:
    app = Path("/b/dist/Dockyard.app")
    qemu = app / "Contents/Resources/qemu"
    ent = Path("/b/entitlements.plist")
    cmds = macos.codesign_commands(MAC, app, ent, [qemu / "lib/libz.dylib", qemu / "bin/q"])
    targets = [c[-1] for c in cmds]
    assert targets == [str(qemu / "bin/q"), str(qemu / "lib/libz.dylib"), str(app), str(app)]
    for cmd in cmds[:3]:
        assert cmd[:2] == ["codesign", "--force"] and "--deep" not in cmd
        assert cmd[cmd.index("--options") : cmd.index("--options") + 2] == ["--options", "runtime"]
        assert cmd[cmd.index("--entitlements") + 1] == str(ent)
        assert "--timestamp" in cmd
    assert cmds[-1][:3] == ["codesign", "--verify", "--strict"]
    adhoc = macos.codesign_commands(macos.Options("1"), app, ent, [])
    assert "--timestamp" not in adhoc[0] and adhoc[0][adhoc[0].index("--sign") + 1] == "-"


def test_dmg_commands_are_pinned() -> None:
    opts = macos.Options("1.2.3", identity="Developer ID Application: X", notary_profile="dy")
    cmds = macos.dmg_commands(opts, Path("/b/dist/Dockyard.app"), Path("/b/Dockyard.dmg"))
    pinned("dmg-commands.txt", "\n".join(shlex.join(c) for c in cmds).encode() + b"\n")
    hdiutil = next(c for c in cmds if c[0] == "hdiutil")
    assert hdiutil[hdiutil.index("-format") + 1] == "UDZO"
    assert hdiutil[-1] == "/b/Dockyard-1.2.3-arm64.dmg"
    assert ["ln", "-s", "/Applications", "/b/dmg-stage/Applications"] in cmds
    assert cmds[-1] == ["xcrun", "stapler", "staple", "/b/Dockyard-1.2.3-arm64.dmg"]
    local = macos.dmg_commands(macos.Options("1"), Path("/b/A.app"), Path("/b/x.dmg"))
    assert not any(c[0] in ("codesign", "xcrun") for c in local)  # ad hoc: no notarizing


def test_qemu_build_enables_hvf() -> None:
    configure, make, install = macos.qemu_build_commands(Path("/s"), Path("/p"), "arm64")
    assert configure[0] == "/s/configure" and "--prefix=/p" in configure
    assert "--enable-hvf" in configure and "--cpu=aarch64" in configure
    assert "--target-list=aarch64-softmmu,x86_64-softmmu" in configure
    assert install == ["make", "-C", "build", "install"] and make[:3] == ["make", "-C", "build"]


def test_build_refuses_to_run_off_macos_and_dry_runs_anywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.uname().sysname != "Darwin":
        with pytest.raises(SystemExit):
            macos.main(["--version", "1.2.3", "--out", str(tmp_path)])
    assert macos.main(["--version", "1.2.3", "--out", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "+ hdiutil create -volname 'Dockyard 1.2.3'" in out
    assert "--entitlements " + str(tmp_path / "entitlements.plist") in out


def test_windows_inputs_are_pinned(tmp_path: Path) -> None:
    written = windows.write_inputs(windows.Options("1.2.3"), tmp_path)
    assert sorted(written) == ["dockyard.iss", "whpx-check.ps1", "whpx-enable.ps1"]
    for name, path in written.items():
        data = path.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data and b"\r\r" not in data
        pinned(name, data)


def test_installer_checks_and_enables_whpx_with_instructions() -> None:
    iss = windows.iss_text(windows.Options("1.2.3"))
    assert "AppId={{6B0E4C1D-3F7A-4C52-9E1B-8D2A5F0C7E44}\n" in iss
    assert "PrivilegesRequired=admin" in iss  # Get-WindowsOptionalFeature -Online needs it
    assert 'Name: "whpx";' in iss and "Check: WhpxOff" in iss
    assert "Tasks: whpx" in iss and "Result := WizardIsTaskSelected('whpx');" in iss
    assert 'DestDir: "{app}\\qemu"' in iss  # QEMU is bundled
    assert "Enable-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform -All" in iss
    assert "'reset --yes'" in iss
    assert "Get-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform" in (
        windows.WHPX_CHECK
    )
    assert "exit 2" in windows.WHPX_CHECK and "-NoRestart" in windows.WHPX_ENABLE


def test_the_icons_the_installers_name_exist() -> None:
    icns = (REPO / "packaging/assets/dockyard.icns").read_bytes()
    assert icns[:4] == b"icns" and int.from_bytes(icns[4:8], "big") == len(icns)
    ico = (REPO / "packaging/assets/dockyard.ico").read_bytes()
    assert ico[:4] == b"\0\0\1\0" and int.from_bytes(ico[4:6], "little") == 7
