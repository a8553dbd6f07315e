"""Sources, event queues and presenters of one interrupt controller, with delivery.

A *routing* object is the state a controller keeps once a guest has configured it: which
source goes to which vCPU at which priority, the XIVE event queues (EQs) the guest gave the
hypervisor, and what each vCPU's presenter holds. The same classes serve the in-kernel KVM
device (``kvm.py``) and QEMU's emulated controller (``spapr.py``); ``info_pic.py``
prints them. Every interrupt delivered is counted per source and per vCPU.

Configuration errors raise :class:`~vmctl.model.ModelError` with the errno the native KVM
XIVE device returns (``Documentation/virt/kvm/devices/xive.rst``); QEMU's emulated hcall
layer refuses the same requests with ``H_P2``..``H_P4``.
"""

from __future__ import annotations

from .routing_base import EventQueue, Presenter, RoutingBase, prio_from_guest
from .routing_xics import XicsRouting, XicsSource
from .routing_xive import XiveRouting, XiveSource

Routing = XiveRouting | XicsRouting
"""The routing of whichever controller is active."""

__all__ = ["EventQueue", "Presenter", "Routing", "RoutingBase", "XicsRouting", "XicsSource", "XiveRouting",
           "XiveSource", "prio_from_guest"]
