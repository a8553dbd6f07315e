"""Golden tests of ``export --format argv`` for each shipped machine (--update-golden rewrites)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import MACHINES, run_vmctl


@pytest.mark.parametrize("name", sorted(p.stem for p in MACHINES.glob("*.toml")))
def test_argv_matches_golden(name, golden):
    out = run_vmctl("export", f"machines/{name}.toml", "--format", "argv", check=True).stdout
    out = out.replace(os.environ["VMCTL_CACHE_DIR"], "$VMCTL_CACHE_DIR")  # guest:ARCH boot files
    golden(f"argv/{name}.json", out)
