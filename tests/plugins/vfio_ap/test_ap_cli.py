"""The vfio-ap plugin through the real CLI: validate, plan/apply/undo, exports, ``vmctl ap show``."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import MACHINES, run_vmctl
from vmctl_vfio_ap.fakesys import MdevSpec, build_host, snapshot
from vmctl_vfio_ap.settings import derived_uuid

CRYPTO = str(MACHINES / "s390-crypto.toml")
UUID = derived_uuid("s390-crypto")
OTHER = "7e270a25-e163-4922-af60-757fc8ed48c6"


def machine(folder: Path, name: str, adapters: str, domains: str, extra: str = "") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f'include = ["{MACHINES}/base/s390.toml"]\n\n[machine]\nname = "{name}"\n{extra}\n'
                    f'[[device]]\nkind = "vfio-ap"\nadapters = {adapters}\ndomains = {domains}\n')
    return path


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """Adapters 4–7 × domains 1, 4, 0xab, all owned by the host (boot defaults)."""
    root = tmp_path / "host"
    build_host(root, adapters=range(4, 8), domains=(1, 4, 0xAB))
    return root


def test_plan_apply_undo_restores_the_tree_byte_for_byte(host: Path) -> None:
    before = snapshot(host)
    dry = run_vmctl("host", "apply", CRYPTO, "--sysfs-root", str(host), check=True).stdout
    assert "echo -5-6 > /sys/bus/ap/apmask" in dry and f"echo {UUID} > " in dry
    assert "assign adapter 0x05" in dry and "assign control domain 0x0004" in dry
    assert snapshot(host) == before                                   # a dry run writes nothing
    run_vmctl("host", "apply", CRYPTO, "--sysfs-root", str(host), "--apply", check=True)
    mdev = host / f"sys/devices/vfio_ap/matrix/{UUID}"
    assert (mdev / "matrix").read_text() == "05.0004\n05.00ab\n06.0004\n06.00ab\n"
    assert (mdev / "guest_matrix").read_text() == "05.0004\n05.00ab\n06.0004\n06.00ab\n"
    assert (mdev / "control_domains").read_text() == "0004\n"
    again = run_vmctl("host", "apply", CRYPTO, "--sysfs-root", str(host), check=True).stdout
    assert "needs no change" in again
    run_vmctl("host", "undo", "--sysfs-root", str(host), check=True)
    assert snapshot(host) == before


def test_an_existing_mdev_is_brought_to_the_machines_matrix(host: Path, tmp_path: Path) -> None:
    root = tmp_path / "partial"
    build_host(root, adapters=range(4, 8), domains=(1, 4, 0xAB), apmask=0,
               mdevs=[MdevSpec(UUID, (5, 7), (4,))])
    out = run_vmctl("host", "apply", CRYPTO, "--sysfs-root", str(root), check=True).stdout
    steps = [line.split(". ", 1)[1] for line in out.splitlines() if line[:1].isdigit()]
    assert [s.split(": ", 1)[1].split("  [")[0] for s in steps] == [
        "unassign adapter 0x07", "assign adapter 0x06", "assign domain 0x00ab",
        "assign control domain 0x0004"]


def test_two_machines_sharing_an_apqn_are_refused_naming_both(tmp_path: Path) -> None:
    a = machine(tmp_path, "crypto-a", "[5, 6]", "[4]")
    machine(tmp_path, "crypto-b", "[6]", "[4, 7]")
    machine(tmp_path, "crypto-c", "[7]", "[4]")
    proc = run_vmctl("validate", str(tmp_path))
    assert proc.returncode == 1
    err = [line for line in proc.stdout.splitlines() if "ap-apqn-shared" in line]
    assert len(err) == 1
    assert "crypto-b.toml" in err[0] and "06.0004" in err[0] and "'crypto-a'" in err[0]
    assert f"{a}:" in err[0] or str(a) in err[0]


def test_an_apqn_held_by_a_live_mdev_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "host"
    build_host(root, adapters=range(4, 8), domains=(4, 0xAB), apmask=0, mdevs=[MdevSpec(OTHER, (6,), (0xAB,))])
    proc = run_vmctl("validate", "--host", "--sysfs-root", str(root), CRYPTO)
    assert proc.returncode == 1
    assert f"APQN 06.00ab already assigned to live mdev {OTHER}" in proc.stdout
    apply = run_vmctl("host", "apply", CRYPTO, "--sysfs-root", str(root))
    assert apply.returncode == 1
    assert "EADDRINUSE" in apply.stderr and "06.00ab" in apply.stderr and OTHER in apply.stderr
    assert "nothing was written" in apply.stderr


def test_ids_above_the_hosts_maxima_are_refused_with_host_checks(tmp_path: Path) -> None:
    root = tmp_path / "host"
    build_host(root, adapters=range(8), domains=range(16), max_adapter_id=63, max_domain_id=15)
    proc = run_vmctl("validate", "--host", "--sysfs-root", str(root), CRYPTO)
    assert proc.returncode == 1
    assert "domains 0xab (171) above this host's ap_max_domain_id 15" in proc.stdout
    assert "ENODEV" in proc.stdout


def test_tcg_is_refused_for_real_qemu_and_noted_for_the_simulator(tmp_path: Path) -> None:
    path = machine(tmp_path, "crypto-tcg", "[5]", "[4]", extra='accel = "tcg"\n')
    proc = run_vmctl("validate", "--backend", "qemu", str(path))
    assert proc.returncode == 1 and "ap-needs-kvm" in proc.stdout
    sim = run_vmctl("validate", str(path))
    assert sim.returncode == 0 and "ap-tcg-simulated" in sim.stdout


def test_argv_has_the_device_and_the_ap_cpu_features() -> None:
    argv = json.loads(run_vmctl("export", CRYPTO, "--format", "argv", check=True).stdout)
    assert argv[argv.index("-cpu") + 1] == "host,ap=on,apqci=on,apft=on"
    assert argv[argv.index("-device") + 1] == f"vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/{UUID}"
    assert argv[argv.index("-accel") + 1] == "kvm"


def test_libvirt_hostdev() -> None:
    dom = ET.fromstring(run_vmctl("export", CRYPTO, "--format", "libvirt-xml", check=True).stdout)
    (hostdev,) = dom.findall("devices/hostdev")
    assert hostdev.attrib == {"mode": "subsystem", "type": "mdev", "managed": "no", "model": "vfio-ap"}
    assert hostdev.find("source/address").get("uuid") == UUID              # type: ignore[union-attr]
    assert [f.get("name") for f in dom.findall("cpu/feature")] == ["ap", "apqci", "apft"]


@pytest.mark.tools
def test_virt_xml_validate_accepts_the_hostdev(tmp_path: Path) -> None:
    tool = shutil.which("virt-xml-validate")
    assert tool, "virt-xml-validate is missing (Debian package libvirt-clients)"
    path = tmp_path / "domain.xml"
    path.write_text(run_vmctl("export", CRYPTO, "--format", "libvirt-xml", check=True).stdout)
    proc = subprocess.run([tool, str(path), "domain"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _mdevctl_define(jsonfile: Path, uuid: str) -> subprocess.CompletedProcess[str]:
    """``mdevctl define`` in a private mount namespace: /etc/mdevctl.d is a tmpfs there."""
    script = ("mount -t tmpfs tmpfs /etc/mdevctl.d && mkdir -p /etc/mdevctl.d/scripts.d/callouts "
              "/etc/mdevctl.d/scripts.d/notifiers && "
              f"mdevctl define --jsonfile {jsonfile} -u {uuid} -p matrix && mdevctl list -d --dumpjson")
    return subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", script],
                          capture_output=True, text=True)


@pytest.mark.tools
def test_mdevctl_define_accepts_the_export(tmp_path: Path) -> None:
    assert shutil.which("mdevctl"), "mdevctl is missing (Debian package mdevctl)"
    if subprocess.run(["unshare", "--map-root-user", "--mount", "true"], capture_output=True).returncode:
        pytest.skip("no user+mount namespaces here: mdevctl would write the real /etc/mdevctl.d")
    path = tmp_path / "mdev.json"
    path.write_text(run_vmctl("export", CRYPTO, "--format", "mdevctl-json", check=True).stdout)
    proc = _mdevctl_define(path, UUID)
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)[0]["matrix"]
    assert entry[UUID]["mdev_type"] == "vfio_ap-passthrough" and entry[UUID]["start"] == "auto"
    assert entry[UUID]["attrs"] == [{"assign_adapter": "0x05"}, {"assign_adapter": "0x06"},
                                    {"assign_domain": "0x0004"}, {"assign_domain": "0x00ab"},
                                    {"assign_control_domain": "0x0004"}]
    broken = tmp_path / "broken.json"
    broken.write_text('{"mdev_type": 5}')
    assert _mdevctl_define(broken, UUID).returncode != 0                  # the check can fail


def test_ap_show_prints_the_kernels_formats(tmp_path: Path) -> None:
    root = tmp_path / "host"
    build_host(root, adapters=(5, 6), domains=(4, 0xAB), apmask=0, mdevs=[MdevSpec(UUID, (5, 6), (4,), (4,))])
    out = run_vmctl("ap", "show", "--sysfs-root", str(root), check=True).stdout
    assert "apmask                 0x" + "0" * 64 in out
    assert "05.0004 vfio_ap, assigned" in out and "05.00ab vfio_ap, unassigned" in out
    assert f"mdev {UUID}\n    matrix:\n      05.0004\n      06.0004\n" in out
    assert "    control_domains:\n      0004" in out
    data = json.loads(run_vmctl("ap", "show", "--sysfs-root", str(root), "--format", "json", check=True).stdout)
    assert data["mdevs"][0]["guest_matrix"] == ["05.0004", "06.0004"]


def test_ap_show_without_an_ap_bus_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_vmctl("ap", "show", "--sysfs-root", str(tmp_path / "empty"))
    assert proc.returncode == 1 and "error: no AP bus" in proc.stderr and "Traceback" not in proc.stderr


def test_plan_shows_the_prediction_and_the_checked_host_steps(tmp_path: Path) -> None:
    root = tmp_path / "host"
    build_host(root, adapters=(5, 6), domains=(4, 0xAB), apmask=0)
    data = json.loads(run_vmctl("plan", CRYPTO, "--format", "json", "--sysfs-root", str(root), check=True).stdout)
    pred = data["predictions"]["vfio-ap"]
    assert pred["uuid"] == UUID and pred["apqns"] == ["05.0004", "05.00ab", "06.0004", "06.00ab"]
    assert [(s["write"]["path"], s["write"]["value"]) for s in data["host_steps"]][:2] == [
        ("/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", UUID),
        (f"/sys/devices/vfio_ap/matrix/{UUID}/assign_adapter", "0x05")]


def test_prediction_with_the_host_runs_the_plan_on_the_model(tmp_path: Path) -> None:
    from vmctl.config import load_machine
    from vmctl.host.sysfs import Sysfs
    from vmctl.plugins import get_plugin_manager
    from vmctl.types import ValidationContext
    from vmctl_vfio_ap.predict import predict

    root = tmp_path / "host"
    build_host(root, adapters=(5, 6), domains=(4, 0xAB), unbound=["06.00ab"])
    before = snapshot(root)
    ctx = ValidationContext(sysfs=Sysfs(root))
    pred = predict(load_machine(Path(CRYPTO), get_plugin_manager()), ctx)
    assert pred is not None and pred["host"] == {"ok": True, "steps": 7}
    assert pred["guest_apqns"] == ["05.0004", "05.00ab"]
    assert {"apqn": "06.00ab", "reason": "queue 06.00ab is bound to no driver, not vfio_ap"} in pred["filtered"]
    assert {"apqn": "06.0004", "reason": "adapter 06 filtered out: queue 06.00ab is bound to no driver, "
            "not vfio_ap"} in pred["filtered"]
    assert snapshot(root) == before                                   # predicting writes nothing
