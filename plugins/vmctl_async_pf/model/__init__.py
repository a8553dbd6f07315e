"""The kernel side of async page faults, and a guest running on it; no I/O, no real clock.

* :mod:`.protocol` — the wire protocol: constants, per-architecture rules, the control block;
* :mod:`.kvm` — the host (KVM) half for one vCPU: MSRs / SMCCC, tokens, page-ready queue;
* :mod:`.guest` — the guest kernel half: the waiter table and its entry points;
* :mod:`.workload` — host memory pressure and the guest tasks' seeded fault streams;
* :mod:`.config` — what a model run is configured with (guest, host, workload, costs);
* :mod:`.vcpu` — the guest scheduler's vCPU and task records, states and time buckets;
* :mod:`.machine` — :class:`~.machine.AsyncPfModel`, the event loop joining both halves;
* :mod:`.observe` — read-only views of a running model (counters, per-vCPU state);
* :mod:`.counters` — the counters a run reports and the with/without comparison;
* :mod:`.simulation` — a model and its ``no-kvmapf`` shadow on one clock.

Import from the submodule that defines a name; this package re-exports nothing.
"""
