"""``vmctl vfio show``: IOMMU groups, their devices and drivers, and whether each is viable.

What a passthrough user checks before writing a ``vfio-pci`` device: which group the
device is in, who shares it, and which companions keep it from being given to a VM.
Imported when the CLI lists its command groups (typer is loaded then anyway); the host
reader only when ``vmctl vfio show`` runs.
"""

import typer

from vmctl.api import SYSFS_ROOT, CliCommand, TextJson, echo, emit_json


def cli_commands() -> list[CliCommand]:
    """``vmctl_cli_commands``: the ``vmctl vfio`` group."""
    return [CliCommand("vfio", "VFIO passthrough: IOMMU groups, their devices and drivers, viability",
                       "vmctl_vfio.cli:vfio_app")]


vfio_app = typer.Typer(help="VFIO passthrough: the host's IOMMU groups, their devices and drivers.",
                       no_args_is_help=True, rich_markup_mode=None, add_completion=False)


@vfio_app.callback()
def vfio() -> None:
    """VFIO passthrough: the host's IOMMU groups, their devices and drivers."""


@vfio_app.command("show")
def show(pci_address: list[str] = typer.Argument(None, metavar="[PCI_ADDRESS]...",
                                                 help="Devices whose groups to show (default: every group)."),
         sysfs_root: str = SYSFS_ROOT,
         fmt: TextJson = typer.Option(TextJson.text, "--format",
                                      help="text for people, json for programs.")) -> None:
    """IOMMU groups with each device's driver, and whether the group can be passed through."""
    from vmctl.api import Sysfs, VmctlError

    from .host import parse_pci_address, read_host

    sysfs = Sysfs(sysfs_root)
    host = read_host(sysfs)
    if not host.iommu:
        raise VmctlError(f"no IOMMU groups under {sysfs.root} (/sys/kernel/iommu_groups is empty)",
                         "enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line, "
                         "VT-d/AMD-Vi in firmware); vmctl host check says more")
    groups = sorted(host.groups)
    if pci_address:
        wanted = []
        for text in pci_address:
            try:
                addr = parse_pci_address(text)
            except ValueError as exc:
                raise VmctlError(str(exc), "lspci -D lists the host's addresses") from None
            group = host.group_of(addr)
            if group is None:
                raise VmctlError(f"no PCI device {addr} in an IOMMU group under {sysfs.root}",
                                 "vmctl vfio show (no argument) lists every group and device")
            wanted.append(group)
        groups = sorted(set(wanted))
    rows = [host.viability(g) for g in groups]
    if fmt is TextJson.json:
        emit_json({"root": str(sysfs.root), "iommufd": host.iommufd, "vfio_container": host.vfio_container,
                   "groups": [{"group": v.group, "viable": v.viable, "vfio_node": v.vfio_node,
                               "devices": [{"address": d.address, "id": d.id, "driver": d.driver,
                                            "dma_safe": d.dma_safe} for d in v.devices],
                               "blockers": [d.address for d in v.blockers]} for v in rows]})
        return
    echo(f"host under {sysfs.root}{' (fake tree)' if sysfs.fake else ''}: {len(host.groups)} IOMMU groups, "
         f"/dev/vfio/vfio {'present' if host.vfio_container else 'missing'}, "
         f"/dev/iommu {'present' if host.iommufd else 'missing'}")
    for v in rows:
        state = "viable" if v.viable else f"not viable: {len(v.blockers)} device(s) on a host driver"
        echo(f"group {v.group}: {state}")
        for d in v.devices:
            mark = "  " if d.dma_safe else "! "
            echo(f"  {mark}{d.describe()}")
        if not v.viable:
            echo(f"  hint: vmctl host apply MACHINE --sysfs-root {sysfs_root} binds the whole group to vfio-pci")
