"""The terminal UI: ``vmctl monitor NAME`` (one machine) and ``vmctl top`` (every machine).

Only :mod:`vmctl.cli.tui` imports this package, and only inside the commands, so
``vmctl --help`` never loads Textual or the QMP stack.  Modules, by concern:

* :mod:`~vmctl.tui.snapshot` — what one poll of an instance saw (pure data) and rates
* :mod:`~vmctl.tui.qmpline` — the console's input language: JSON or ``name arg=value``
* :mod:`~vmctl.tui.target` — an instance folder turned into what to poll and show
* :mod:`~vmctl.tui.feed` — the QMP poller over ``qemu.qmp``: events subscribed, state
  polled at a steady rate, one request in flight, reconnects, crash detection
* :mod:`~vmctl.tui.panel` — the base class for plugins' panels (read this to write one)
* :mod:`~vmctl.tui.widgets` — header, vCPU table, event log, console, panel frames
* :mod:`~vmctl.tui.monitor` / :mod:`~vmctl.tui.top` — the two screens and their apps
* :mod:`~vmctl.tui.dialogs` — help and confirmation screens
"""
