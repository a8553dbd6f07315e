"""Docs that cannot drift: every hook, command and option is in docs/, generated files are fresh."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from vmctl import docsgen
from vmctl.complete.clitree import command_tree, walk

DOCS = ROOT / "docs"
FIX = "run `python -m vmctl.docsgen` and commit the result"


def page(rel: str) -> str:
    path = DOCS / rel
    assert path.is_file(), f"{path} is missing; {FIX}"
    return path.read_text()


def test_generated_files_are_fresh():
    stale = docsgen.stale()
    assert not stale, f"generated files are out of date: {', '.join(stale)}; {FIX}"


def test_every_hook_is_documented_with_its_real_signature():
    from vmctl import hookspecs

    text = page("reference/hooks.md")
    specs = [fn for name, fn in vars(hookspecs).items() if name.startswith("vmctl_") and callable(fn)]
    assert len(specs) >= 15
    for fn in specs:
        assert f"### `{fn.__name__}`" in text, f"hook {fn.__name__} is not in docs/reference/hooks.md; {FIX}"
        assert f"def {docsgen.signature(fn)}" in text, f"{fn.__name__}'s signature is stale; {FIX}"
    grouped = [fn for _, fns in docsgen.hooks() for fn in fns]
    assert sorted(f.__name__ for f in grouped) == sorted(f.__name__ for f in specs)


def test_every_record_a_hook_returns_is_documented():
    from vmctl import types

    text = page("reference/hooks.md")
    for name in ("Section", "Option", "DeviceKind", "Diagnostic", "ArgFragment", "HostStep",
                 "SimDevice", "LiveProbe", "PanelSpec", "CliCommand"):
        assert f"### `{name}`" in text
    for field in types.Option.__dataclass_fields__:
        assert f"    {field}: " in text


def test_every_command_and_option_is_in_the_cli_reference():
    text = page("reference/cli.md")
    for node in walk(command_tree()):
        assert f"## `{node['path']}`" in text, f"{node['path']} is not in docs/reference/cli.md; {FIX}"
        for opt in node["options"]:
            for name in opt["opts"]:
                assert name in text, f"{node['path']} {name} is not documented; {FIX}"


def test_every_toml_key_is_in_the_toml_reference():
    from vmctl.config.hostschema import HOST_SECTIONS

    text = page("reference/toml.md")
    sections, kinds = docsgen._builtin_contributions()
    assert {s.plugin for s in sections} >= {"spapr-irq", "async-pf"}
    assert {k.name for k in kinds} >= {"vfio-pci", "vfio-ap"}
    for section in [*HOST_SECTIONS, *sections]:
        body = text.split(f"## `[{section.name}]`", 1)
        assert len(body) == 2, f"[{section.name}] is not in docs/reference/toml.md; {FIX}"
        chunk = body[1].split("\n## ", 1)[0]
        for opt in section.options:
            assert f"| `{opt.name}` |" in chunk, f"{section.name}.{opt.name} is not documented; {FIX}"
    for kind in kinds:
        chunk = text.split(f'### `kind = "{kind.name}"`', 1)[1].split("\n### ", 1)[0]
        for opt in kind.options:
            assert f"| `{opt.name}` |" in chunk, f"device kind {kind.name}: {opt.name} undocumented; {FIX}"


def test_generation_is_deterministic():
    assert docsgen.generate() == docsgen.generate()


def test_check_mode_names_stale_files_and_the_fix(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text("")
    assert docsgen.main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "stale: docs/reference/hooks.md" in out and "python -m vmctl.docsgen" in out
    assert docsgen.main(["--root", str(tmp_path)]) == 0
    assert docsgen.main(["--check", "--root", str(tmp_path)]) == 0


@pytest.mark.parametrize("doc, md", [
    ("Example::\n\n    x = 1\n\nafter", "Example:\n\n```python\nx = 1\n```\n\nafter\n"),
    ("See :func:`vmctl.plugins.call` and ``code``.", "See `call` and `code`.\n"),
])
def test_docstrings_become_markdown(doc, md):
    assert re.sub(r"\n{3,}", "\n\n", docsgen.rst_to_md(doc)) == md


def test_every_plugin_api_name_is_in_the_api_reference():
    import vmctl.api as api

    text = page("reference/api.md")
    for name in api.__all__:
        assert f"### `{name}`" in text, f"{name} is not in docs/reference/api.md; {FIX}"
