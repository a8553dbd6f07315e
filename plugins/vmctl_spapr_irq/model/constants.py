"""Numbers and enums of the sPAPR interrupt controllers, as the kernel and QEMU define them.

Sources: ``include/uapi/linux/kvm.h``, ``arch/powerpc/kvm/book3s_xive*.c``,
``hw/ppc/spapr_irq.c`` and ``docs/specs/ppc-spapr-xive.rst`` (semantics.md §1.1).
"""

from __future__ import annotations

from enum import Enum

# -- KVM device types and capabilities (include/uapi/linux/kvm.h) ---------------------------
KVM_DEV_TYPE_XICS = 3
"""Legacy XICS device; "XICS-on-XIVE" when the host has XIVE hardware."""
KVM_DEV_TYPE_XIVE = 9
"""Native XIVE exploitation device (only registered when the host runs XIVE natively)."""
KVM_CAP_IRQ_XICS = 92
KVM_CAP_PPC_IRQ_XIVE = 169

# -- Host limits ------------------------------------------------------------------------------
MAX_SMT_THREADS = 8
DEFAULT_KVM_MAX_VCPUS = 2048
"""``NR_CPUS`` of a typical distro ppc64le kernel (value unverified, semantics.md §5)."""

# -- Priorities ------------------------------------------------------------------------------
PRIORITY_MASKED = 0xFF
PRIORITY_RESERVED = 7
"""KVM keeps priority 7 for escalation interrupts; guests may use 0..6."""
GUEST_MAX_PRIORITY = 6
XICS_IPI_PRIORITY = 4
"""``IPI_PRIORITY`` a Linux guest writes into MFRR to send an IPI on XICS."""
XICS_LINUX_PRIORITY = 5
"""``DEFAULT_PRIORITY`` a Linux guest uses for its XICS sources."""
XIVE_LINUX_PRIORITY = 6
"""Linux guests route every XIVE source to priority 6 ("Using priority 6 for all interrupts")."""

# -- Interrupt numbers -----------------------------------------------------------------------
KVMPPC_XICS_FIRST_IRQ = 16
"""XICS numbers 0..15 are reserved (0 = no interrupt, 2 = IPI)."""
XICS_IPI = 2
"""XICS number of the inter-processor interrupt (raised through a presenter's MFRR)."""
KVMPPC_XICS_NR_IRQS = 1 << 20
"""One million interrupt numbers, for both the XICS and the native XIVE device."""

SPAPR_IRQ_EPOW = 0x1000
SPAPR_IRQ_HOTPLUG = 0x1001
SPAPR_IRQ_VIO = 0x1100
SPAPR_IRQ_PCI_LSI = 0x1200
SPAPR_IRQ_MSI = 0x1300
SPAPR_XIRQ_BASE = 0x1000
SPAPR_NR_XIRQS = 0x1000
SPAPR_NR_IRQS = SPAPR_XIRQ_BASE + SPAPR_NR_XIRQS
"""QEMU's sPAPR interrupt number space: 8K, IPIs below 0x1000 (XIVE only)."""

# -- Event queues ----------------------------------------------------------------------------
EQ_QSHIFT_NONE = 0
EQ_QSHIFT_64K = 16
VALID_EQ_QSHIFTS = (EQ_QSHIFT_NONE, EQ_QSHIFT_64K)
"""The only EQ sizes the model accepts: no queue, or one 64 KiB page (semantics.md §1.1)."""
KVM_XIVE_EQ_ALWAYS_NOTIFY = 0x1

# -- ESB PQ bits -----------------------------------------------------------------------------
PQ_RESET = 0b00
PQ_OFF = 0b01
PQ_PENDING = 0b10
PQ_QUEUED = 0b11

# -- XICS source status bits (hw/intc/xics.c) -------------------------------------------------
XICS_STATUS_ASSERTED = 0x1
XICS_STATUS_SENT = 0x2
XICS_STATUS_REJECTED = 0x4
XICS_STATUS_MASKED_PENDING = 0x8

# -- CAS: option vector 5, byte 23 ------------------------------------------------------------
OV5_BYTE23_LEGACY = 0x00
OV5_BYTE23_EXPLOIT = 0x40
OV5_BYTE23_EITHER = 0x80


class IcMode(str, Enum):
    """The ``ic-mode`` machine property."""

    XICS = "xics"
    XIVE = "xive"
    DUAL = "dual"


class IrqMode(str, Enum):
    """The interrupt mode a controller runs in (what ``info pic`` shows)."""

    XICS = "xics"
    XIVE = "xive"


class Controller(str, Enum):
    """Where the active controller lives."""

    EMULATED = "emulated"
    KVM = "kvm"


class IrqType(Enum):
    """A vCPU's presenter type (``vcpu->arch.irq_type``)."""

    DEFAULT = "default"
    XICS = "xics"
    XIVE = "xive"


class DeviceKind(str, Enum):
    """The two KVM interrupt devices that share the per-VM slot array of seed 000."""

    XICS_ON_XIVE = "xics-on-xive"
    XIVE_NATIVE = "xive-native"

    @property
    def dev_type(self) -> int:
        return KVM_DEV_TYPE_XIVE if self is DeviceKind.XIVE_NATIVE else KVM_DEV_TYPE_XICS

    @property
    def irq_type(self) -> IrqType:
        return IrqType.XIVE if self is DeviceKind.XIVE_NATIVE else IrqType.XICS

    @classmethod
    def from_type(cls, dev_type: int) -> DeviceKind:
        """Map a ``KVM_DEV_TYPE_*`` number; the slot rule is *native iff type == XIVE*."""
        return cls.XIVE_NATIVE if dev_type == KVM_DEV_TYPE_XIVE else cls.XICS_ON_XIVE


class SlotState(str, Enum):
    """One cached device slot of a VM (semantics.md §1.7)."""

    UNALLOCATED = "unallocated"
    CACHED_IDLE = "cached-idle"
    ACTIVE = "active"


def slot_index(dev_type: int) -> int:
    """Index into ``kvm->arch.xive_devices[2]``: 1 for the native XIVE device, else 0.

    Seed 000 v5 carried, in one copy, ``bool xive_native_index = type = KVM_DEV_TYPE_XIVE;``
    (an assignment), which always picks the native slot. This is the comparison.
    """
    return 1 if dev_type == KVM_DEV_TYPE_XIVE else 0
