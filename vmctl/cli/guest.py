"""``vmctl guest fetch ARCH`` and ``vmctl guest list``: real guests from Debian's archive, cached.

Top-level imports stay to typer: :mod:`vmctl.guest` is imported by each command.
"""

from __future__ import annotations

import typer

from vmctl.cli.common import TextJson, echo, emit_json

guest_app = typer.Typer(help="Real guests (Debian's kernel and a busybox initramfs) for tests and quick boots.",
                        no_args_is_help=True, rich_markup_mode=None)

#: Shown in --help; tests/guest checks it names every recipe in vmctl.guest.GUEST_ARCHES.
ARCH_HELP = "guest architecture: ppc64le or s390x"


@guest_app.command("fetch")
def fetch(arch: str = typer.Argument("ppc64le", help=ARCH_HELP),
          print_path: bool = typer.Option(False, "--print-path", help="print only the kernel path (for scripts)"),
          print_initrd_path: bool = typer.Option(False, "--print-initrd-path",
                                                 help="print only the initramfs path (after the kernel's "
                                                      "with --print-path)"),
          refresh: bool = typer.Option(False, "--refresh", help="download and pack again even when cached"),
          suite: str = typer.Option(None, "--suite", help="Debian suite (default: this machine's, e.g. bookworm)"),
          mirror: str = typer.Option(None, "--mirror", help="Debian mirror URI (default: this machine's)"),
          fmt: TextJson = typer.Option(TextJson.text, "--format", help="text for people, json for programs.")) -> None:
    """Download Debian's kernel and busybox-static for ARCH once and pack an initramfs; print the paths.

    Nothing changes in the system's apt state. The files are kept under
    $XDG_CACHE_HOME/vmctl/guest/ARCH/. A machine file boots them with
    [boot] kernel = "guest:ARCH" and initrd = "guest:ARCH".
    """
    from vmctl import guest

    quiet = print_path or print_initrd_path or fmt is TextJson.json
    g = guest.fetch_guest(arch, refresh=refresh, suite=suite, mirror=mirror,
                          progress=(lambda _m: None) if quiet else (lambda m: echo(m, err=True)))
    if fmt is TextJson.json:
        emit_json(g.to_json())
        return
    if print_path or print_initrd_path:
        if print_path:
            echo(str(g.kernel.path))
        if print_initrd_path:
            echo(str(g.initrd.path))
        return
    k, i = g.kernel, g.initrd
    echo(f"kernel  {k.path}")
    echo(f"        {k.package} {k.version} from {k.source}" + (" (cached)" if k.cached else ""))
    echo(f"initrd  {i.path}")
    echo(f"        {i.package} {i.version}, modules: {', '.join(i.modules) or 'none'}"
         + (" (cached)" if i.cached else ""))
    echo(f'boot it: [boot] kernel = "guest:{arch}" and initrd = "guest:{arch}", '
         f'append = "console={guest.GUEST_ARCHES[arch].console}"')


@guest_app.command("list")
def list_guests(fmt: TextJson = typer.Option(TextJson.text, "--format",
                                             help="text for people, json for programs.")) -> None:
    """The guests vmctl can fetch, the machine arch each boots on, and what is cached."""
    from vmctl import guest

    rows = []
    for name, spec in guest.GUEST_ARCHES.items():
        g = guest.cached_guest(name)
        rows.append({"arch": name, "reference": guest.SCHEME + name, "machine_arch": spec.machine_arch,
                     "console": spec.console, "kernel_package": spec.meta_package,
                     "cached": g is not None and guest.is_ready(name), "dir": str(guest.guest_dir(name)),
                     "kernel": g.kernel.package + " " + g.kernel.version if g else None,
                     "initrd": g.initrd.package + " " + g.initrd.version if g else None})
    if fmt is TextJson.json:
        emit_json(rows)
        return
    for r in rows:
        state = f"cached: {r['kernel']}, {r['initrd']}" if r["cached"] else "not fetched"
        echo(f"{r['reference']:<15} machine.arch {r['machine_arch']:<7} console {r['console']:<9} {state}")
        echo(f"{'':15} {r['dir']}")


def register(app: typer.Typer) -> None:
    app.add_typer(guest_app, name="guest")
