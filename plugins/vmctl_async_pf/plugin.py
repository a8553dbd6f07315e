"""Entry point of the async-pf plugin (entry-point group ``vmctl``)."""

from vmctl import hookimpl
from vmctl_async_pf.schema import ASYNC_PF


@hookimpl
def vmctl_sections():
    return [ASYNC_PF]


@hookimpl
def vmctl_validate_machine(machine, ctx):
    from vmctl_async_pf.validate import validate

    return validate(machine, ctx)


@hookimpl
def vmctl_predict(machine, ctx):
    from vmctl_async_pf.prediction import machine_prediction

    return machine_prediction(machine, ctx)


@hookimpl
def vmctl_qemu_args(machine):
    from vmctl_async_pf.qemu import qemu_fragments

    return qemu_fragments(machine)


@hookimpl
def vmctl_sim_devices(machine):
    from vmctl_async_pf.settings import read

    s = read(machine)
    if not s.written or not (s.x86 or s.aarch64):
        return []
    from vmctl_async_pf.sim import AsyncPfDevice

    return [AsyncPfDevice(s)]


@hookimpl
def vmctl_live_probe(machine, backend):
    from vmctl_async_pf.probe import live_probe

    return live_probe(machine, backend)


@hookimpl
def vmctl_tui_panels(machine):
    """The async PF panel for machines with an ``[async-pf]`` table (``vmctl monitor``/``top``)."""
    from vmctl.api import PanelSpec
    from vmctl_async_pf.settings import read

    s = read(machine)
    if not s.written or not (s.x86 or s.aarch64):
        return None
    return [PanelSpec("Async page faults", "vmctl_async_pf.panel:ApfPanel", headline=_apf_headline)]


def _apf_headline(state):
    """``vmctl top``'s column (the panel module, and Textual with it, loads only here)."""
    from vmctl_async_pf.panel import headline

    return headline(state)
