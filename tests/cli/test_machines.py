"""validate / show / plan / export on every shipped machine, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import MACHINES, run_vmctl

SHIPPED = sorted(p.name for p in MACHINES.glob("*.toml"))


def test_shipped_machines_validate():
    proc = run_vmctl("validate", "machines")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith(f"{len(SHIPPED)} machines checked: all valid")


@pytest.mark.parametrize("name", SHIPPED)
def test_show_toml_parses_back_to_the_json_view(name):
    text = run_vmctl("show", f"machines/{name}", check=True).stdout
    as_json = json.loads(run_vmctl("show", f"machines/{name}", "--format", "json", check=True).stdout)
    assert tomllib.loads(text) == as_json["machine"]
    for key, src in as_json["sources"].items():
        assert src["default"] or (src["file"].startswith("machines/") and src["line"] > 0), key


def test_show_names_the_source_of_included_values():
    out = json.loads(run_vmctl("show", "machines/p9-dual.toml", "--format", "json", check=True).stdout)
    assert out["sources"]["machine.cpu"] == {"file": "machines/base/pseries.toml", "line": 5, "default": False,
                                             "plugin": "vmctl"}
    assert out["sources"]["machine.name"]["file"] == "machines/p9-dual.toml"
    assert out["sources"]["irq.ic-mode"]["plugin"] == "spapr-irq"


@pytest.mark.parametrize("name", SHIPPED)
def test_plan_json_has_the_documented_keys(name):
    plan = json.loads(run_vmctl("plan", f"machines/{name}", "--format", "json", check=True).stdout)
    assert {"machine", "predictions", "host_steps", "argv"} <= set(plan)
    argv = json.loads(run_vmctl("export", f"machines/{name}", "--format", "argv", check=True).stdout)
    assert plan["argv"] == argv
    assert [a for u in plan["argv_sources"] for a in u["args"]] == argv


@pytest.mark.parametrize("name", SHIPPED)
def test_sh_export_runs_to_the_same_argv(name, tmp_path):
    script = run_vmctl("export", f"machines/{name}", "--format", "sh", check=True).stdout
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh" and lines[-1] == 'exec "$@"'
    for i, line in enumerate(lines):
        if line.startswith("set -- "):
            assert lines[i - 1].startswith("# "), "every option carries a provenance comment"
    # run the real script with exec replaced by printing the argv it built
    probe = tmp_path / "probe.sh"
    probe.write_text(script.replace('exec "$@"', "printf '%s\\n' \"$@\""))
    out = subprocess.run(["sh", str(probe)], capture_output=True, text=True, check=True).stdout.splitlines()
    argv = json.loads(run_vmctl("export", f"machines/{name}", "--format", "argv", check=True).stdout)
    assert out == argv + ["-display", "none", "-serial", "mon:stdio"]  # a console for a terminal run


def test_export_to_a_file_is_atomic_and_unknown_format_is_usage(tmp_path):
    target = tmp_path / "p9.sh"
    run_vmctl("export", "machines/p9-dual.toml", "--format", "sh", "-o", str(target), check=True)
    assert target.read_text().startswith("#!/bin/sh") and target.stat().st_mode & 0o111
    proc = run_vmctl("export", "machines/p9-dual.toml", "--format", "libvirt")
    assert proc.returncode == 2
    assert "unknown export format 'libvirt'" in proc.stderr and 'did you mean "libvirt-xml"' in proc.stderr


def test_fleet_rule_duplicate_names(tmp_path):
    for n in ("a", "b"):
        (tmp_path / f"{n}.toml").write_text((MACHINES / "arm64-apf.toml").read_text())
    proc = run_vmctl("validate", "--format", "json", str(tmp_path))
    assert proc.returncode == 1
    (d,) = [d for d in json.loads(proc.stdout)["diagnostics"] if d["code"] == "duplicate-name"]
    assert d["file"].endswith("b.toml") and "a.toml" in d["message"]


def test_version_and_help():
    assert run_vmctl("--version", check=True).stdout.startswith("vmctl ")
    help_text = run_vmctl("--help", check=True).stdout
    for cmd in ("validate", "show", "plan", "export", "plugins", "host"):
        assert f"  {cmd} " in help_text
