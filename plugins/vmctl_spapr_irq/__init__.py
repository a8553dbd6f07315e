"""sPAPR interrupt controller plugin: XICS (legacy) and XIVE (native) for pseries guests.

Modules, by concern:

* ``constants``  — KVM/QEMU numbers and the small enums every other module shares;
* ``routing``    — sources, event queues and presenters of one controller (XICS or XIVE),
  with interrupt delivery and counters;
* ``model``      — the host kernel: KVM device lifecycle (create, vCPU connect, release,
  the two cached slots of seed 000);
* ``cas``        — the CAS negotiation and :func:`~vmctl_spapr_irq.cas.predict`;
* ``machine``    — QEMU's side: default controller at reset, in-place switch at CAS;
* ``guest_boot`` — what a Linux guest does with the controller while it boots;
* ``info_pic``   — ``info pic`` text as QEMU 7.2 prints it, and a parser for it.

Nothing here does I/O; importing the package imports nothing else.
"""
