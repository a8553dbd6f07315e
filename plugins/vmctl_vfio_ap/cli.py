"""``vmctl ap``: the host's AP configuration and every vfio_ap mdev, as the kernel shows them.

Imported when the CLI lists its command groups (typer is loaded then anyway); the AP model
only when ``vmctl ap show`` runs.
"""

from typing import Any

import typer

from vmctl.api import SYSFS_ROOT, CliCommand, TextJson


def cli_commands() -> list[CliCommand]:
    """``vmctl_cli_commands``: the ``vmctl ap`` group."""
    return [CliCommand("ap", "s390 AP crypto passthrough: host AP masks, queues and vfio_ap mdevs",
                       "vmctl_vfio_ap.cli:ap_app")]


ap_app = typer.Typer(help="s390 AP crypto passthrough: the host's AP masks, queues and vfio_ap mdevs.",
                     no_args_is_help=True, rich_markup_mode=None, add_completion=False)


@ap_app.callback()
def ap() -> None:
    """s390 AP crypto passthrough: the host's AP masks, queues and vfio_ap mdevs."""


@ap_app.command("show")
def show_command(apqn: list[str] = typer.Argument(None, metavar="[APQN]...",
                                                  help="Only these queues (AA.DDDD, hex): who owns each, and why."),
                 sysfs_root: str = SYSFS_ROOT,
                 fmt: TextJson = typer.Option(TextJson.text, "--format",
                                              help="text for people, json for programs.")) -> None:
    """The AP masks, adapters, queues with their drivers, and each mdev's matrix in the kernel's format."""
    show(apqn, sysfs_root, fmt)


def show(apqn: list[str] | None, sysfs_root: str, fmt: Any) -> None:
    """``vmctl ap show``: the whole host, or who owns each of the ``apqn`` queues."""
    from vmctl.api import Sysfs, VmctlError, echo, emit_json

    from .host import read_host

    sysfs = Sysfs(sysfs_root)
    host = read_host(sysfs)
    if apqn:
        if not host.present:
            raise VmctlError(f"no AP bus under {sysfs.root} (/sys/bus/ap is missing)",
                             "AP crypto adapters exist on IBM Z hosts only; pass --sysfs-root for a fake tree")
        found = [owner(host, _parse_apqn(text, host)) for text in apqn]
        if fmt is TextJson.json:
            emit_json(found)
        else:
            echo("\n".join(f"{f['apqn']}  {f['summary']}" for f in found))
        return
    if fmt is TextJson.json:
        emit_json(host.to_json())
        return
    if not host.present:
        raise VmctlError(f"no AP bus under {sysfs.root} (/sys/bus/ap is missing)",
                         "AP crypto adapters exist on IBM Z hosts only; pass --sysfs-root for a fake tree")
    echo("\n".join(render(host, str(sysfs.root), sysfs.fake)))


def render(host, root: str, fake: bool) -> list[str]:  # host: ApHost
    """The text of ``vmctl ap show``."""
    from .model import masks as M

    lines = [f"AP host under {root}{' (fake tree)' if fake else ''}",
             f"  apmask                 {M.format_mask(host.apmask)}",
             f"  aqmask                 {M.format_mask(host.aqmask)}",
             f"  adapters (QCI)         {M.format_mask(host.config.apm)}",
             f"  usage domains (QCI)    {M.format_mask(host.config.aqm)}",
             f"  control domains (QCI)  {M.format_mask(host.config.adm)}",
             f"  ap_max_adapter_id {host.max_adapter_id}, ap_max_domain_id {host.max_domain_id}"]
    by_card: dict[int, list[str]] = {}
    for q in host.queues:
        state = q.driver or "unbound"
        if q.status:
            state += f", {q.status}"
        by_card.setdefault(q.apid, []).append(f"{q.name} {state}")
    lines.append(f"adapters: {len(host.cards)}, queues: {len(host.queues)}")
    for c in host.cards:
        lines.append(f"  card{c.apid:02x} {c.type_name or '?'} ({c.driver or 'unbound'})")
        lines += [f"    {q}" for q in by_card.get(c.apid, [])]
    if not host.vfio_ap_loaded:
        lines.append("vfio_ap: not loaded (modprobe vfio_ap)")
        return lines
    lines.append(f"vfio_ap-passthrough: {len(host.mdevs)} mdev{'s' if len(host.mdevs) != 1 else ''}, "
                 f"{host.available_instances} available instances")
    for m in host.mdevs:
        lines.append(f"  mdev {m.uuid}{' (in use by a guest)' if m.in_use else ''}")
        for title, text in (
                ("matrix", M.matrix_text(m.apm, m.aqm, host.max_adapter_id, host.max_domain_id)),
                ("guest_matrix", M.matrix_text(m.guest_apm, m.guest_aqm, host.max_adapter_id,
                                               host.max_domain_id)),
                ("control_domains", M.control_domains_text(m.adm, host.max_domain_id))):
            lines.append(f"    {title}:")
            lines += [f"      {line}" for line in text.splitlines()] or ["      (none)"]
    return lines


def _parse_apqn(text: str, host) -> tuple[int, int]:
    """``05.0004`` → (5, 4), checked against the host's maxima (the kernel's ENODEV)."""
    from vmctl.api import VmctlError

    card, dot, dom = text.partition(".")
    try:
        apid, apqi = int(card, 16), int(dom, 16)
        if not dot or not card or not dom:
            raise ValueError
    except ValueError:
        raise VmctlError(f"{text!r} is not an APQN", "write adapter.domain in hex, as the kernel prints "
                         "queues: 05.0004") from None
    if apid > host.max_adapter_id or apqi > host.max_domain_id:
        raise VmctlError(f"APQN {text} is outside this machine (ENODEV): ap_max_adapter_id is "
                         f"{host.max_adapter_id}, ap_max_domain_id {host.max_domain_id}",
                         "vmctl ap show lists the host's adapters and queues")
    return apid, apqi


def owner(host, apqn: tuple[int, int]) -> dict[str, object]:
    """Who has queue ``apqn``: the host's drivers (masks), an mdev, and whether its guest sees it."""
    from .model import masks as M

    apid, apqi = apqn
    name = f"{apid:02x}.{apqi:04x}"
    queue = next((q for q in host.queues if (q.apid, q.apqi) == apqn), None)
    host_owned = host.host_owned(apid, apqi)
    mdev = host.mdev_owning(apid, apqi)
    in_guest = bool(mdev and M.test(mdev.guest_apm, apid) and M.test(mdev.guest_aqm, apqi))
    parts = [f"queue on {queue.driver or 'no driver'}" + (f" ({queue.status})" if queue.status else "")
             if queue else "no queue device (not in the host's AP configuration)",
             "reserved for the host by apmask/aqmask" if host_owned else "free for vfio_ap (apmask/aqmask)"]
    if mdev:
        parts.append(f"assigned to mdev {mdev.uuid}" + ("; the guest sees it" if in_guest else
                                                         "; filtered out of the guest's view"))
    else:
        parts.append("in no mdev")
    return {"apqn": name, "queue": bool(queue), "driver": queue.driver if queue else None,
            "host_owned": host_owned, "mdev": mdev.uuid if mdev else None, "in_guest": in_guest,
            "summary": "; ".join(parts)}
