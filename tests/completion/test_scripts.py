"""`vmctl completion SHELL`, the shipped scripts, and how a script finds vmctl's Python."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from tests.completion.conftest import COMPLETIONS, Shells
from vmctl.complete.shells import FILENAMES, SHELLS, script

#: A vmctl whose Python a script cannot see (a wrapper), so it must ask `vmctl __complete`.
WRAPPER = """#!/bin/sh
exec {python} -c '
import sys
from vmctl.cli.main import build_app
from vmctl.cli import completion
app = build_app()
if not any(c.name == "completion" for c in app.registered_commands):
    completion.register(app)
app(prog_name="vmctl")
' "$@"
"""

#: pip's launcher when the interpreter path is too long for a #! line.
PIP_LONG_PATH = """#!/bin/sh
'''exec' "{python}" "$0" "$@"
' '''
import sys
from vmctl.cli.main import main
sys.exit(main())
"""


def app():
    from vmctl.cli import completion
    from vmctl.cli.main import build_app

    a = build_app()
    if not any(c.name == "completion" for c in a.registered_commands):
        completion.register(a)
    return a


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_command_prints_the_shipped_script(shell):
    result = CliRunner().invoke(app(), ["completion", shell])
    assert result.exit_code == 0
    assert result.output == (COMPLETIONS / FILENAMES[shell]).read_text() == script(shell)
    assert "Install:" in result.output


def test_completion_command_refuses_other_shells():
    result = CliRunner().invoke(app(), ["completion", "tcsh"])
    assert result.exit_code == 2
    assert "bash" in result.output and "fish" in result.output


def test_hidden_complete_command_answers_like_the_fast_path():
    result = CliRunner().invoke(app(), ["__complete", "bash", "2", "vmctl", "validate", "--b"])
    assert result.exit_code == 0
    assert result.output == "values\n--backend\n"


def _install(shells: Shells, text: str) -> None:
    exe = shells.bin / "vmctl"
    exe.write_text(text.format(python=sys.executable))
    exe.chmod(0o755)


def test_pip_long_path_launcher_is_understood(shells):
    _install(shells, PIP_LONG_PATH)
    assert shells.bash("vmctl", "pl") == ["plan", "plugins"]
    assert [c for c, _ in shells.fish("vmctl pl")] == ["plan", "plugins"]


def test_a_vmctl_without_a_python_line_falls_back_to_the_cli(shells):
    _install(shells, WRAPPER)
    assert shells.bash("vmctl", "validate", "--backend", "") == ["sim", "qemu"]
    assert sorted(c for c, _ in shells.fish("vmctl validate --backend ")) == ["qemu", "sim"]


def test_override_with_vmctl_complete_python(shells):
    _install(shells, "#!/nonexistent/python\n")
    shells.env["VMCTL_COMPLETE_PYTHON"] = sys.executable
    assert shells.bash("vmctl", "ho") == ["host"]
