"""``vmctl completion SHELL``: print the shell completion script (bash, zsh or fish).

The scripts are the ones shipped in ``completions/`` (both come from
:mod:`vmctl.complete.shells`).  A TAB runs ``python -m vmctl.complete`` directly, not this
CLI; the hidden ``vmctl __complete`` answers the same requests when a script cannot find
vmctl's interpreter (a frozen ``vmctl``).
"""

from __future__ import annotations

import enum

import typer


class Shell(str, enum.Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(shell: Shell = typer.Argument(..., help="bash, zsh or fish.", show_default=False)) -> None:
    """Print the completion script for SHELL; the script's first lines say how to install it."""
    from vmctl.complete.shells import script

    typer.echo(script(shell.value), nl=False)


def complete_request(
    shell: Shell = typer.Argument(..., show_default=False),
    cword: int = typer.Argument(..., show_default=False),
    words: list[str] = typer.Argument(None, show_default=False),
) -> None:
    """Answer one completion request (what the scripts run when Python cannot be found)."""
    from vmctl.complete.__main__ import render

    typer.echo(render(shell.value, list(words or []), cword), nl=False)


def register(app: typer.Typer) -> None:
    app.command()(completion)
    app.command("__complete", hidden=True, context_settings={"ignore_unknown_options": True,
                                                             "allow_interspersed_args": False})(
        complete_request)
