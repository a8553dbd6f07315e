"""A vfio-pci device fd: region and interrupt indices, SET_IRQS, INTx auto-masking, reset.

Semantics.md §2.5 and ``vfio_pci_core.c`` / ``vfio_pci_intrs.c``:

* regions: BAR0-5 = 0-5, ROM = 6, CONFIG = 7, VGA = 8 (``num_regions`` 9); unimplemented
  BARs report size 0 and no flags; config space is 256 bytes (PCI) or 4096 (PCIe); the VGA
  region is sized only for VGA-class devices; an index past ``num_regions`` → EINVAL.
* interrupts: INTx = 0 (count 1 with an interrupt pin, MASKABLE | AUTOMASKED), MSI = 1,
  MSI-X = 2, ERR = 3 (PCIe only, else EINVAL), REQ = 4.
* at most one of INTx / MSI / MSI-X is enabled; enabling another → EINVAL.
* INTx auto-mask: an assertion masks the line and signals the eventfd once; assertions
  while masked stay pending until UNMASK, which re-signals at once if the line is still
  asserted.
* ``VFIO_DEVICE_RESET`` works only when the device flags say RESET (else EINVAL) and
  does not touch interrupt programming.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from vmctl.api import ModelError

from . import uapi as u


@dataclass(frozen=True)
class PciFunction:
    """What vfio-pci learns from the hardware.

    ``bars`` holds six ``(size, "mem" | "io")`` pairs (size 0: not implemented);
    ``msi`` is the MSI capability's vector count (0: none), ``msix`` the MSI-X table size.
    """

    bars: tuple[tuple[int, str], ...] = ((0x4000, "mem"),) + ((0, "mem"),) * 5
    rom: int = 0
    pcie: bool = True
    vga: bool = False
    intx_pin: bool = True
    msi: int = 1
    msix: int = 0
    msix_bar: int = 0
    reset: bool = True
    dyn_msix: bool = True            #: Linux 6.5+: MSI-X may grow while enabled


@dataclass(frozen=True)
class RegionInfo:
    index: int
    size: int
    flags: int


@dataclass(frozen=True)
class IrqInfo:
    index: int
    count: int
    flags: int


class VfioPciDevice:
    """Interrupt and region state behind one vfio-pci device fd."""

    def __init__(self, address: str, function: PciFunction | None = None) -> None:
        self.address = address
        self.fn = function or PciFunction()
        self.irq_type: int | None = None            #: INTX/MSI/MSIX index enabled, or None
        self.vectors: dict[int, int] = {}           #: vector → signals (enabled vectors)
        self.err_armed = False
        self.req_armed = False
        self.intx_masked = False
        self.intx_line = False                      #: the device asserts INTx
        self.intx_signals = 0
        self.resets = 0

    # -- info ------------------------------------------------------------------------------
    def info(self) -> dict[str, int]:
        """``VFIO_DEVICE_GET_INFO``."""
        flags = u.VFIO_DEVICE_FLAGS_PCI | (u.VFIO_DEVICE_FLAGS_RESET if self.fn.reset else 0)
        return {"flags": flags, "num_regions": u.VFIO_PCI_NUM_REGIONS,
                "num_irqs": u.VFIO_PCI_NUM_IRQS}

    def region_info(self, index: int) -> RegionInfo:
        """``VFIO_DEVICE_GET_REGION_INFO``."""
        rw = u.VFIO_REGION_INFO_FLAG_READ | u.VFIO_REGION_INFO_FLAG_WRITE
        if 0 <= index <= u.VFIO_PCI_BAR5_REGION_INDEX:
            size, kind = self.fn.bars[index]
            if not size:
                return RegionInfo(index, 0, 0)
            flags = rw
            if kind == "mem" and size >= u.PAGE_SIZE:
                flags |= u.VFIO_REGION_INFO_FLAG_MMAP
                if self.fn.msix and index == self.fn.msix_bar:
                    flags |= u.VFIO_REGION_INFO_FLAG_CAPS      # sparse mmap around the table
            return RegionInfo(index, size, flags)
        if index == u.VFIO_PCI_ROM_REGION_INDEX:
            return RegionInfo(index, self.fn.rom,
                              u.VFIO_REGION_INFO_FLAG_READ if self.fn.rom else 0)
        if index == u.VFIO_PCI_CONFIG_REGION_INDEX:
            return RegionInfo(index, 4096 if self.fn.pcie else 256, rw)
        if index == u.VFIO_PCI_VGA_REGION_INDEX:
            return RegionInfo(index, u.VGA_REGION_SIZE if self.fn.vga else 0,
                              rw if self.fn.vga else 0)
        raise ModelError(errno.EINVAL, f"region index {index} >= {u.VFIO_PCI_NUM_REGIONS}")

    def irq_count(self, index: int) -> int:
        return {u.VFIO_PCI_INTX_IRQ_INDEX: 1 if self.fn.intx_pin else 0,
                u.VFIO_PCI_MSI_IRQ_INDEX: self.fn.msi,
                u.VFIO_PCI_MSIX_IRQ_INDEX: self.fn.msix,
                u.VFIO_PCI_ERR_IRQ_INDEX: 1 if self.fn.pcie else 0,
                u.VFIO_PCI_REQ_IRQ_INDEX: 1}[index]

    def irq_info(self, index: int) -> IrqInfo:
        """``VFIO_DEVICE_GET_IRQ_INFO``."""
        if index == u.VFIO_PCI_ERR_IRQ_INDEX and not self.fn.pcie:
            raise ModelError(errno.EINVAL, "ERR interrupt index exists only for PCIe devices")
        if not 0 <= index < u.VFIO_PCI_NUM_IRQS:
            raise ModelError(errno.EINVAL, f"irq index {index} >= {u.VFIO_PCI_NUM_IRQS}")
        flags = u.VFIO_IRQ_INFO_EVENTFD
        if index == u.VFIO_PCI_INTX_IRQ_INDEX:
            flags |= u.VFIO_IRQ_INFO_MASKABLE | u.VFIO_IRQ_INFO_AUTOMASKED
        elif index != u.VFIO_PCI_MSIX_IRQ_INDEX or not self.fn.dyn_msix:
            flags |= u.VFIO_IRQ_INFO_NORESIZE
        return IrqInfo(index, self.irq_count(index), flags)

    # -- SET_IRQS ----------------------------------------------------------------------------
    def set_irqs(self, index: int, flags: int, start: int = 0, count: int = 0,
                 fds: tuple[int, ...] = ()) -> None:
        """``VFIO_DEVICE_SET_IRQS``; ``fds`` are eventfds (−1 de-assigns one vector)."""
        data = flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK
        action = flags & u.VFIO_IRQ_SET_ACTION_TYPE_MASK
        if (flags & ~(u.VFIO_IRQ_SET_DATA_TYPE_MASK | u.VFIO_IRQ_SET_ACTION_TYPE_MASK)
                or bin(data).count("1") != 1 or bin(action).count("1") != 1):
            raise ModelError(errno.EINVAL, "SET_IRQS: exactly one data type and one action")
        if not 0 <= index < u.VFIO_PCI_NUM_IRQS:
            raise ModelError(errno.EINVAL, f"SET_IRQS: irq index {index} out of range")
        if start < 0 or count < 0 or (count and start + count > self.irq_count(index)):
            raise ModelError(errno.EINVAL, f"SET_IRQS: start {start} + count {count} > "
                                           f"{self.irq_count(index)}")
        if data == u.VFIO_IRQ_SET_DATA_EVENTFD and len(fds) != count:
            raise ModelError(errno.EINVAL, "SET_IRQS: one eventfd per vector")
        if index == u.VFIO_PCI_INTX_IRQ_INDEX:
            self._set_intx(action, data, start, count, fds)
        elif index in (u.VFIO_PCI_MSI_IRQ_INDEX, u.VFIO_PCI_MSIX_IRQ_INDEX):
            if action != u.VFIO_IRQ_SET_ACTION_TRIGGER:
                raise ModelError(errno.ENOTTY, "SET_IRQS: MSI/MSI-X support TRIGGER only")
            self._set_msi(index, data, start, count, fds)
        else:
            if action != u.VFIO_IRQ_SET_ACTION_TRIGGER or start != 0 or count > 1:
                raise ModelError(errno.EINVAL, "SET_IRQS: ERR/REQ take one TRIGGER eventfd")
            armed = bool(count) and data == u.VFIO_IRQ_SET_DATA_EVENTFD and fds[0] >= 0
            if index == u.VFIO_PCI_ERR_IRQ_INDEX:
                self.err_armed = armed
            else:
                self.req_armed = armed

    def _set_intx(self, action: int, data: int, start: int, count: int,
                  fds: tuple[int, ...]) -> None:
        intx = u.VFIO_PCI_INTX_IRQ_INDEX
        if action == u.VFIO_IRQ_SET_ACTION_TRIGGER:
            if self.irq_type == intx and not count and data == u.VFIO_IRQ_SET_DATA_NONE:
                self.irq_type, self.intx_masked = None, False       # disable
                return
            if self.irq_type not in (None, intx) or start != 0 or count != 1:
                raise ModelError(errno.EINVAL, "SET_IRQS(INTx): another interrupt type is "
                                               "enabled, or start/count is not 0/1")
            if data == u.VFIO_IRQ_SET_DATA_EVENTFD:
                if fds[0] < 0:
                    self.irq_type, self.intx_masked = None, False
                    return
                if self.irq_type is None:
                    self.irq_type, self.intx_masked = intx, False
                return
            if self.irq_type != intx:
                raise ModelError(errno.EINVAL, "SET_IRQS(INTx): not enabled")
            self.intx_signals += 1                                   # loopback trigger
            return
        if self.irq_type != intx or start != 0 or count != 1:
            raise ModelError(errno.EINVAL, "SET_IRQS(INTx MASK/UNMASK): INTx not enabled")
        if action == u.VFIO_IRQ_SET_ACTION_MASK:
            self.intx_masked = True
        else:
            self.unmask_intx()

    def _set_msi(self, index: int, data: int, start: int, count: int,
                 fds: tuple[int, ...]) -> None:
        if self.irq_type == index and not count and data == u.VFIO_IRQ_SET_DATA_NONE:
            self.irq_type = None
            self.vectors.clear()
            return
        if self.irq_type not in (None, index):
            raise ModelError(errno.EINVAL, f"SET_IRQS({u.IRQ_INDEX_NAMES[index]}): "
                                           f"{u.IRQ_INDEX_NAMES[self.irq_type]} is enabled")
        if data == u.VFIO_IRQ_SET_DATA_EVENTFD:
            if self.irq_type is None:
                if not count:
                    raise ModelError(errno.EINVAL, "SET_IRQS: enabling needs count > 0")
                self.irq_type = index
            for vec, fd in zip(range(start, start + count), fds):
                if fd < 0:
                    self.vectors.pop(vec, None)
                else:
                    self.vectors.setdefault(vec, 0)
            return
        if self.irq_type != index:
            raise ModelError(errno.EINVAL, f"SET_IRQS({u.IRQ_INDEX_NAMES[index]}): not enabled")
        for vec in range(start, start + count):
            if vec in self.vectors:
                self.vectors[vec] += 1

    # -- device side ----------------------------------------------------------------------
    def assert_intx(self) -> bool:
        """The device raises INTx; returns whether the user's eventfd was signalled."""
        self.intx_line = True
        if self.irq_type != u.VFIO_PCI_INTX_IRQ_INDEX or self.intx_masked:
            return False                       # disabled, or pending until UNMASK
        self.intx_masked = True
        self.intx_signals += 1
        return True

    def deassert_intx(self) -> None:
        self.intx_line = False

    def unmask_intx(self) -> bool:
        """UNMASK; a still-asserted line fires again at once (returns True then)."""
        self.intx_masked = False
        if self.intx_line:
            return self.assert_intx()
        return False

    def fire_msi(self, vector: int) -> bool:
        """The device sends MSI/MSI-X ``vector``; True when an eventfd was signalled."""
        if self.irq_type in (u.VFIO_PCI_MSI_IRQ_INDEX, u.VFIO_PCI_MSIX_IRQ_INDEX) \
                and vector in self.vectors:
            self.vectors[vector] += 1
            return True
        return False

    def reset(self) -> None:
        """``VFIO_DEVICE_RESET``."""
        if not self.fn.reset:
            raise ModelError(errno.EINVAL, f"{self.address}: device has no reset method")
        self.resets += 1

    def state(self) -> dict[str, object]:
        return {"irq_type": None if self.irq_type is None else u.IRQ_INDEX_NAMES[self.irq_type],
                "vectors": dict(self.vectors), "intx_masked": self.intx_masked,
                "intx_pending": self.intx_masked and self.intx_line,
                "intx_signals": self.intx_signals, "err_armed": self.err_armed,
                "req_armed": self.req_armed, "resets": self.resets}
