"""Running machines: instance folders, locking, backends (sim, qemu), control over QMP.

* :mod:`~vmctl.runtime.instance` — the instance folder and its files
* :mod:`~vmctl.runtime.inspect` — is it running, crashed, exited? (``ps``/``status``)
* :mod:`~vmctl.runtime.lock` — one winner per name
* :mod:`~vmctl.runtime.sockpath` — QMP socket paths within the 107-byte limit
* :mod:`~vmctl.runtime.supervisor` — the detached parent that records the exit status
* :mod:`~vmctl.runtime.qmpmux` — QEMU's one QMP monitor shared by any number of clients
* :mod:`~vmctl.runtime.consolemux` — who serves the guest console (``vmctl console``), and
  :mod:`~vmctl.runtime.consoleserver` — the console server and its protocol
* :mod:`~vmctl.runtime.launch` — ``run``: prepare, spawn, wait for the QMP greeting
* :mod:`~vmctl.runtime.client` — async QMP helpers (CLI and TUI), over ``qemu.qmp``
* :mod:`~vmctl.runtime.control` — ``status``, ``stop``, ``qmp``

Nothing here is imported by ``vmctl --help``.
"""
