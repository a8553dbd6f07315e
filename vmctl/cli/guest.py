"""``vmctl guest fetch ARCH``: a real guest kernel from Debian's archive, cached."""

from __future__ import annotations

import typer

from vmctl.cli.common import echo

guest_app = typer.Typer(help="Real guest kernels for tests and quick boots (Debian's packages, cached).",
                        no_args_is_help=True, rich_markup_mode=None)


@guest_app.command("fetch")
def fetch(arch: str = typer.Argument("ppc64le", help="guest architecture (ppc64le)"),
          print_path: bool = typer.Option(False, "--print-path", help="print only the vmlinux path (for scripts)"),
          refresh: bool = typer.Option(False, "--refresh", help="download again even when cached"),
          suite: str = typer.Option(None, "--suite", help="Debian suite (default: this machine's, e.g. bookworm)"),
          mirror: str = typer.Option(None, "--mirror", help="Debian mirror URI (default: this machine's)")) -> None:
    """Download Debian's kernel for ARCH once, without changing the system's apt state; print its path.

    The kernel is kept under $XDG_CACHE_HOME/vmctl/guest/ARCH/. Boot it with
    [boot] kernel = "<path>" (and, on pseries, [pseries] firmware = "vof").
    """
    from vmctl import guest

    kernel = guest.fetch(arch, refresh=refresh, suite=suite, mirror=mirror,
                         progress=(lambda _m: None) if print_path else (lambda m: echo(m, err=True)))
    if print_path:
        echo(str(kernel.path))
        return
    echo(f"{kernel.path}")
    echo(f"  {kernel.package} {kernel.version} from {kernel.source}"
         + (" (cached)" if kernel.cached else ""), err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(guest_app, name="guest")
