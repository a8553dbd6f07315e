"""Hypothesis mutates the shipped machines; validate, show, plan and export keep their promises.

The promises are listed in :mod:`tests.safety.mutations`.  A failure prints the seed:
``scripts/fuzz-machines --seed N --count 1 -v`` replays it.  The long run (2,000+ inputs)
is that script; this test runs a sample in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.safety.mutations import attack, generate


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_mutated_machines_never_break_a_promise(seed: int, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    case = generate(seed, tmp_path)
    monkeypatch.chdir(case.folder)
    broken = attack(case)
    assert not broken, f"seed {seed}: {case.steps}\n" + "\n".join(broken)


@pytest.mark.parametrize("seed", [7, 1234, 99999])
def test_generation_is_reproducible(seed: int, tmp_path: Path):
    a = generate(seed, tmp_path / "a")
    b = generate(seed, tmp_path / "b")
    assert a.steps == b.steps and a.main.name == b.main.name
    if a.main.is_file():
        assert a.main.read_bytes() == b.main.read_bytes()
