"""The host kernel's side: the KVM XICS-on-XIVE / native XIVE device lifecycle of one VM.

This models Linux ≥ 5.2 as merged (seed 000 and its refinements, semantics.md §1.2–1.4):

* a VM has at most one **active** interrupt device; a second ``KVM_CREATE_DEVICE`` fails
  with EEXIST;
* the device memory lives in one of two **cached slots** (native XIVE, XICS-on-XIVE),
  allocated on first use, **zeroed and reused** by later creates, freed only when the VM is
  destroyed;
* ``NR_SERVERS`` can be set until the first vCPU connects (then EBUSY); 0 or more than
  ``KVM_MAX_VCPU_IDS`` is EINVAL, more than ``KVM_MAX_VCPUS`` is clamped;
* a vCPU connects its presenter with ``KVM_ENABLE_CAP``: EBADF, ENXIO, EPERM, EBUSY,
  EINVAL, ENOSPC, EEXIST in the kernel's order;
* closing the device fd **releases** it: every presenter back to DEFAULT, no active device,
  VP block and sources freed, the slot kept. A host without the release operation
  (``HostKvm(release_op=False)``, Linux < 5.2) keeps the device until the VM dies.

The seed's RFC-era ``kick_all_cpus_sync()`` race is not modelled: calls are serialised.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from vmctl.api import ModelError
from .constants import (
    DEFAULT_KVM_MAX_VCPUS, KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE, KVM_DEV_TYPE_XICS,
    KVM_DEV_TYPE_XIVE, MAX_SMT_THREADS, DeviceKind, IrqType, SlotState, slot_index,
)
from .routing import Routing, XicsRouting, XiveRouting

_BLOCK_OFFSETS = (0, 4, 2, 6, 1, 5, 3, 7)


@dataclass
class HostKvm:
    """What the host kernel offers every VM on it; also the process's fd table.

    ``xive_native``: the host advertises ``KVM_CAP_PPC_IRQ_XIVE`` (POWER9+ bare metal,
    XIVE in native mode, not nested). ``release_op``: closing a device fd releases it
    (Linux ≥ 5.2). ``vp_pool`` is the number of XIVE virtual processors the firmware can
    still hand out in blocks.
    """

    max_vcpus: int = DEFAULT_KVM_MAX_VCPUS
    xive_native: bool = True
    release_op: bool = True
    vp_pool: int = 1 << 15
    _next_fd: int = field(default=10, repr=False)
    _fds: dict[int, KvmDevice] = field(default_factory=dict, repr=False)

    @property
    def max_vcpu_ids(self) -> int:
        return MAX_SMT_THREADS * self.max_vcpus

    def alloc_vp_block(self, nr_servers: int) -> int | None:
        """Take a power-of-two block of VPs for ``nr_servers``; its size, or None if none left."""
        size = 1 << max(0, (nr_servers - 1).bit_length())
        if size > self.vp_pool:
            return None
        self.vp_pool -= size
        return size

    def free_vp_block(self, size: int) -> None:
        self.vp_pool += size

    def open_fd(self, dev: KvmDevice) -> int:
        fd, self._next_fd = self._next_fd, self._next_fd + 1
        self._fds[fd] = dev
        return fd

    def lookup_fd(self, fd: int) -> KvmDevice:
        dev = self._fds.get(fd)
        if dev is None:
            raise ModelError(errno.EBADF, f"fd {fd} is not open")
        return dev

    def close_fd(self, fd: int) -> KvmDevice:
        dev = self._fds.pop(fd, None)
        if dev is None:
            raise ModelError(errno.EBADF, f"fd {fd} is not open")
        return dev


class XiveInstance:
    """One cached slot's memory (``struct kvmppc_xive``); :meth:`zero` is the seed's memset."""

    def __init__(self, kind: DeviceKind) -> None:
        self.kind = kind
        self.zero()

    def zero(self) -> None:
        self.vm: KvmVm | None = None
        self.nr_servers = 0
        self.vp_block = 0
        self.routing: Routing = XiveRouting() if self.kind is DeviceKind.XIVE_NATIVE \
            else XicsRouting(clamp_priorities=True)


@dataclass
class Vcpu:
    """A KVM vCPU as the interrupt code sees it."""

    index: int
    vcpu_id: int
    irq_type: IrqType = IrqType.DEFAULT
    server: int | None = None
    vp_id: int | None = None
    device: KvmDevice | None = None


class KvmDevice:
    """An open XICS-on-XIVE or native XIVE device; ``fd`` is its file descriptor."""

    def __init__(self, vm: KvmVm, kind: DeviceKind, instance: XiveInstance) -> None:
        self.vm = vm
        self.kind = kind
        self.instance = instance
        self.fd = vm.host.open_fd(self)
        self.released = False

    @property
    def routing(self) -> Routing:
        return self.instance.routing

    def set_nr_servers(self, nr_servers: int) -> None:
        """``KVM_DEV_XI{CS,VE}_NR_SERVERS``: EINVAL out of range, EBUSY once a vCPU connected."""
        self.vm._check_alive()
        host = self.vm.host
        if nr_servers <= 0 or nr_servers > host.max_vcpu_ids:
            raise ModelError(errno.EINVAL, f"nr_servers {nr_servers} outside 1..{host.max_vcpu_ids}")
        if self.instance.vp_block:
            raise ModelError(errno.EBUSY, "nr_servers is fixed once a vCPU has connected")
        self.instance.nr_servers = min(nr_servers, host.max_vcpus)

    def get_nr_servers(self) -> int:
        return self.instance.nr_servers

    def close(self) -> None:
        """Close the fd: with the release operation, the device goes (seed 000)."""
        self.vm.close_device(self.fd)


class KvmVm:
    """One VM's interrupt-controller state in the host kernel."""

    def __init__(self, host: HostKvm, name: str = "vm") -> None:
        self.host = host
        self.name = name
        self.vcpus: list[Vcpu] = []
        self.active: KvmDevice | None = None
        self.slots: list[XiveInstance | None] = [None, None]   # [xics_on_xive, native]
        self.destroyed = False
        self.emul_smt_mode = 1
        self.stats = {"creates": 0, "releases": 0, "connects": 0, "connect_errors": {}}

    # -- vCPUs ----------------------------------------------------------------------------
    def create_vcpu(self, vcpu_id: int) -> Vcpu:
        """``KVM_CREATE_VCPU``: EINVAL at or above ``KVM_MAX_VCPU_IDS``, EEXIST for a used id."""
        self._check_alive()
        if not 0 <= vcpu_id < self.host.max_vcpu_ids:
            raise ModelError(errno.EINVAL, f"vCPU id {vcpu_id} >= KVM_MAX_VCPU_IDS "
                             f"({self.host.max_vcpu_ids})")
        if len(self.vcpus) >= self.host.max_vcpus:
            raise ModelError(errno.EINVAL, f"more than KVM_MAX_VCPUS ({self.host.max_vcpus}) vCPUs")
        if any(v.vcpu_id == vcpu_id for v in self.vcpus):
            raise ModelError(errno.EEXIST, f"vCPU id {vcpu_id} already exists")
        vcpu = Vcpu(len(self.vcpus), vcpu_id)
        self.vcpus.append(vcpu)
        return vcpu

    # -- device lifecycle -----------------------------------------------------------------
    def create_device(self, dev_type: int) -> KvmDevice:
        """``KVM_CREATE_DEVICE``: the new device, active at once.

        ENODEV for a type the host does not register (native XIVE without XIVE), EEXIST
        while another interrupt device is active.
        """
        self._check_alive()
        if dev_type not in (KVM_DEV_TYPE_XICS, KVM_DEV_TYPE_XIVE) or \
                (dev_type == KVM_DEV_TYPE_XIVE and not self.host.xive_native):
            raise ModelError(errno.ENODEV, f"device type {dev_type} not supported by this host")
        if self.active is not None:
            raise ModelError(errno.EEXIST, f"{self.active.kind.value} device already active on {self.name}")
        kind = DeviceKind.from_type(dev_type)
        instance = self._slot_instance(dev_type, kind)
        instance.vm = self
        instance.nr_servers = self.host.max_vcpus
        dev = KvmDevice(self, kind, instance)
        self.active = dev
        self.stats["creates"] += 1
        return dev

    def _slot_instance(self, dev_type: int, kind: DeviceKind) -> XiveInstance:
        if not self.host.release_op:
            return XiveInstance(kind)          # pre-5.2: kzalloc every time, no slots
        idx = slot_index(dev_type)
        instance = self.slots[idx]
        if instance is None:
            instance = self.slots[idx] = XiveInstance(kind)
        else:
            instance.zero()
        return instance

    def close_device(self, fd: int) -> None:
        """Close a device fd; on a host with the release operation, release the device."""
        dev = self.host.close_fd(fd)
        if not self.host.release_op or dev.released or self.destroyed:
            return
        for vcpu in self.vcpus:
            if vcpu.device is dev:
                self._disconnect(vcpu)
        if self.active is dev:
            self.active = None
        instance = dev.instance
        if instance.vp_block:
            self.host.free_vp_block(instance.vp_block)
        instance.vp_block = 0
        instance.routing = XiveRouting() if dev.kind is DeviceKind.XIVE_NATIVE else XicsRouting()
        dev.released = True
        self.stats["releases"] += 1

    def destroy(self) -> None:
        """VM teardown: every device freed, both slots freed."""
        if self.destroyed:
            return
        for vcpu in self.vcpus:
            self._disconnect(vcpu)
        for dev in [d for d in self.host._fds.values() if d.vm is self]:
            self.host._fds.pop(dev.fd, None)
            if dev.instance.vp_block:
                self.host.free_vp_block(dev.instance.vp_block)
                dev.instance.vp_block = 0
        self.active = None
        self.slots = [None, None]
        self.destroyed = True

    # -- vCPU presenters --------------------------------------------------------------------
    def enable_cap(self, vcpu_index: int, cap: int, fd: int, server: int) -> None:
        """``KVM_ENABLE_CAP(KVM_CAP_IRQ_XICS | KVM_CAP_PPC_IRQ_XIVE, fd, server)`` on a vCPU.

        Checks in the kernel's order: fd not open → EBADF; XIVE cap on a host without XIVE
        → ENXIO; not an interrupt device of the right kind, or of another VM → EPERM; vCPU
        already connected → EBUSY; server out of range or its VP id ≥ ``nr_servers`` →
        EINVAL; no VP block left → ENOSPC; server already used by another vCPU → EEXIST.
        """
        self._check_alive()
        vcpu = self.vcpus[vcpu_index]
        try:
            dev = self.host.lookup_fd(fd)
            if cap == KVM_CAP_PPC_IRQ_XIVE and not self.host.xive_native:
                raise ModelError(errno.ENXIO, "host XIVE is not enabled")
            want = DeviceKind.XIVE_NATIVE if cap == KVM_CAP_PPC_IRQ_XIVE else DeviceKind.XICS_ON_XIVE
            if cap not in (KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE) or dev.kind is not want:
                raise ModelError(errno.EPERM, f"fd {fd} is not a {want.value} device")
            if dev.vm is not self:
                raise ModelError(errno.EPERM, f"fd {fd} belongs to another VM ({dev.vm.name})")
            self._connect(vcpu, dev, server)
        except ModelError as exc:
            errs = self.stats["connect_errors"]
            errs[exc.errno_name] = errs.get(exc.errno_name, 0) + 1
            raise
        self.stats["connects"] += 1

    def connect(self, vcpu_index: int, dev: KvmDevice, server: int) -> None:
        """Connect a vCPU to ``dev`` with the capability that matches its kind."""
        cap = KVM_CAP_PPC_IRQ_XIVE if dev.kind is DeviceKind.XIVE_NATIVE else KVM_CAP_IRQ_XICS
        self.enable_cap(vcpu_index, cap, dev.fd, server)

    def pack_vcpu_id(self, server: int) -> int:
        """``kvmppc_pack_vcpu_id``: fold a sparse server number below ``KVM_MAX_VCPUS``."""
        max_vcpus = self.host.max_vcpus
        block = (server // max_vcpus) * (MAX_SMT_THREADS // self.emul_smt_mode)
        if block >= MAX_SMT_THREADS:
            return 0
        return (server % max_vcpus) + _BLOCK_OFFSETS[block]

    def _connect(self, vcpu: Vcpu, dev: KvmDevice, server: int) -> None:
        if dev.released or self.active is not dev:
            raise ModelError(errno.EPERM, f"fd {dev.fd} is not the VM's active interrupt device")
        if vcpu.irq_type is not IrqType.DEFAULT:
            raise ModelError(errno.EBUSY, f"vCPU {vcpu.index} already connected "
                             f"({vcpu.irq_type.value}, server {vcpu.server})")
        instance = dev.instance
        if server < 0 or server >= self.host.max_vcpus * self.emul_smt_mode:
            raise ModelError(errno.EINVAL, f"server {server} out of bounds")
        vp_id = self.pack_vcpu_id(server)
        if vp_id >= instance.nr_servers:
            raise ModelError(errno.EINVAL, f"server {server} (VP {vp_id}) >= nr_servers "
                             f"{instance.nr_servers}")
        if not instance.vp_block:
            block = self.host.alloc_vp_block(instance.nr_servers)
            if block is None:
                raise ModelError(errno.ENOSPC, f"no XIVE VP block for {instance.nr_servers} servers "
                                 "(lower -smp maxcpus)")
            instance.vp_block = block
        if any(v.device is dev and v.vp_id == vp_id for v in self.vcpus):
            raise ModelError(errno.EEXIST, f"server {server} already used by another vCPU")
        vcpu.irq_type, vcpu.server, vcpu.vp_id, vcpu.device = dev.kind.irq_type, server, vp_id, dev
        dev.routing.add_presenter(server, vcpu.index, vp_id)

    def _disconnect(self, vcpu: Vcpu) -> None:
        if vcpu.device is not None and vcpu.server is not None:
            vcpu.device.routing.remove_presenter(vcpu.server)
        vcpu.irq_type, vcpu.server, vcpu.vp_id, vcpu.device = IrqType.DEFAULT, None, None, None

    def _check_alive(self) -> None:
        if self.destroyed:
            raise ModelError(errno.EBADF, f"VM {self.name} was destroyed")

    # -- observation ------------------------------------------------------------------------
    def slot_states(self) -> dict[str, SlotState]:
        """``{"xics-on-xive": …, "xive-native": …}``: unallocated, cached-idle or active."""
        out = {}
        for kind in (DeviceKind.XICS_ON_XIVE, DeviceKind.XIVE_NATIVE):
            inst = self.slots[slot_index(kind.dev_type)]
            if inst is None:
                out[kind.value] = SlotState.UNALLOCATED
            elif self.active is not None and self.active.instance is inst:
                out[kind.value] = SlotState.ACTIVE
            else:
                out[kind.value] = SlotState.CACHED_IDLE
        return out

    def snapshot(self) -> dict[str, object]:
        """JSON-ready state for ``vmctl status``."""
        return {
            "active": None if self.active is None else self.active.kind.value,
            "slots": {k: v.value for k, v in self.slot_states().items()},
            "vcpus": [{"index": v.index, "vcpu_id": v.vcpu_id, "irq_type": v.irq_type.value,
                       "server": v.server} for v in self.vcpus],
            "stats": {**self.stats, "connect_errors": dict(self.stats["connect_errors"])},
        }
