"""The async PF device inside the simulator (``vmctl run --backend sim``).

:class:`AsyncPfDevice` runs the machine's :class:`~.model.simulation.ApfSimulation` — the guest
with async PF and its ``no-kvmapf`` shadow — on the simulator's virtual clock.  Guest tasks
run from the ``running`` phase (userspace up); a ``reset`` boots a fresh guest, which enables
async PF again.  The model's clock follows the machine's; when a tick would cost more than
``max_faults_per_tick`` modelled faults the model falls behind instead (``lag_s``), so a big
guest cannot starve the QMP server.  All of it is deterministic under ``[sim] seed``.

QMP (vendor prefix):

``config`` replaces the model configuration read from the machine (tests, what-if runs).

``__org.vmctl_query-async-pf {"vcpu"?: int}``
    the live state (same as ``__org.vmctl_query-device {"plugin": "async-pf"}``), or one vCPU's
``__org.vmctl_ASYNC_PF`` (event, once per modelled second)
    what happened in that second: faults, async/sync split, page-ready events, outstanding
    tokens, vCPU time lost with and without async PF
``__org.vmctl_ASYNC_PF_VCPU_STUCK`` (event)
    a vCPU whose halted waiter's wake was deferred for good (arm64 RFCv2, see docs)

and ``info async-pf`` through ``human-monitor-command``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from vmctl.api import QMPError, SimDevice

from typing import TYPE_CHECKING

from .model.config import ApfConfig
from .model.counters import ApfCounters
from .model.simulation import ApfSimulation
from .settings import ApfSettings, read

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine

__all__ = ["sim_devices", "AsyncPfDevice", "EVENT", "STUCK_EVENT", "COMMAND"]

EVENT = "__org.vmctl_ASYNC_PF"
STUCK_EVENT = "__org.vmctl_ASYNC_PF_VCPU_STUCK"
COMMAND = "__org.vmctl_query-async-pf"
_SECOND = 1_000_000_000
_CHUNK = 10_000_000          # the model advances in 10 ms steps within a tick


def sim_devices(machine: Machine) -> list[SimDevice]:
    """The async PF device of ``machine``: one when it has an ``[async-pf]`` table on x86/arm64."""
    s = read(machine)
    if not s.written or not (s.x86 or s.aarch64):
        return []
    return [AsyncPfDevice(s)]


class AsyncPfDevice(SimDevice):
    """The machine's async PF model, driven by the simulator's clock and phases."""

    plugin = "async-pf"

    def __init__(self, settings: ApfSettings, *, config: ApfConfig | None = None,
                 max_faults_per_tick: int = 20_000, history: int = 120) -> None:
        self.settings = settings
        self.config = config if config is not None else settings.model_config()
        self.max_faults_per_tick = max_faults_per_tick
        self.history: deque[dict[str, Any]] = deque(maxlen=history)
        self._boot()

    # ------------------------------------------------------------------ lifecycle
    def _boot(self) -> None:
        self.sim = ApfSimulation(self.config, self.settings.seed)
        self.running = False
        self.vm_ns = 0                       # virtual time the model should have reached
        self.history.clear()
        self._next_sample = _SECOND
        self._last: tuple[ApfCounters, ApfCounters] = (self.sim.machine.counters(),
                                                       self.sim.shadow.counters())
        self._reported_stuck: set[int] = set()

    def on_phase(self, phase: str) -> None:
        if phase == "reset":
            self._boot()
        elif phase == "running":
            self.running = True
        elif phase == "shutdown":
            self.running = False

    def tick(self, now: float, dt: float) -> None:
        if not self.running:
            return
        self.vm_ns += round(dt * 1e9)
        machine = self.sim.machine
        start = _faults(machine)
        while self.sim.now < self.vm_ns and _faults(machine) - start < self.max_faults_per_tick:
            t = min(self.vm_ns, self.sim.now + _CHUNK)
            self.sim.advance(t)
            while self.sim.now >= self._next_sample:
                self._sample()
                self._next_sample += _SECOND
        for idx in machine.stuck_vcpus():
            if idx not in self._reported_stuck:
                self._reported_stuck.add(idx)
                self._emit(STUCK_EVENT, {"vcpu": idx, "reason": "halted waiter woken from its own "
                                         "context: the delayed wake never runs (RFCv2)"})

    def _sample(self) -> None:
        w, wo = self.sim.machine.counters(), self.sim.shadow.counters()
        pw, pwo = self._last
        self._last = (w, wo)
        point = {
            "t_s": round(w.now_ns / 1e9, 3), "faults": w.faults - pw.faults,
            "async_faults": w.async_faults - pw.async_faults,
            "sync_stalls": w.sync_stalls - pw.sync_stalls,
            "ready_events": w.ready_events - pw.ready_events, "outstanding": w.outstanding,
            "lost_ms_with_apf": round((w.lost_ns - pw.lost_ns) / 1e6, 3),
            "lost_ms_without_apf": round((wo.lost_ns - pwo.lost_ns) / 1e6, 3),
        }
        self.history.append(point)
        self._emit(EVENT, point)

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        vm = getattr(self, "vm", None)
        if vm is not None:
            vm.emit(event, data)

    # ------------------------------------------------------------------ queries
    def state(self) -> dict[str, Any]:
        s, cmp = self.settings, self.sim.compare()
        w = cmp.with_apf
        return {
            "protocol": s.rules.name, "upstream": "merged" if s.rules.merged else "never merged",
            "experimental": s.experimental, "mode": s.mode, "running": self.running,
            "enabled_vcpus": sum(1 for i in range(w.vcpus) if self.sim.machine.host(i).enabled),
            "model_time_s": round(self.sim.now / 1e9, 3),
            "lag_s": round(max(0, self.vm_ns - self.sim.now) / 1e9, 3),
            "counters": w.to_json(),
            "without_apf": {k: cmp.without_apf.to_json()[k] for k in
                            ("faults", "sync_stalls", "work_ns", "stalled_ns", "lost_ns")},
            "lost_ns_saved": cmp.lost_ns_saved, "verdict": cmp.verdict,
            "vcpus": [self.sim.machine.vcpu_status(i) for i in range(w.vcpus)],
            "history": list(self.history),
        }

    def _query(self, arguments: dict[str, Any]) -> Any:
        if "vcpu" not in arguments:
            return self.state()
        idx = arguments["vcpu"]
        n = self.config.vcpus
        if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < n:
            raise QMPError.generic(f"vcpu {idx!r} out of range 0..{n - 1}")
        return self.sim.machine.vcpu_status(idx)

    def qmp_commands(self) -> dict[str, Any]:
        return {COMMAND: self._query}

    def hmp_info(self) -> dict[str, Any]:
        return {"async-pf": self.info_text}

    def info_text(self) -> str:
        """``info async-pf``: one line per vCPU, then the with/without comparison."""
        st = self.state()
        c = st["counters"]
        lines = [f"async-pf: {st['protocol']} ({st['upstream']}), model time {st['model_time_s']} s"]
        for v in st["vcpus"]:
            w = v["waiters"]
            lines.append(f"  vCPU {v['vcpu']}: {v['apf']:<19} {v['state']:<12} outstanding "
                         f"{v['outstanding']:>2}  not-present {v['not_present']}  ready "
                         f"{v['page_ready']}  sync {sum(v['sync'].values())}  waiters "
                         f"{w['sleeping']} sleeping/{w['halted']} halted/{w['dummy']} dummy"
                         + ("  STUCK" if v["stuck"] else ""))
        lines.append(f"  lost vCPU time: {c['lost_ns'] / 1e6:.1f} ms with async PF, "
                     f"{st['without_apf']['lost_ns'] / 1e6:.1f} ms without ({st['verdict']})")
        return "\n".join(lines) + "\n"


def _faults(model: Any) -> int:
    total = 0
    for i in range(model.config.vcpus):
        h = model.host(i)
        total += h.not_present_sent + sum(h.sync.values())
    return total
