"""Plugins as they are installed: a fake .dist-info on sys.path, one good, one broken."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import MACHINES, run_vmctl

FAKE = Path(__file__).resolve().parent / "fixtures" / "plugins"
ENV = {"PYTHONPATH": str(FAKE)}

WATCHDOG = """[machine]
name = "dog"
arch = "x86_64"
type = "q35"
cpu = "max"
accel = "tcg"

[[device]]
kind = "test-watchdog"
"""


def test_good_plugin_is_listed_and_broken_one_is_named_once():
    proc = run_vmctl("plugins", "--format", "json", env=ENV)
    assert proc.returncode == 0
    rows = {r["name"]: r for r in json.loads(proc.stdout)["plugins"]}
    assert rows["goodplug"]["status"] == "loaded" and not rows["goodplug"]["builtin"]
    assert rows["goodplug"]["device_kinds"] == ["test-watchdog"]
    assert rows["goodplug"]["version"] == "0.1"
    assert rows["brokenplug"]["status"] == "failed"
    assert "libfoo" in rows["brokenplug"]["error"]
    assert {"spapr-irq", "vfio", "async-pf", "vfio-ap"} <= {n for n, r in rows.items() if r["builtin"]}
    warnings = [line for line in proc.stderr.splitlines() if "brokenplug" in line]
    assert warnings == ["warning: plugin 'brokenplug' failed to load (ImportError: brokenplug needs libfoo, "
                        "which is not installed); it is left out"]


def test_third_party_device_kind_validates_and_lowers(tmp_path):
    m = tmp_path / "dog.toml"
    m.write_text(WATCHDOG)
    assert run_vmctl("validate", str(m), env=ENV).returncode == 0
    argv = json.loads(run_vmctl("export", str(m), "--format", "argv", env=ENV, check=True).stdout)
    assert argv[-2:] == ["-device", "i6300esb"]
    # the rest of vmctl still works next to the broken plugin
    assert run_vmctl("validate", str(MACHINES), env=ENV).returncode == 0


def test_disabled_plugins_are_blocked_by_name(tmp_path):
    m = tmp_path / "dog.toml"
    m.write_text(WATCHDOG)
    env = {**ENV, "VMCTL_DISABLE_PLUGINS": "goodplug,brokenplug"}
    proc = run_vmctl("validate", "--format", "json", str(m), env=env)
    assert proc.returncode == 1
    (d,) = json.loads(proc.stdout)["diagnostics"]
    assert d["code"] == "unknown-device-kind"
    assert "brokenplug" not in proc.stderr  # disabled: not even imported
    rows = {r["name"]: r for r in json.loads(run_vmctl("plugins", "--format", "json", env=env).stdout)["plugins"]}
    assert rows["goodplug"]["status"] == "disabled"


def test_plugin_raising_in_a_hook_is_left_out_with_one_warning(capsys):
    from vmctl import hookimpl
    from vmctl.plugins import call_flat, get_plugin_manager

    class Raises:
        @hookimpl
        def vmctl_sections(self):
            raise RuntimeError("boom")

    pm = get_plugin_manager(extra=[("raiser", Raises())])
    names = {s.name for s in call_flat(pm, "vmctl_sections")}
    assert "irq" in names  # the others still answered
    call_flat(pm, "vmctl_sections")
    err = capsys.readouterr().err
    assert err.count("plugin 'raiser' raised RuntimeError in vmctl_sections: boom") == 1
    assert pm.get_plugin("raiser") is None


def test_plugins_can_be_named_and_unknown_names_get_the_nearest():
    rows = json.loads(run_vmctl("plugins", "vfio-ap", "--format", "json", check=True).stdout)["plugins"]
    assert [r["name"] for r in rows] == ["vfio-ap"]
    assert rows[0]["device_kinds"] == ["vfio-ap"] and "vmctl_cli_commands" in rows[0]["hooks"]
    proc = run_vmctl("plugins", "vfio-aq")
    assert proc.returncode == 1
    assert "no plugin named 'vfio-aq'" in proc.stderr and 'did you mean "vfio-ap"?' in proc.stderr
