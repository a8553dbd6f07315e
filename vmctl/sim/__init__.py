"""vmctl's embedded simulator: a machine lifecycle, a seeded guest workload, the plugins'
device models, and a QMP server that speaks like QEMU 7.2.

Layers, each importable alone:

* :mod:`vmctl.sim.qmp` — wire shapes and :class:`~vmctl.sim.qmp.QMPError` (stdlib only)
* :mod:`vmctl.sim.stream` — QEMU-compatible JSON stream splitting
* :mod:`vmctl.sim.lifecycle` — run state × boot phase state machine
* :mod:`vmctl.sim.workload` — guest workloads and boot timings
* :mod:`vmctl.sim.vm` — :class:`~vmctl.sim.vm.SimVM`, what device models see
* :mod:`vmctl.sim.devices` — plugin devices, isolated from each other
* :mod:`vmctl.sim.commands`, :mod:`vmctl.sim.hmp` — QMP and HMP commands
* :mod:`vmctl.sim.session` — one client's protocol state machine
* :mod:`vmctl.sim.build` — everything above, in-process, without sockets
* :mod:`vmctl.sim.server`, :mod:`vmctl.sim.main` — the asyncio server and the process
"""
