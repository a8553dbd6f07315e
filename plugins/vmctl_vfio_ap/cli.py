"""``vmctl ap``: the host's AP configuration and every vfio_ap mdev, as the kernel shows them.

Imported only when ``vmctl ap …`` runs (``vmctl_cli_commands`` names ``ap_app`` by string).
"""

from __future__ import annotations

import typer

from vmctl.cli.common import SYSFS_ROOT, TextJson, echo, emit_json

ap_app = typer.Typer(help="s390 AP crypto passthrough: the host's AP masks, queues and vfio_ap mdevs.",
                     no_args_is_help=True, rich_markup_mode=None, add_completion=False)


@ap_app.callback()
def ap() -> None:
    """s390 AP crypto passthrough: the host's AP masks, queues and vfio_ap mdevs."""


@ap_app.command("show")
def show(sysfs_root: str = SYSFS_ROOT,
         fmt: TextJson = typer.Option(TextJson.text, "--format", help="text for people, json for programs.")) -> None:
    """The AP masks, adapters, queues with their drivers, and each mdev's matrix in the kernel's format."""
    from vmctl.host.sysfs import Sysfs

    from vmctl_vfio_ap.host import read_host

    sysfs = Sysfs(sysfs_root)
    host = read_host(sysfs)
    if fmt is TextJson.json:
        emit_json(host.to_json())
        return
    from vmctl.errors import VmctlError

    if not host.present:
        raise VmctlError(f"no AP bus under {sysfs.root} (/sys/bus/ap is missing)",
                         "AP crypto adapters exist on IBM Z hosts only; pass --sysfs-root for a fake tree")
    echo("\n".join(render(host, str(sysfs.root), sysfs.fake)))


def render(host, root: str, fake: bool) -> list[str]:  # host: ApHost
    """The text of ``vmctl ap show``."""
    from vmctl_vfio_ap import masks as M

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
