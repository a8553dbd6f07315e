"""The plugin as a user meets it: `vmctl plugins`, validate, plan, export."""

from __future__ import annotations

import json
import shutil
import subprocess
import pytest


def test_listed_as_a_third_party_plugin(vmctl_cli):
    proc = vmctl_cli("plugins", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    row = {r["name"]: r for r in json.loads(proc.stdout)["plugins"]}["i6300esb"]
    assert row["status"] == "loaded" and not row["builtin"]
    assert row["distribution"] == "vmctl-i6300esb" and row["version"] == "0.1.0"
    assert row["device_kinds"] == ["i6300esb"]
    assert {"vmctl_qemu_args", "vmctl_sim_devices", "vmctl_live_probe", "vmctl_tui_panels"} <= set(row["hooks"])


def test_valid_machine_validates(vmctl_cli, machine_file):
    proc = vmctl_cli("validate", machine_file())
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("device, code, words", [
    ("heartbeat = 5000\n", "range", ["device[0].heartbeat", "2046"]),
    ('action = "reboot"\n', "choice", ["device[0].action", '"reset"']),
    ('action = "pause"\nbogus = 1\n', "unknown-key", ["device[0].bogus"]),
])
def test_schema_errors_name_the_key(vmctl_cli, machine_file, device, code, words):
    proc = vmctl_cli("validate", "--format", "json", machine_file(device))
    assert proc.returncode == 1
    (diag,) = [d for d in json.loads(proc.stdout)["diagnostics"] if d["severity"] == "error"]
    assert diag["code"] == code and diag["line"] >= 9
    assert all(w in diag["message"] + diag["key"] for w in words), diag


def test_one_watchdog_per_machine_and_pci_arches_only(vmctl_cli, machine_file, x86):
    two = vmctl_cli("validate", machine_file('\n[[device]]\nkind = "i6300esb"\n'))
    assert two.returncode == 1 and "i6300esb" in two.stderr + two.stdout
    s390 = x86.replace('"x86_64"', '"s390x"').replace('"q35"', '"s390-ccw-virtio"')
    proc = vmctl_cli("validate", "--format", "json", machine_file(text=s390))
    assert proc.returncode == 1
    assert "x86_64" in json.loads(proc.stdout)["diagnostics"][0]["message"]


def test_semantic_findings(vmctl_cli, machine_file, x86):
    arm = x86.replace('"x86_64"', '"aarch64"').replace('"q35"', '"virt"')
    proc = vmctl_cli("validate", "--format", "json",
                     machine_file('action = "inject-nmi"\nheartbeat = 60\n', text=arm))
    codes = {d["code"]: d for d in json.loads(proc.stdout)["diagnostics"]}
    assert proc.returncode == 0  # warnings and notes do not make it invalid
    assert codes["nmi-not-on-virt"]["severity"] == "warning"
    assert codes["nmi-not-on-virt"]["plugin"] == "i6300esb"
    assert codes["driver-args-need-boot"]["severity"] == "note"
    proc = vmctl_cli("validate", "--format", "json", machine_file('action = "none"\nnowayout = true\n'))
    assert "nowayout-no-action" in {d["code"] for d in json.loads(proc.stdout)["diagnostics"]}


def test_plan_predicts_when_a_hung_guest_is_caught(vmctl_cli, machine_file):
    proc = vmctl_cli("plan", "--format", "json", machine_file("heartbeat = 60\n"))
    pred = json.loads(proc.stdout)["predictions"]["i6300esb"]
    # two stages of (60 << 9) ticks of 2^15 PCI clocks at 33 MHz
    assert pred["fires_after_s"] == round(2 * (60 << 9 << 15) / 33e6, 3) == 61.008
    assert pred["action"] == "reset" and pred["guest_can_stop"] is True


def test_export_argv_golden(vmctl_cli, machine_file, golden, tmp_path, x86):
    (tmp_path / "vmlinuz").write_bytes(b"")
    boot = '[boot]\nkernel = "vmlinuz"\nappend = "console=ttyS0"\n\n'
    dev = 'id = "wdt0"\naction = "pause"\nheartbeat = 60\nnowayout = true\n'
    path = machine_file(dev, text=x86.replace("[[device]]", boot + "[[device]]"))
    proc = vmctl_cli("export", "--format", "argv", path)
    argv = json.loads(proc.stdout)
    argv = [a.replace(str(tmp_path), "TMP") for a in argv]
    golden("x86-pause.argv.json", json.dumps(argv, indent=1) + "\n")
    assert argv[argv.index("-device") + 1] == "i6300esb,id=wdt0"
    assert "-action" in argv and "watchdog=pause" in argv
    assert argv[argv.index("-append") + 1] == "console=ttyS0 i6300esb.heartbeat=60 i6300esb.nowayout=1"


def test_sh_export_names_the_plugin_and_line(vmctl_cli, machine_file):
    lines = vmctl_cli("export", "--format", "sh", machine_file('action = "debug"\n')).stdout.splitlines()
    at = [i for i, ln in enumerate(lines) if ln.endswith("-action watchdog=debug")][0]
    assert lines[at - 1].startswith("# i6300esb: device[0].action (") and lines[at - 1].endswith("wdt.toml:10)")


@pytest.mark.tools
def test_libvirt_xml_is_accepted_by_libvirts_schema(vmctl_cli, machine_file, tmp_path):
    proc = vmctl_cli("export", "--format", "libvirt-xml", machine_file('action = "inject-nmi"\n'))
    assert '<watchdog model="i6300esb" action="inject-nmi" />' in proc.stdout
    xml = tmp_path / "dom.xml"
    xml.write_text(proc.stdout)
    tool = shutil.which("virt-xml-validate")
    assert tool, "virt-xml-validate is missing: ./scripts/install-test-deps installs libvirt-clients"
    check = subprocess.run([tool, str(xml), "domain"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_libvirt_has_no_debug_action(vmctl_cli, machine_file):
    proc = vmctl_cli("export", "--format", "libvirt-xml", machine_file('action = "debug"\n'))
    assert proc.returncode == 1 and proc.stdout == ""
    assert "error: libvirt has no watchdog action 'debug' (device[0].action)" in proc.stderr
    assert "hint: use reset" in proc.stderr


@pytest.mark.qemu
def test_real_qemu_accepts_the_exported_command_line(vmctl_cli, machine_file):
    argv = json.loads(vmctl_cli("export", "--format", "argv", machine_file('action = "pause"\n')).stdout)
    assert shutil.which(argv[0]), f"{argv[0]} is missing: ./scripts/install-test-deps installs QEMU"
    proc = subprocess.run([*argv, "-S", "-display", "none", "-qmp", "stdio"], capture_output=True,
                          text=True, timeout=60,
                          input='{"execute": "qmp_capabilities"}\n{"execute": "query-status"}\n'
                                '{"execute": "quit"}\n')
    assert '"status": "prelaunch"' in proc.stdout, proc.stderr


def test_nothing_in_vmctl_names_the_plugin(project):
    vmctl_pkg = project.parent.parent / "vmctl"
    if not vmctl_pkg.is_dir():
        pytest.skip("not running from a vmctl checkout")
    hits = [p for p in vmctl_pkg.rglob("*.py") if "i6300esb" in p.read_text()]
    assert hits == []
