"""``vmctl plan`` predictions: whether the guest will use async PF, and a modelled estimate."""

from __future__ import annotations

import json

from tests.conftest import run_vmctl
from vmctl.types import ValidationContext
from vmctl_async_pf.predict import predict as machine_prediction

X86 = '''[machine]
name = "x"
arch = "x86_64"
type = "q35"
cpu = "{cpu}"
cpus = 2
accel = "{accel}"

[async-pf]
mode = "{mode}"

[sim]
seed = {seed}
workload = "{workload}"
'''
ARM = '''[machine]
name = "a"
arch = "aarch64"
type = "virt"
cpu = "cortex-a72"
cpus = 2
accel = "tcg"
{extra}'''


def predict(machine_from_toml, text: str, backend: str = "sim"):  # type: ignore[no-untyped-def]
    return machine_prediction(machine_from_toml(text), ValidationContext(backend=backend))


def x86(machine_from_toml, mode="on", accel="kvm", cpu="qemu64", seed=1, workload="default"):  # type: ignore[no-untyped-def]
    return predict(machine_from_toml, X86.format(mode=mode, accel=accel, cpu=cpu, seed=seed,
                                                 workload=workload))


def test_x86_on_under_kvm_is_active_with_both_properties(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    p = x86(machine_from_toml)
    assert p["active"] is True and p["protocol"] == "x86-apf-int"
    assert p["cpu_props"] == {"kvm-asyncpf": "on", "kvm-asyncpf-int": "on"}
    assert p["estimate"]["faults"] > 0 and p["estimate"]["verdict"] in ("helps", "hurts", "neutral")


def test_x86_auto_with_a_named_model_is_predicted_inactive(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    p = x86(machine_from_toml, mode="auto", cpu="Skylake-Server")
    assert p["active"] is False and p["estimate"] is None
    assert p["cpu_props"]["kvm-asyncpf-int"] == "off"
    assert any("kvm-asyncpf-int=off" in r for r in p["reasons"])
    assert x86(machine_from_toml, mode="auto", cpu="host")["active"] is True


def test_x86_under_tcg_or_off_is_inactive(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    assert x86(machine_from_toml, mode="auto", accel="tcg")["active"] is False
    assert x86(machine_from_toml, mode="off")["active"] is False


def test_estimate_is_deterministic_under_the_sim_seed(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    a = x86(machine_from_toml, seed=4)["estimate"]
    assert a == x86(machine_from_toml, seed=4)["estimate"]
    assert a != x86(machine_from_toml, seed=5)["estimate"]


def test_estimate_follows_the_workload(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    busy = x86(machine_from_toml, workload="busy")["estimate"]      # 4 tasks per vCPU
    idle = x86(machine_from_toml, workload="idle")["estimate"]      # 1 task: nothing else to run
    assert busy["verdict"] == "helps" and busy["lost_ms_with_apf"] < busy["lost_ms_without_apf"]
    assert idle["verdict"] == "hurts" and idle["lost_ms_with_apf"] > idle["lost_ms_without_apf"]


def test_arm64_rfc_is_active_on_the_simulator_only(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    text = ARM.format(extra='[async-pf]\nmode = "on"\nexperimental = true\n')
    sim = predict(machine_from_toml, text)
    assert sim["active"] is True and sim["protocol"] == "arm64-apf-rfcv2" and sim["estimate"]
    qemu = predict(machine_from_toml, text, backend="qemu")
    assert qemu["active"] is False and qemu["estimate"] is None


def test_arm64_without_the_table_has_no_prediction(machine_from_toml) -> None:  # type: ignore[no-untyped-def]
    assert predict(machine_from_toml, ARM.format(extra="")) is None


def test_plan_shows_the_prediction_for_the_shipped_machine() -> None:
    out = run_vmctl("plan", "machines/x86-apf.toml", "--format", "json", check=True).stdout
    p = json.loads(out)["predictions"]["async-pf"]
    assert p["active"] is True and p["estimate"]["workload"] == "busy"
