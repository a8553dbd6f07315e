"""``vmctl --help`` and machine commands import neither Textual nor the QMP stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import MACHINES, ROOT

PROBE = """
import json, sys
from vmctl.cli.main import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich') or m.startswith('qemu.qmp'))
sys.stderr.write('\\nMODULES=' + json.dumps(heavy) + '\\n')
"""


@pytest.mark.parametrize("args", [["--help"], ["validate", str(MACHINES)], ["plan", str(MACHINES / "p9-dual.toml")],
                                  ["export", str(MACHINES / "s390-crypto.toml"), "--format", "argv"], ["plugins"]])
def test_light_commands_do_not_import_the_tui_or_qmp(args):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    line = [x for x in proc.stderr.splitlines() if x.startswith("MODULES=")][-1]
    heavy = json.loads(line.removeprefix("MODULES="))
    assert heavy == [], f"vmctl {' '.join(args)} imported {heavy}"
