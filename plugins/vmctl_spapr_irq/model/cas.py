"""The CAS negotiation, and the prediction the simulator obeys and ``vmctl plan`` shows
(``predict.py`` builds the plan's answer from :func:`predict`).

At boot a pseries guest calls ``ibm,client-architecture-support`` (CAS). QEMU offers, in
``ibm,arch-vec-5-platform-support`` byte 23, the interrupt modes of its ``ic-mode``
(xics → 0x00, xive → 0x40, dual → 0x80); the guest answers in option vector 5 byte 23
(0x40 = XIVE, 0x00 = XICS). A Linux guest (≥ 4.16, XIVE-capable) picks XIVE whenever it is
offered, unless booted with ``xive=off`` — which it honours only when both modes are
offered: offered XIVE alone, it prints "Ignoring cmdline option xive=off" and takes XIVE
(observed with Debian's 6.1 kernel on QEMU 7.2). A guest that knows no XIVE (older than
4.16) answers XICS, and QEMU with ``ic-mode=xive`` then exits.

Every function here is pure; :func:`predict` and ``spapr.SpaprIrqMachine`` use the same
helpers, so a prediction and a simulated boot cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .constants import (
    OV5_BYTE23_EITHER, OV5_BYTE23_EXPLOIT, OV5_BYTE23_LEGACY, Controller, IcMode, IrqMode,
)

MSG_XIVE_NEEDS_P9 = "XIVE-only machines require a POWER9 CPU"
MSG_SPLIT = "kernel_irqchip split mode not supported on pseries"
MSG_BROKEN_RELEASE = "KVM is incompatible with ic-mode=dual,kernel-irqchip=on"
MSG_NO_XIVE_CAP = ("kernel_irqchip requested but unavailable: "
                   "IRQ_XIVE capability must be present for KVM")
MSG_GUEST_XICS = ("Guest requested unavailable interrupt mode (XICS), either don't set the "
                  "ic-mode machine property or try ic-mode=xics or ic-mode=dual")
MSG_GUEST_XIVE = ("Guest requested unavailable interrupt mode (XIVE), try the ic-mode=xive or "
                  "ic-mode=dual machine property")
MSG_GUEST_INVALID = "guest requested an invalid interrupt mode"

_CPU_RE = re.compile(r"^power(\d+)")


def cpu_generation(cpu: str) -> int | None:
    """POWER generation of a QEMU CPU model (``power9_v2.2`` → 9, ``POWER8E`` → 8).

    ``None`` for ``host``/``max`` and unknown names: the generation is the host's.
    """
    m = _CPU_RE.match(cpu.strip().lower())
    return int(m.group(1)) if m else None


def effective_generation(cpu: str, max_cpu_compat: str | None) -> int | None:
    """The ISA level the guest runs at: the CPU, lowered by ``max-cpu-compat``."""
    gen = cpu_generation(cpu)
    compat = cpu_generation(max_cpu_compat) if max_cpu_compat else None
    if compat is None:
        return gen
    return compat if gen is None else min(gen, compat)


def effective_ic_mode(ic_mode: str, cpu: str, max_cpu_compat: str | None) -> tuple[IcMode, list[str]]:
    """QEMU's ``spapr_irq_check``: ``dual`` on a pre-POWER9 CPU runs as ``xics``.

    Raises :class:`Refusal` for ``xive`` with a pre-POWER9 CPU or POWER8 compat.
    """
    mode = IcMode(ic_mode)
    gen = effective_generation(cpu, max_cpu_compat)
    if gen is None or gen >= 9:
        return mode, []
    why = f"max-cpu-compat={max_cpu_compat}" if max_cpu_compat and (cpu_generation(cpu) or 99) > gen \
        else f"CPU {cpu}"
    if mode is IcMode.XIVE:
        raise Refusal(MSG_XIVE_NEEDS_P9, f"{why} is POWER{gen}; use ic-mode=xics or dual, or a "
                      "POWER9 CPU without max-cpu-compat=power8")
    if mode is IcMode.DUAL:
        return IcMode.XICS, [f"{why} is POWER{gen} (no XIVE before ISA 3.0): ic-mode=dual runs as xics"]
    return mode, []


def platform_byte23(mode: IcMode) -> int:
    """``ibm,arch-vec-5-platform-support`` byte 23 for an (effective) ic-mode."""
    return {IcMode.XICS: OV5_BYTE23_LEGACY, IcMode.XIVE: OV5_BYTE23_EXPLOIT,
            IcMode.DUAL: OV5_BYTE23_EITHER}[mode]


def append_disables_xive(append: str | None) -> bool:
    """True when the kernel command line carries ``xive=off`` (the last ``xive=`` wins)."""
    value = None
    for token in (append or "").split():
        if token.startswith("xive="):
            value = token[5:]
    return value in ("off", "0", "n", "no", "false")


def guest_answer(platform_byte: int, append: str | None, guest_xive_capable: bool = True
                 ) -> tuple[int, list[str]]:
    """What a Linux guest answers in OV5 byte 23, and why."""
    if not guest_xive_capable:
        return OV5_BYTE23_LEGACY, ["the guest kernel knows no XIVE: it asks for XICS"]
    off = append_disables_xive(append)
    if platform_byte == OV5_BYTE23_EITHER:
        if off:
            return OV5_BYTE23_LEGACY, ["both modes offered and the guest is booted with xive=off: XICS"]
        return OV5_BYTE23_EXPLOIT, ["both modes offered: a XIVE-capable guest takes XIVE"]
    if platform_byte == OV5_BYTE23_EXPLOIT:
        why = "only XIVE offered: the guest takes it"
        if off:
            why += " and ignores xive=off ('Ignoring cmdline option xive=off')"
        return OV5_BYTE23_EXPLOIT, [why]
    return OV5_BYTE23_LEGACY, ["only XICS offered: the guest keeps XICS"]


def cas_outcome(mode: IcMode, guest_byte: int) -> IrqMode:
    """QEMU's check of the guest's answer; raises :class:`Refusal` when QEMU exits."""
    if guest_byte & OV5_BYTE23_EITHER:
        raise Refusal(MSG_GUEST_INVALID, "the guest set the reserved 'both' bit in OV5 byte 23")
    if guest_byte & OV5_BYTE23_EXPLOIT:
        if mode is IcMode.XICS:
            raise Refusal(MSG_GUEST_XIVE, "")
        return IrqMode.XIVE
    if mode is IcMode.XIVE:
        raise Refusal(MSG_GUEST_XICS, "the guest kernel does not support XIVE; use ic-mode=dual")
    return IrqMode.XICS


def default_mode(mode: IcMode) -> IrqMode:
    """The controller active from machine reset until CAS: XIVE only for ``ic-mode=xive``."""
    return IrqMode.XIVE if mode is IcMode.XIVE else IrqMode.XICS


@dataclass(frozen=True)
class KvmHost:
    """What the prediction needs to know about the host's KVM (nothing here probes it)."""

    kvm_available: bool = False
    xive_cap: bool = False
    can_release: bool = True


def controller_for(irq_mode: IrqMode, accel: str, kernel_irqchip: str, host: KvmHost
                   ) -> tuple[Controller, list[str]]:
    """Where QEMU runs ``irq_mode``: in KVM or emulated (``spapr_irq_init_kvm``).

    Raises :class:`Refusal` when ``kernel-irqchip=on`` cannot be honoured.
    """
    if accel != "kvm":
        why = "TCG: QEMU emulates the controller"
        if kernel_irqchip == "on":
            why += " (QEMU 7.2 ignores kernel-irqchip=on without KVM)"
        return Controller.EMULATED, [why]
    if kernel_irqchip == "off":
        return Controller.EMULATED, ["kernel-irqchip=off: QEMU emulates the controller"]
    if irq_mode is IrqMode.XIVE and not host.xive_cap:
        if kernel_irqchip == "on":
            raise Refusal(MSG_NO_XIVE_CAP, "the host lacks KVM_CAP_PPC_IRQ_XIVE (POWER9+ bare metal "
                          "with XIVE in native mode); use kernel-irqchip=auto or off")
        return Controller.EMULATED, ["host lacks KVM_CAP_PPC_IRQ_XIVE: XIVE will be emulated"]
    return Controller.KVM, [f"{irq_mode.value.upper()} runs in the KVM device"]


def resolve_accel(accel: str, host: KvmHost) -> str:
    """``auto`` → ``kvm`` when KVM is usable, else ``tcg``."""
    if accel == "auto":
        return "kvm" if host.kvm_available else "tcg"
    return accel


class Refusal(Exception):
    """QEMU refuses the configuration (at start-up or at CAS) with ``message``."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class Prediction:
    """The interrupt mode a machine ends up in after CAS.

    ``after_cas``/``controller`` are None when QEMU refuses; ``error`` then holds QEMU's
    message and ``hint`` the fix. ``before_cas`` is the default mode from reset to CAS.
    """

    after_cas: str | None
    controller: str | None
    reasons: list[str] = field(default_factory=list)
    before_cas: str | None = None
    error: str | None = None
    hint: str | None = None

    def to_json(self) -> dict[str, object]:
        """``after_cas``, ``controller``, ``before_cas``, ``reasons``; ``error``/``hint`` only on refusal."""
        out: dict[str, object] = {"after_cas": self.after_cas, "controller": self.controller,
                                  "before_cas": self.before_cas, "reasons": list(self.reasons)}
        if self.error:
            out |= {"error": self.error, "hint": self.hint}
        return out


def predict(ic_mode: str, cpu: str, max_cpu_compat: str | None, append: str | None, accel: str,
            kernel_irqchip: str, host_has_xive_cap: bool, *, kvm_available: bool | None = None,
            host_can_release: bool = True, guest_xive_capable: bool = True) -> Prediction:
    """Predict the interrupt mode and controller after the guest's CAS.

    ``accel`` is ``tcg``, ``kvm`` or ``auto`` (KVM when ``kvm_available``, which defaults to
    ``host_has_xive_cap``); ``kernel_irqchip`` is ``auto``, ``on``, ``off`` or ``split``.
    ``host_can_release``: the host kernel releases a closed device (Linux ≥ 5.2, not nested).
    ``guest_xive_capable``: the guest kernel knows XIVE (Linux ≥ 4.16).
    """
    host = KvmHost(host_has_xive_cap if kvm_available is None else kvm_available,
                   host_has_xive_cap, host_can_release)
    reasons: list[str] = []
    try:
        accel_r = resolve_accel(accel, host)
        if accel != accel_r:
            reasons.append(f"accel=auto resolves to {accel_r}")
        mode, why = startup_check(ic_mode, cpu, max_cpu_compat, accel_r, kernel_irqchip, host)
        reasons += why
        before = default_mode(mode)
        answer, why = guest_answer(platform_byte23(mode), append, guest_xive_capable)
        reasons += why
        after = cas_outcome(mode, answer)
        if after is not before:
            reasons.append(f"QEMU switches {before.value} → {after.value} in place at CAS (≥ 5.0)")
        controller, why = controller_for(after, accel_r, kernel_irqchip, host)
        if controller is Controller.KVM and after is not before and not host.can_release:
            controller, why = Controller.EMULATED, [
                "the host kernel cannot release the default KVM device: "
                f"{after.value.upper()} falls back to emulation"]
        reasons += why
    except Refusal as exc:
        return Prediction(None, None, reasons, error=exc.message, hint=exc.hint or None)
    return Prediction(after.value, controller.value, reasons, before_cas=before.value)


def startup_check(ic_mode: str, cpu: str, max_cpu_compat: str | None, accel: str,
                  kernel_irqchip: str, host: KvmHost) -> tuple[IcMode, list[str]]:
    """QEMU's machine-init checks; the effective ic-mode, or :class:`Refusal`."""
    reasons: list[str] = []
    if accel == "kvm" and kernel_irqchip == "split":
        raise Refusal(MSG_SPLIT, "use kernel-irqchip=auto, on or off")
    mode, why = effective_ic_mode(ic_mode, cpu, max_cpu_compat)
    reasons += why
    if accel == "kvm" and mode is IcMode.DUAL and kernel_irqchip == "on" and not host.can_release:
        raise Refusal(MSG_BROKEN_RELEASE, "This can happen with an old KVM or in a KVM nested guest. "
                      "Try without kernel-irqchip or with kernel-irqchip=off.")
    if accel == "kvm":
        # the default controller is activated at the first reset: its refusal is fatal too
        controller_for(default_mode(mode), accel, kernel_irqchip, host)
    return mode, reasons
