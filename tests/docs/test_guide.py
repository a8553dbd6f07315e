"""The hand-written docs stay true: links resolve, commands exist with the options shown,
TOML examples are valid machines, the tutorial quotes the example plugin verbatim."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vmctl.complete.clitree import command_tree

DOCS = ROOT / "docs"
EXAMPLE = ROOT / "plugins" / "example"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "reference" not in p.parts or p.name == "json.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(page: Path, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(page.read_text()) if kind == lang]


def test_the_guide_and_tutorial_exist():
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert {"index.md", "guide/install.md", "guide/first-machine.md", "guide/running.md",
            "guide/monitoring.md", "guide/host.md", "plugins/tutorial.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def _commands() -> list[tuple[Path, str]]:
    out = []
    for page in PAGES:
        for body in blocks(page, "sh"):
            for line in body.splitlines():
                line = line.split(" #")[0].strip()
                if line.startswith("vmctl "):
                    out.append((page, line))
    return out


@pytest.fixture(scope="module")
def tree():
    """The CLI, plus `vmctl completion` until the core registers its module (COMMAND_MODULES)."""
    from vmctl.cli.main import COMMAND_MODULES

    root = command_tree()
    if "completion" not in COMMAND_MODULES:
        root["commands"].append({"name": "completion", "path": "vmctl completion", "commands": [],
                                 "options": [], "help_options": ["-h", "--help"]})
    return root


@pytest.mark.parametrize("page, line", _commands(), ids=lambda x: x if isinstance(x, str) else "")
def test_commands_shown_exist_with_their_options(tree, page, line):
    words = shlex.split(line.replace("$(", "").replace(")", ""))[1:]
    node = tree
    for word in words:
        children = {c["name"]: c for c in node["commands"]}
        if word in children:
            node = children[word]
        elif word.startswith("--"):
            names = {n for o in node["options"] for n in o["opts"] + o["secondary"]}
            assert word.split("=")[0] in names | set(node["help_options"]), \
                f"{page.name}: `{line}`: {node['path']} has no option {word}"
        elif word.startswith("-") or not node["commands"]:
            continue
        else:
            pytest.fail(f"{page.name}: `{line}`: {node['path']} has no command {word!r}")
    assert node is not tree, f"{page.name}: `{line}` names no command"


def _machines() -> list[tuple[Path, str]]:
    return [(p, b) for p in PAGES for b in blocks(p, "toml") if "[machine]" in b and "include" not in b]


@pytest.mark.parametrize("page, text", _machines(), ids=lambda x: x.name if isinstance(x, Path) else "")
def test_toml_examples_are_valid_machines(page, text, plugin_from_source, tmp_path):
    from vmctl.config import load_machine
    from vmctl.config.validate import check_machine
    from vmctl.plugins import get_plugin_manager
    from vmctl.types import Severity

    plugin_from_source(EXAMPLE)  # the tutorial's machine uses the example's device kind
    pm = get_plugin_manager()
    path = tmp_path / "doc.toml"
    path.write_text(text)
    errors = [d for d in check_machine(load_machine(path, pm), pm) if d.severity is Severity.ERROR]
    assert errors == [], f"{page.name}: {[d.message for d in errors]}"


def test_tutorial_quotes_are_verbatim():
    page = DOCS / "plugins" / "tutorial.md"
    quoted = 0
    for body in blocks(page, "python") + blocks(page, "toml"):
        first, _, rest = body.partition("\n")
        if not first.startswith("# file: "):
            continue
        source = (EXAMPLE / first.removeprefix("# file: ")).read_text()
        assert rest in source, f"the tutorial's quote of {first[8:]} no longer matches the file"
        quoted += 1
    assert quoted >= 8


def test_tutorial_covers_every_option_and_hook_of_the_example():
    text = (DOCS / "plugins" / "tutorial.md").read_text()
    plugin = (EXAMPLE / "src" / "vmctl_i6300esb" / "plugin.py").read_text()
    hooks = re.findall(r"^def (vmctl_\w+)", plugin, re.M)
    assert len(hooks) == 8
    for hook in hooks:
        assert f"`{hook}" in text or hook.removeprefix("vmctl_") in text, f"tutorial skips {hook}"
    options = re.findall(r'Option\("([\w-]+)"', (EXAMPLE / "src" / "vmctl_i6300esb" / "schema.py").read_text())
    assert options == ["action", "heartbeat", "nowayout", "sim-hang-after"]
    for name in options:
        assert f"`{name}`" in text, f"tutorial does not mention option {name}"
