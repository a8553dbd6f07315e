"""Reading async PF from a running instance for ``vmctl status`` and the TUI. Pure parsers.

* **sim** — ``__org.vmctl_query-device {"plugin": "async-pf"}``: the device's whole state
  (:meth:`~.sim.AsyncPfDevice.state`).
* **qemu, x86_64** — ``query-cpus-fast`` for CPU 0's QOM path, then ``qom-get`` of its
  ``kvm-asyncpf`` and ``kvm-asyncpf-int`` properties, compared with what the TOML asked for.
  QEMU clears KVM paravirtual CPUID bits when KVM is not the accelerator, so under TCG both
  read back ``false`` whatever was requested (why ``mode = "on"`` needs ``accel = "kvm"``).
* **qemu, aarch64** — nothing to read: there is no arm64 async PF in QEMU.

Also the TUI's declarations: :func:`tui_panels` (the ``vmctl monitor`` panel, which lives in
:mod:`.panel` and is imported only by the TUI) and :func:`headline` (``vmctl top``'s column).
No Textual here.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from vmctl.api import LiveProbe, LiveState, PanelSpec, format_rate

from .settings import ApfSettings, read

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine

__all__ = ["live_probe", "parse_sim", "parse_qemu", "tui_panels", "headline", "CPU0_PATH",
           "PROPS"]

#: QOM path of vCPU 0 on QEMU's x86 machines (checked against ``query-cpus-fast``).
CPU0_PATH = "/machine/unattached/device[0]"
PROPS = ("kvm-asyncpf", "kvm-asyncpf-int")


def live_probe(machine: Machine, backend: str) -> LiveProbe | None:
    """The probe for ``machine`` on ``backend`` (``sim`` or ``qemu``), or None."""
    s = read(machine)
    if not s.written or not (s.x86 or s.aarch64):
        return None
    if backend == "sim":
        return LiveProbe((("__org.vmctl_query-device", {"plugin": "async-pf"}),), parse_sim)
    if backend == "qemu" and s.x86:
        commands = (("query-cpus-fast", {}),) + tuple(
            ("qom-get", {"path": CPU0_PATH, "property": p}) for p in PROPS)
        return LiveProbe(commands, partial(parse_qemu, s))
    return None


#: Counters ``vmctl status`` lifts to the top level, most telling first.
SUMMARY = ("faults", "async_faults", "sync_stalls", "sync_by_reason", "ready_events", "wake_alls",
           "outstanding", "waiting_tasks", "halts", "dummy_entries", "delayed_wakes",
           "stuck_vcpus", "unsafe_deliveries", "bad_vector_injections")


def parse_sim(results: list[Any]) -> dict[str, Any]:
    """The device's state, flattened for ``vmctl status``: verdict and counters first.

    Keys: ``protocol``, ``upstream``, ``verdict``, ``lost_ms_with_apf``,
    ``lost_ms_without_apf``, ``model_time_s``, ``lag_s``, ``enabled_vcpus``, the
    :data:`SUMMARY` counters, then ``vcpus`` (per-vCPU detail) and ``history`` (one point
    per modelled second, the stall time over time).  A device that failed passes through.
    """
    state = results[0] if results else {}
    if not isinstance(state, dict) or "counters" not in state:
        return dict(state) if isinstance(state, dict) else {"value": state}
    c, wo = state["counters"], state["without_apf"]
    out: dict[str, Any] = {
        "protocol": state["protocol"], "upstream": state["upstream"], "verdict": state["verdict"],
        "lost_ms_with_apf": round(c["lost_ns"] / 1e6, 1),
        "lost_ms_without_apf": round(wo["lost_ns"] / 1e6, 1),
        "model_time_s": state["model_time_s"], "lag_s": state["lag_s"],
        "enabled_vcpus": state["enabled_vcpus"],
    }
    out.update((k, c[k]) for k in SUMMARY)
    out["vcpus"] = state["vcpus"]
    out["history"] = state["history"]
    return out


def parse_qemu(settings: ApfSettings, results: list[Any]) -> dict[str, Any]:
    """``{"cpu0", "live", "configured", "matches", "note"?}`` from the three replies."""
    cpus, values = results[0], results[1:]
    path = next((c.get("qom-path") for c in cpus or () if c.get("cpu-index") == 0), None)
    live = {p: "on" if v else "off" for p, v in zip(PROPS, values)}
    configured = settings.cpu_props()
    out: dict[str, Any] = {"cpu0": path, "live": live, "configured": configured,
                           "matches": live == configured and path == CPU0_PATH}
    if path != CPU0_PATH:
        out["note"] = f"vCPU 0 is {path}, not {CPU0_PATH}: the properties read may be another object's"
    elif settings.accel == "tcg" and live != configured:
        out["note"] = "QEMU clears KVM paravirtual features without KVM: async PF is off under TCG"
    elif settings.mode == "auto" and live != configured:
        out["note"] = "mode = \"auto\": QEMU's defaults on this host differ from vmctl's expectation"
    elif live != configured:
        out["note"] = "QEMU reports other values than the TOML asks for: is KVM the accelerator?"
    return out


def tui_panels(machine: Machine) -> list[PanelSpec] | None:
    """The async PF panel for machines with an ``[async-pf]`` table (``vmctl monitor``/``top``)."""
    s = read(machine)
    if not s.written or not (s.x86 or s.aarch64):
        return None
    return [PanelSpec("Async page faults", "vmctl_async_pf.panel:ApfPanel", headline=headline)]


def headline(state: LiveState) -> str:
    """``vmctl top``'s column: ``9.7k/s helps`` (sim), ``on/on`` (QEMU), or ``-``."""
    if state.backend == "qemu":
        live = state.get("live") or {}
        return f"{live.get('kvm-asyncpf', '?')}/{live.get('kvm-asyncpf-int', '?')}"
    history = state.get("history")
    if isinstance(history, list) and history:
        return f"{format_rate(history[-1].get('async_faults', 0))} {state.get('verdict', '')}".strip()
    return str(state.get("verdict") or "-")
