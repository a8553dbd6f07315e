"""The sPAPR interrupt controllers, QEMU's side and the host kernel's; no I/O.

Import from the part you need (this package re-exports nothing):

* ``constants``    — KVM/QEMU numbers and the small enums every other part shares;
* ``routing_base`` — presenters, XIVE event queues, counters and the priority mapper;
  ``routing_xics``, ``routing_xive`` — the two controllers' sources and delivery;
  ``routing`` — the three together, and the ``Routing`` type of whichever is active;
* ``kvm``          — the host kernel: KVM device lifecycle (create, vCPU connect, release,
  the two cached slots of seed 000);
* ``cas``          — the CAS negotiation and :func:`~vmctl_spapr_irq.model.cas.predict`;
* ``spapr``        — QEMU's side: default controller at reset, in-place switch at CAS;
* ``guest``        — what a Linux guest does with the controller while it boots;
* ``info_pic``     — ``info pic`` text as QEMU 7.2 prints it, and a parser for it.
"""
