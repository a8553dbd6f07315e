"""``vmctl``: the typer application and the one place user errors are caught."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer

from vmctl import __version__
from vmctl.errors import ExitCode, VmctlError

#: Command modules; each has ``register(app)``.  Keep their top-level imports light.
COMMAND_MODULES = ("machines", "plugins_cmd", "host", "run", "console", "guest", "tui",
                   "completion")

HELP = """Configure, validate, plan, run and monitor QEMU machines for POWER, s390 and passthrough.

Machines are TOML files; plugins give their sections and device kinds meaning.
Start with:  vmctl validate machines/   then   vmctl plan machines/p9-dual.toml
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vmctl {__version__}")
        raise typer.Exit()


def build_app(session: Any = None) -> typer.Typer:
    """The typer app; ``session`` (a :class:`~vmctl.cli.common.Session`) is the one the
    invocation will pass as ``obj``, so listing plugin commands builds no second manager."""
    app = typer.Typer(name="vmctl", help=HELP, rich_markup_mode=None, add_completion=False,
                      no_args_is_help=True, pretty_exceptions_enable=False,
                      context_settings={"help_option_names": ["-h", "--help"]})

    @app.callback()
    def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit.")) -> None:
        """vmctl"""

    for name in COMMAND_MODULES:
        importlib.import_module(f"vmctl.cli.{name}").register(app)
    _register_plugin_commands(app, session)
    return app


def _register_plugin_commands(app: typer.Typer, session: Any = None) -> None:
    """Plugin command groups (``vmctl ap …``), forwarded to the plugin's typer app on use."""
    if os.environ.get("_VMCTL_NO_PLUGIN_COMMANDS"):
        return
    from vmctl.cli.plugin_commands import plugin_commands

    taken = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    for spec in plugin_commands(session):
        if spec["name"] in taken:
            print(f"warning: plugin '{spec['plugin']}' command '{spec['name']}' clashes with an existing "
                  "command; it is left out", file=sys.stderr)
            continue
        taken.add(spec["name"])

        def forward(ctx: typer.Context, _spec=spec) -> None:
            mod, _, attr = _spec["factory"].partition(":")
            sub = getattr(importlib.import_module(mod), attr)
            typer.main.get_command(sub).main(args=list(ctx.args), prog_name=f"vmctl {_spec['name']}",
                                             obj=ctx.find_root().obj)

        app.command(spec["name"], help=f"{spec['help']} [plugin {spec['plugin']}]", add_help_option=False,
                    context_settings={"ignore_unknown_options": True, "allow_extra_args": True})(forward)


def main(argv: list[str] | None = None, session: object = None) -> None:
    """Console entry point: run the app; print user errors as ``error:``/``hint:``.

    typer (standalone mode) handles usage errors (exit 2) and ``--help``; a
    :class:`VmctlError` from any command ends here; anything else is a bug and keeps its
    traceback.  ``session`` (a :class:`~vmctl.cli.common.Session`) lets an in-process
    caller reuse one plugin manager across invocations.
    """
    from vmctl.cli.common import Session

    session = session if isinstance(session, Session) else Session()
    try:
        build_app(session)(args=argv, prog_name="vmctl", obj=session)
    except VmctlError as exc:
        _print_error(exc)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(ExitCode.OK)


def _print_error(exc: VmctlError) -> None:
    from vmctl.config.loader import MachineError

    if isinstance(exc, MachineError):
        from vmctl.diagnostics import render

        typer.echo(render(exc.diagnostics), err=True)
        return
    from vmctl.textfmt import safe

    typer.echo(f"error: {safe(exc.message)}", err=True)
    if exc.hint:
        typer.echo(f"hint: {safe(exc.hint)}", err=True)
