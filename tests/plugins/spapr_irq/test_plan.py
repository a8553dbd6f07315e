"""``vmctl plan`` shows the predicted mode; ``validate`` accepts the shipped pseries machines."""

from __future__ import annotations

import json


def plan(vmctl, path: str) -> dict:
    return json.loads(vmctl("plan", path, "--format", "json", check=True).stdout)


def test_p9_dual_predicts_xive_after_cas(vmctl) -> None:
    pred = plan(vmctl, "machines/p9-dual.toml")["predictions"]["spapr-irq"]
    assert (pred["before_cas"], pred["after_cas"], pred["controller"]) == ("xics", "xive", "emulated")
    assert pred["reasons"] and "error" not in pred


def test_p8_dual_predicts_xics(vmctl) -> None:
    pred = plan(vmctl, "machines/p8-dual.toml")["predictions"]["spapr-irq"]
    assert pred["after_cas"] == "xics"


def test_kvm_machine_on_a_host_without_kvm_is_predicted_for_its_target_host(vmctl, tmp_path) -> None:
    (tmp_path / "k.toml").write_text('[machine]\nname = "k"\narch = "ppc64"\ntype = "pseries"\n'
                                     'cpu = "power9"\naccel = "kvm"\n')
    pred = plan(vmctl, str(tmp_path / "k.toml"))["predictions"]["spapr-irq"]
    assert (pred["after_cas"], pred["controller"]) == ("xive", "kvm")
    assert "predicted for a POWER9 bare-metal KVM host" in pred["reasons"][0]


def test_plan_refuses_a_machine_qemu_would_refuse(vmctl, tmp_path) -> None:
    (tmp_path / "bad.toml").write_text('[machine]\nname = "bad"\narch = "ppc64"\ntype = "pseries"\n'
                                       'cpu = "power8"\naccel = "tcg"\n[irq]\nic-mode = "xive"\n')
    proc = vmctl("plan", str(tmp_path / "bad.toml"), "--format", "json")
    assert proc.returncode == 1 and "xive-needs-power9" in proc.stderr + proc.stdout


def test_prediction_error_is_in_the_json_when_qemu_would_refuse(machine_from_toml) -> None:
    from vmctl_spapr_irq.predict import predict as machine_prediction

    m = machine_from_toml('[machine]\nname = "bad"\narch = "ppc64"\ntype = "pseries"\ncpu = "power8"\n'
                          'accel = "tcg"\n[irq]\nic-mode = "xive"\n')
    pred = machine_prediction(m)
    assert pred["after_cas"] is None and pred["error"] == "XIVE-only machines require a POWER9 CPU"
    assert pred["hint"]
