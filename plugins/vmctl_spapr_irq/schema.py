"""The ``[irq]`` and ``[pseries]`` sections (semantics.md §1.6)."""

from vmctl.api import Option, Section

IRQ = Section("irq", "sPAPR interrupt controller of a pseries machine (-machine ic-mode=, kernel-irqchip=).", (
    Option("ic-mode", "str", "interrupt controller modes offered to the guest: xics (legacy), xive (native, "
           "POWER9+), or dual (the guest chooses at CAS)", default="dual", choices=("xics", "xive", "dual")),
    Option("kernel-irqchip", "str", "in-kernel (KVM) controller: auto (when KVM can), on (required), off "
           "(emulated in QEMU); split is a QEMU value pseries refuses", default="auto",
           choices=("auto", "on", "off", "split")),
), arches=("ppc64",))

PSERIES = Section("pseries", "pseries machine options that change what the guest may negotiate.", (
    Option("max-cpu-compat", "str", "highest ISA level the guest may use (-machine max-cpu-compat=); "
           "power8 rules out XIVE", choices=("power7", "power8", "power9", "power10")),
    Option("firmware", "str", "guest firmware: slof (QEMU's default, about 1 s to the kernel) or vof "
           "(QEMU's minimal Virtual Open Firmware, -machine x-vof=on, about 0.1 s; needs a kernel)",
           choices=("slof", "vof")),
), arches=("ppc64",))


def sections() -> list[Section]:
    """The ``vmctl_sections`` answer: ``[irq]`` and ``[pseries]``."""
    return [IRQ, PSERIES]
