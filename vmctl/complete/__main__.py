"""``python -m vmctl.complete SHELL CWORD WORD…``: the completion request the shell scripts make.

``SHELL`` is ``bash``, ``zsh`` or ``fish``; ``WORD…`` are the words of the command line
(``vmctl`` first) and ``CWORD`` the index of the one under the cursor (bash's
``COMP_CWORD``; zsh's ``$CURRENT - 1``; fish passes the current token last).  Prints the
directive line, then candidates: ``value<TAB>description`` for zsh and fish, the bare text
bash's readline replaces for bash.  Exit status 0 even when nothing matches.
"""

from __future__ import annotations

import os
import sys


def render(shell: str, words: list[str], cword: int) -> str:
    """The text the shell script reads, for ``words[cword]``."""
    from vmctl.complete.engine import join_breaks, parse
    from vmctl.complete.sources import answer, with_plugin_groups
    from vmctl.complete.table import TABLE

    replaced = None
    if shell == "bash":
        words, cword, replaced = join_breaks(words, cword)
    if cword >= len(words):
        words = [*words, ""]
        cword = len(words) - 1
    table = TABLE
    if cword == 1 or (len(words) > 1 and words[1] not in TABLE["commands"]):
        table = with_plugin_groups(TABLE)  # plugin groups: only when they can matter
    result = answer(parse(table, words, cword))
    lines = [result.directive]
    for value, desc in result.items:
        if replaced is not None:
            lines.append(value[len(words[cword]) - len(replaced):])
        else:
            lines.append(f"{value}\t{desc}" if desc else value)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("bash", "zsh", "fish") or not argv[1].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    if not os.environ.get("VMCTL_DEBUG"):
        sys.stderr = open(os.devnull, "w")  # plugin warnings must not land in the prompt
    sys.stdout.write(render(argv[0], argv[2:], int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
