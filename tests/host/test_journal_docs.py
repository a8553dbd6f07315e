"""Every guarantee docs/guide/host.md states about the journal names tests that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

GUIDE = ROOT / "docs" / "guide" / "host.md"
HERE = Path(__file__).parent


def test_every_guarantee_names_tests_that_exist() -> None:
    text = GUIDE.read_text()
    section = text.split("### What `undo` guarantees", 1)[1].split("\nWhat it does not promise", 1)[0]
    bullets = [b for b in section.split("\n- ")[1:]]
    assert len(bullets) >= 10
    for bullet in bullets:
        proofs = re.findall(r"<!-- proved by: (.*?) -->", bullet)
        assert proofs, f"no 'proved by' for: {bullet[:60]}…"
        for ref in proofs[0].split():
            file, _, name = ref.partition("::")
            tree = ast.parse((HERE / file).read_text())
            names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert name in names, f"{GUIDE.name} cites {ref}, which does not exist"
