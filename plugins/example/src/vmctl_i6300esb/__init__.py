"""vmctl-i6300esb: the Intel 6300ESB watchdog as a vmctl device kind — the example plugin.

A complete third-party plugin in its own package, meant to be copied and renamed.  Each
module does one thing, and each hook in :mod:`.plugin` is a two-line forward to it:

==============  =========================================================================
``schema``      the device kind and its options (drive validation, docs, completion)
``validate``    what vmctl checks beyond the schema, and the prediction ``vmctl plan`` shows
``qemu``        lowering: ``-device i6300esb``, ``-action watchdog=``, guest kernel
                arguments, the libvirt ``<watchdog>`` element (pure functions)
``model``       the device as QEMU emulates it and ``/dev/watchdog`` as Linux serves it:
                explicit states, kernel errnos (:class:`vmctl.model.ModelError`), no I/O
``sim``         the model inside vmctl's simulator: a guest watchdog daemon, the
                ``__org.vmctl_watchdog-guest`` QMP command, the ``WATCHDOG`` event
``live``        reading the live state for ``vmctl status`` on both backends
``panel``       the ``vmctl monitor`` panel (imported only by the TUI)
==============  =========================================================================
"""

__version__ = "0.1.0"
