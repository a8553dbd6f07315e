"""The vfio-ap device inside vmctl's simulator (``vmctl run --backend sim``).

The device runs the whole AP model (:class:`~vmctl_vfio_ap.model.system.ApSystem`) of a host
prepared the way ``vmctl host apply`` would: the machine's adapters handed to vfio_ap, the
mdev created and assigned, plus one spare adapter and one spare domain for live changes.

* ``reset`` (power-on): QEMU realises ``-device vfio-ap``: the mdev is opened for the guest
  (KVM attached, CRYCB loaded); every later ``system_reset`` is a ``VFIO_DEVICE_RESET``
  (queues zeroized).  ``kernel``: the guest's AP bus enables interrupts on its queues
  (PQAP AQIC).  ``shutdown``: QEMU closes the device (masks cleared, queues reset).
* clock ticks: the guest sends crypto requests to the queues it sees, seeded from
  ``[sim] seed``, counted per APQN.
* vendor QMP commands change the host while the guest runs — each is a sysfs write or a
  host event in the model, with the kernel's errno on refusal::

      __org.vmctl_ap-assign / __org.vmctl_ap-unassign  {"what": "adapter"|"domain"|"control-domain", "id": 6}
      __org.vmctl_ap-queue   {"apqn": "05.0004", "action": "bind"|"unbind"}
      __org.vmctl_ap-mask    {"mask": "apmask"|"aqmask", "value": "+5"}
      __org.vmctl_ap-config  {"adapters": [...], "domains": [...], "control-domains": [...]}

* events: ``__org.vmctl_AP_HOTPLUG`` for every change of the guest's AP configuration
  (``trigger``, ``plugged``, ``unplugged``, …) and ``__org.vmctl_AP_QUEUE_RESET``.
* :meth:`VfioApDevice.state` (``__org.vmctl_query-device {"plugin": "vfio-ap"}``): matrix
  vs guest matrix, the APQNs filtered out and why, counters.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from vmctl.api import ModelError, QMPError, SimDevice

from .model import masks as M
from .model.apbus import ApConfig, Queue
from .model.filter import apqns, filtered_out
from .model.system import AP_BUS, MATRIX, TYPE_DIR, ApSystem
from .settings import ApDevice, ap_devices

EVENT_HOTPLUG = "__org.vmctl_AP_HOTPLUG"
EVENT_RESET = "__org.vmctl_AP_QUEUE_RESET"
REQUEST_RATE = 200.0
"""Crypto requests per second to each guest queue at full workload load."""
WHAT = {"adapter": "adapter", "domain": "domain", "control-domain": "control_domain"}


def _spare(used: tuple[int, ...]) -> int | None:
    return next((n for n in range(256) if n not in used), None)


def simulated_host(dev: ApDevice) -> ApSystem:
    """An s390 host prepared for ``dev`` (masks, mdev, assignments), with a spare adapter/domain."""
    spare_ap, spare_dom = _spare(dev.adapters), _spare(dev.domains + dev.control_domains)
    adapters = sorted(set(dev.adapters) | ({spare_ap} if spare_ap is not None else set()))
    domains = sorted(set(dev.domains) | ({spare_dom} if spare_dom is not None else set()))
    config = ApConfig(M.from_ids(adapters), M.from_ids(domains),
                      M.from_ids(set(domains) | set(dev.control_domains)))
    ap = ApSystem(config=config, apmask=M.FULL & ~M.from_ids(adapters))
    ap.write(f"{TYPE_DIR}/create", dev.uuid)
    for what, ids in (("adapter", dev.adapters), ("domain", dev.domains),
                      ("control_domain", dev.control_domains)):
        for n in sorted(set(ids)):
            ap.write(f"{MATRIX}/{dev.uuid}/assign_{what}", str(n))
    return ap


def _int(args: dict[str, Any], name: str) -> int:
    if name not in args:
        raise QMPError.generic(f"Parameter '{name}' is missing")
    value = args[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise QMPError.generic(f"Invalid parameter type for '{name}', expected: integer")
    return value


def _str(args: dict[str, Any], name: str, choices: tuple[str, ...] = ()) -> str:
    if name not in args:
        raise QMPError.generic(f"Parameter '{name}' is missing")
    value = args[name]
    if not isinstance(value, str):
        raise QMPError.generic(f"Invalid parameter type for '{name}', expected: string")
    if choices and value not in choices:
        raise QMPError.generic(f"Parameter '{name}' does not accept value '{value}'")
    return value


class VfioApDevice(SimDevice):
    """The AP passthrough of one simulated s390x guest."""

    plugin = "vfio-ap"

    def attach(self, vm: Any) -> None:
        self.vm = vm
        self.guest = str(vm.machine.name or "vm")
        self.dev = ap_devices(vm.machine)[0]
        self.error: str | None = None
        self.requests: Counter[str] = Counter()
        self._hotplugs = self._resets = 0
        try:
            self.ap = simulated_host(self.dev)
        except ModelError as err:
            self.ap = ApSystem()
            self._fail(f"cannot prepare the simulated host: {err}")
        self._resets = len(self.ap.journal.resets)

    # -- lifecycle --------------------------------------------------------------------------
    def on_phase(self, phase: str) -> None:
        if self.error is not None:
            return
        try:
            m = self.ap.mdev(self.dev.uuid)
            if phase == "reset":
                if m.guest is None:
                    self.ap.open_mdev(self.dev.uuid, self.guest)
                else:
                    self.ap.reset_mdev(self.dev.uuid)
            elif phase == "kernel" and m.guest is not None:
                for name in apqns(m.crycb[0], m.crycb[1]):
                    self.ap.pqap_aqic(self.guest, name, True)
            elif phase == "shutdown" and m.guest is not None:
                self.ap.close_mdev(self.dev.uuid)
        except ModelError as err:
            self._fail(f"vfio-ap: {err}")
        self._flush()

    def tick(self, now: float, dt: float) -> None:
        if self.error is not None or self.vm.phase not in ("kernel", "running"):
            return
        m = self.ap.mdev(self.dev.uuid)
        load = max((c.load for c in self.vm.cpus if c.online), default=0.0)
        rng = self.vm.rng
        for name in apqns(m.crycb[0], m.crycb[1]):
            n = int(REQUEST_RATE * load * dt + rng.random())
            if n:
                self.requests[name] += n

    # -- vendor commands ----------------------------------------------------------------------
    def qmp_commands(self) -> dict[str, Any]:
        return {"__org.vmctl_ap-assign": lambda a: self._assign(a, "assign"),
                "__org.vmctl_ap-unassign": lambda a: self._assign(a, "unassign"),
                "__org.vmctl_ap-queue": self._queue, "__org.vmctl_ap-mask": self._mask,
                "__org.vmctl_ap-config": self._config}

    def _run(self, fn: Any, *args: Any) -> dict[str, Any]:
        if self.error is not None:
            raise QMPError.generic(f"vfio-ap device failed: {self.error}")
        try:
            fn(*args)
        except ModelError as err:
            raise QMPError.generic(str(err)) from None
        finally:
            self._flush()
        return {}

    def _assign(self, args: dict[str, Any], verb: str) -> dict[str, Any]:
        what = WHAT[_str(args, "what", tuple(WHAT))]
        n = _int(args, "id")
        return self._run(self.ap.write, f"{MATRIX}/{self.dev.uuid}/{verb}_{what}", str(n))

    def _queue(self, args: dict[str, Any]) -> dict[str, Any]:
        name, action = _str(args, "apqn"), _str(args, "action", ("bind", "unbind"))
        q = self.ap.bus.find_device(name)
        if not isinstance(q, Queue):
            raise QMPError("DeviceNotFound", f"no AP queue {name!r} on the host")
        driver = "vfio_ap" if action == "bind" else (q.driver or "vfio_ap")
        return self._run(self.ap.write, f"{AP_BUS}/drivers/{driver}/{action}", name)

    def _mask(self, args: dict[str, Any]) -> dict[str, Any]:
        which, value = _str(args, "mask", ("apmask", "aqmask")), _str(args, "value")
        return self._run(self.ap.write, f"{AP_BUS}/{which}", value)

    def _config(self, args: dict[str, Any]) -> dict[str, Any]:
        masks: dict[str, int] = {}
        for key, field in (("adapters", "apm"), ("domains", "aqm"), ("control-domains", "adm")):
            if key in args:
                ids = args[key]
                if not isinstance(ids, list) or not all(isinstance(i, int) and 0 <= i <= 255 for i in ids):
                    raise QMPError.generic(f"Invalid parameter type for '{key}', expected: array of 0..255")
                masks[field] = M.from_ids(ids)
        return self._run(self.ap.config_change, masks.get("apm"), masks.get("aqm"), masks.get("adm"))

    # -- what clients see -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Matrix vs guest view, filtered APQNs with reasons, counters, requests per APQN."""
        ap, b = self.ap, self.ap.bus
        out: dict[str, Any] = {"uuid": self.dev.uuid, "sysfsdev": self.dev.sysfsdev, "error": self.error,
                               "apmask": M.format_mask(b.apmask), "aqmask": M.format_mask(b.aqmask)}
        if self.dev.uuid not in (ap.vfio.mdevs if ap.vfio else {}):
            return out
        m = ap.mdev(self.dev.uuid)
        out.update({
            "state": m.state.value, "guest": m.guest,
            "matrix": apqns(m.apm, m.aqm),
            "guest_matrix": M.matrix_text(m.shadow_apm, m.shadow_aqm).split(),
            "guest_apqns": apqns(m.crycb[0], m.crycb[1]),
            "control_domains": [f"{c:04x}" for c in M.ids(m.adm)],
            "guest_control_domains": [f"{c:04x}" for c in M.ids(m.crycb[2])],
            "filtered": [f.to_json() for f in filtered_out(m, b)],
            "irq_enabled": sorted(q.name for q in b.queues.values() if q.mdev == m.uuid and q.irq_enabled),
            "requests": sum(self.requests.values()),
            "requests_by_apqn": dict(sorted(self.requests.items())),
            "counters": ap.journal.counters.to_json(),
            "hotplug_events": [self._event(e) for e in ap.journal.hotplugs[-5:]],
            "log": ap.journal.log[-5:],
        })
        return out

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _event(e: Any) -> dict[str, Any]:
        return {"mdev": e.mdev, "guest": e.guest, "trigger": e.trigger.value, "plugged": list(e.plugged),
                "unplugged": list(e.unplugged), "cdoms-plugged": list(e.cdoms_plugged),
                "cdoms-unplugged": list(e.cdoms_unplugged)}

    def _flush(self) -> None:
        j = self.ap.journal
        for e in j.hotplugs[self._hotplugs:]:
            self.vm.emit(EVENT_HOTPLUG, self._event(e))
            parts = [f"{verb} {', '.join(map(str, items))}" for verb, items in (
                ("plugged", e.plugged), ("unplugged", e.unplugged),
                ("plugged control domains", [f"{c:04x}" for c in e.cdoms_plugged]),
                ("unplugged control domains", [f"{c:04x}" for c in e.cdoms_unplugged])) if items]
            self.vm.console(f"vmctl-sim: AP configuration of {e.guest} changed ({e.trigger.value}): "
                            + "; ".join(parts))
        for r in j.resets[self._resets:]:
            self.vm.emit(EVENT_RESET, {"apqn": r.apqn, "reason": r.reason, "response-code": r.rc})
        self._hotplugs, self._resets = len(j.hotplugs), len(j.resets)

    def _fail(self, message: str) -> None:
        """QEMU cannot realise the device: it prints the error and exits."""
        self.error = message
        self.vm.exit_with_error(f"qemu-system-s390x: -device vfio-ap: {message}")


def sim_devices(machine: Any) -> list[SimDevice]:
    """The ``vmctl_sim_devices`` answer: one device for a machine with a vfio-ap device."""
    return [VfioApDevice()] if ap_devices(machine) else []
