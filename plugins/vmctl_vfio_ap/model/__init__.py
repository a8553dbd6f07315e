"""The s390 AP host and the vfio_ap driver, modelled with the kernel's errnos and no I/O.

* :mod:`.masks` — 256-bit AP masks, the kernel's number and mask parsers, APQN text;
* :mod:`.locks` — the driver's lock classes, the lock-order checker and the interleaver;
* :mod:`.events` — hot-plug and reset events, counters by trigger, the kernel log;
* :mod:`.apbus` — the AP bus: configuration, cards, queues, apmask/aqmask ownership;
* :mod:`.mdev` — one matrix mdev record: assigned masks, shadow APCB, guest;
* :mod:`.filter` — the guest's view of an mdev, filtered as the kernel filters it;
* :mod:`.hotplug` — open/close, queue probe/remove, host config changes, PQAP(AQIC);
* :mod:`.matrix` — the matrix device: mdev lifecycle and assignment rules;
* :mod:`.system` — the whole host as one model answering kernel paths (``ApSystem``).

Import what you need from the submodule that defines it.
"""
