"""Reading async PF from a running instance for ``vmctl status`` (and the TUI). Pure parsers.

* **sim** — ``__org.vmctl_query-device {"plugin": "async-pf"}``: the device's whole state
  (:meth:`~.sim.AsyncPfDevice.state`).
* **qemu, x86_64** — ``query-cpus-fast`` for CPU 0's QOM path, then ``qom-get`` of its
  ``kvm-asyncpf`` and ``kvm-asyncpf-int`` properties, compared with what the TOML asked for.
  QEMU clears KVM paravirtual CPUID bits when KVM is not the accelerator, so under TCG both
  read back ``false`` whatever was requested (why ``mode = "on"`` needs ``accel = "kvm"``).
* **qemu, aarch64** — nothing to read: there is no arm64 async PF in QEMU.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from vmctl.types import LiveProbe

from .settings import ApfSettings, read

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.config.machine import Machine

__all__ = ["live_probe", "parse_sim", "parse_qemu", "CPU0_PATH", "PROPS"]

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


def parse_sim(results: list[Any]) -> dict[str, Any]:
    """The simulator device's state, as is."""
    state = results[0] if results else {}
    return dict(state) if isinstance(state, dict) else {"value": state}


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
