"""``vmctl plan``'s ``predictions["async-pf"]``: will the guest use async PF, and does it pay?

The first half is the configuration logic of semantics.md §3.4/§3.6 (which CPU properties
the guest gets, whether a Linux >= 5.8 guest enables APF).  The second half, ``estimate``,
runs the model (:class:`~.model.simulation.ApfSimulation`) on the machine's vCPUs and ``[sim]``
workload for a fraction of a second of simulated time, once with async PF and once as the
same guest booted with ``no-kvmapf``, so the user sees whether it helps or hurts before
running anything.  Deterministic under ``[sim] seed``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .model.simulation import ApfSimulation
from .settings import WORKLOADS, ApfSettings, read

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine
    from vmctl.api import ValidationContext

__all__ = ["predict", "estimate"]

#: Faults per world the estimate aims at (about 50 ms of CPU on a laptop core, both worlds).
ESTIMATE_FAULTS = 8_000


def predict(machine: Machine, ctx: ValidationContext | None = None) -> dict[str, Any] | None:
    """The prediction as JSON; None for an arch without async PF or an untouched aarch64."""
    s = read(machine)
    backend = ctx.backend if ctx is not None else "sim"
    if s.x86:
        out = _x86(s)
    elif s.aarch64 and s.written:
        out = _aarch64(s, backend)
    else:
        return None
    out["estimate"] = estimate(s) if out["active"] else None
    return out


def _x86(s: ApfSettings) -> dict[str, Any]:
    props = s.cpu_props()
    reasons = []
    if s.accel == "tcg":
        active = False
        reasons.append("TCG has no async page faults (they are a KVM paravirtual feature)")
    elif s.mode == "off":
        active = False
        reasons.append('mode = "off": kvm-asyncpf=off,kvm-asyncpf-int=off'
                       + (", no-kvmapf" if s.has_kernel else ""))
    elif s.append_disables:
        active = False
        reasons.append("boot.append has no-kvmapf: the guest never enables it")
    elif props["kvm-asyncpf-int"] == "off":
        active = False
        reasons.append(f'cpu "{s.cpu}" gets kvm-asyncpf-int=off (QEMU default for named models); '
                       "Linux >= 5.8 guests enable async PF only with interrupt-based page-ready")
    else:
        active = True
        reasons.append("needs a host KVM with KVM_CAP_ASYNC_PF_INT (Linux >= 5.8) and the "
                       "in-kernel irqchip; a Linux >= 5.8 guest programs vector 0xec, then "
                       "enables with bit 3")
        if s.accel == "auto":
            reasons.append('accel = "auto": only if KVM is usable when the machine starts')
    return {
        "protocol": "x86-apf-int", "upstream": "merged (interrupt-based page-ready since Linux 5.8)",
        "active": active, "cpu_props": props,
        "guest_cmdline": "no-kvmapf" if s.mode == "off" and s.has_kernel else None,
        "not_present": "#PF with the token in CR2, only while the vCPU is in user mode",
        "page_ready": "interrupt on the guest's vector, then MSR_KVM_ASYNC_PF_ACK",
        "max_outstanding_per_vcpu": 64, "reasons": reasons}


def _aarch64(s: ApfSettings, backend: str) -> dict[str, Any]:
    simulated = s.experimental and s.mode != "off" and backend == "sim"
    if simulated:
        reasons = ["simulator only: the unmerged RFCv2 protocol (seed-002)"]
    elif s.mode == "off":
        reasons = ['mode = "off"']
    elif not s.experimental:
        reasons = ["async PF: unsupported (no APF function in KVM's SMCCC vendor service)"]
    else:
        reasons = ["real QEMU/KVM have no arm64 async PF (never merged); see docs/async-pf.md"]
    return {
        "protocol": "arm64-apf-rfcv2" if s.experimental else "arm64-upstream",
        "upstream": "never merged (RFCv2 2020, v4 2021, stalled 2022)", "active": simulated,
        "not_present": "data abort, token in the fault address, anywhere outside the RFC's "
                       "guessed exception window",
        "page_ready": "the same data-abort path (control block reason 2); no ACK",
        "max_outstanding_per_vcpu": 64, "reasons": reasons}


def estimate(s: ApfSettings) -> dict[str, Any]:
    """Run the machine and its ``no-kvmapf`` shadow briefly; lost vCPU time in each."""
    config = s.model_config()
    gap = config.workload.pressure.mean_fault_gap_ns
    per_vcpu = ESTIMATE_FAULTS / max(1, s.cpus)   # a vCPU faults about once per gap of running
    sim_ns = 10**9 if math.isinf(gap) else int(min(10**9, max(10**6, per_vcpu * gap)))
    sim = ApfSimulation(config, s.seed)
    sim.advance(sim_ns)
    cmp = sim.compare()
    w, wo = cmp.with_apf, cmp.without_apf
    return {
        "simulated_ms": round(sim_ns / 1e6, 1),
        "workload": s.workload if s.workload in WORKLOADS else "default",
        "seed": s.seed, "faults": w.faults, "async_faults": w.async_faults,
        "lost_ms_with_apf": round(w.lost_ns / 1e6, 2), "lost_ms_without_apf": round(wo.lost_ns / 1e6, 2),
        "work_ms_with_apf": round(w.work_ns / 1e6, 2), "work_ms_without_apf": round(wo.work_ns / 1e6, 2),
        "verdict": cmp.verdict,
        "assumptions": "modelled guest: [sim] workload's tasks and swapped share, log-normal "
                       "swap-in (median 100 us), 3 us per not-present, 2 us per page-ready"}
