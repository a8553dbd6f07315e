"""The completion engine on its own: words in, what to complete out (no shell, no plugins)."""

from __future__ import annotations

import pytest

from vmctl.complete.engine import join_breaks, parse
from vmctl.complete.table import TABLE

TREE = {
    "help": "", "arguments": [],
    "options": [{"names": ["--version"], "value": False, "multiple": False, "complete": "",
                 "choices": [], "help": ""}],
    "commands": {
        "grp": {"help": "a group", "options": [], "arguments": [], "commands": {
            "take": {"help": "", "commands": {}, "options": [
                {"names": ["--sysfs-root"], "value": True, "multiple": False, "complete": "dir",
                 "choices": [], "help": ""},
                {"names": ["--tag", "-t"], "value": True, "multiple": True, "complete": "choice",
                 "choices": ["a", "b"], "help": ""},
                {"names": ["--force"], "value": False, "multiple": False, "complete": "",
                 "choices": [], "help": ""}],
                "arguments": [{"name": "apqn", "nargs": 1, "complete": "host:apqn", "choices": []},
                              {"name": "names", "nargs": -1, "complete": "instance", "choices": []}]},
        }},
    },
}


def req(*words: str):
    return parse(TREE, list(words), len(words) - 1)


def test_words_walk_into_groups_and_fill_arguments_in_order():
    assert req("vmctl", "").complete == "command"
    assert req("vmctl", "grp", "").complete == "command"
    first = req("vmctl", "grp", "take", "")
    assert (first.complete, first.path) == ("host:apqn", ("vmctl", "grp", "take"))
    assert req("vmctl", "grp", "take", "05.0004", "").complete == "instance"
    assert req("vmctl", "grp", "take", "05.0004", "a", "b", "").complete == "instance"  # variadic


def test_options_take_their_value_and_are_remembered():
    r = req("vmctl", "grp", "take", "--sysfs-root", "/tmp/fake", "--force", "")
    assert r.complete == "host:apqn" and r.sysfs_root == "/tmp/fake"
    assert {"--sysfs-root", "--force"} <= r.used
    assert req("vmctl", "grp", "take", "--sysfs-root", "").complete == "dir"
    t = req("vmctl", "grp", "take", "-t", "")
    assert (t.complete, t.choices) == ("choice", ("a", "b"))


def test_value_after_equals_keeps_the_option_as_prefix():
    r = req("vmctl", "grp", "take", "--tag=b")
    assert (r.complete, r.prefix, r.incomplete) == ("choice", "--tag=", "b")
    assert req("vmctl", "grp", "take", "--sysfs-root=/x", "").sysfs_root == "/x"


def test_double_dash_ends_options():
    assert req("vmctl", "grp", "take", "--", "-").complete == "host:apqn"
    assert req("vmctl", "grp", "take", "-").complete == "option"


def test_no_completion_past_the_last_fixed_argument():
    tree = {**TREE, "commands": {"one": {"help": "", "options": [], "commands": {},
                                         "arguments": [{"name": "path", "nargs": 1,
                                                        "complete": "machine", "choices": []}]}}}
    assert parse(tree, ["vmctl", "one", "a.toml", ""], 3).complete == ""


@pytest.mark.parametrize("words, cword, expect", [
    (["vmctl", "export", "m.toml", "--format", "=", "li"], 5,
     (["vmctl", "export", "m.toml", "--format=li"], 3, "li")),
    (["vmctl", "export", "m.toml", "--format", "="], 4,
     (["vmctl", "export", "m.toml", "--format="], 3, "")),
    (["vmctl", "demo", "attach", "0000", ":", "03", ":", "0"], 7,
     (["vmctl", "demo", "attach", "0000:03:0"], 3, "0")),
    (["vmctl", "demo", "attach", "0000", ":"], 4, (["vmctl", "demo", "attach", "0000:"], 3, "")),
])
def test_bash_word_breaks_are_glued_back(words, cword, expect):
    assert join_breaks(words, cword) == expect


def test_generated_table_knows_vmctls_own_commands():
    assert {"validate", "show", "plan", "export", "plugins", "host"} <= set(TABLE["commands"])
    validate = parse(TABLE, ["vmctl", "validate", "m.toml", ""], 3)
    assert validate.complete == "machine"  # PATHS... is variadic
    assert parse(TABLE, ["vmctl", "export", "m.toml", "-f", ""], 4).complete == "export-format"
    assert parse(TABLE, ["vmctl", "host", "apply", "--sysfs-root", ""], 4).complete == "dir"
