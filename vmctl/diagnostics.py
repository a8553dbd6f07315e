"""Rendering diagnostics for people (compiler-style) and programs (JSON)."""

from __future__ import annotations

from collections.abc import Iterable

from vmctl.textfmt import safe
from vmctl.types import Diagnostic, Severity


def render_one(d: Diagnostic) -> str:
    """``machines/p9.toml:14: error[irq.ic-mode]: … (spapr-irq: xive-needs-power9)`` + hint.

    Every part is shown with its control characters escaped (``\\x1b``, ``\\n``): a machine
    file, or a file's name, must not be able to drive the user's terminal.
    """
    file, key, message, hint = (safe(x) for x in (d.file, d.key, d.message, d.hint))
    where = f"{file}:{d.line}" if d.line else (file or "vmctl")
    tag = key or d.code
    if d.plugin and d.plugin != "vmctl":
        owner = f" ({d.plugin}: {d.code})"
    else:
        owner = "" if tag == d.code else f" ({d.code})"
    text = f"{where}: {d.severity.value}[{tag}]: {message}{owner}"
    if hint:
        text += f"\n  hint: {hint}"
    return text


def render(diags: Iterable[Diagnostic]) -> str:
    return "\n".join(render_one(d) for d in diags)


def counts(diags: Iterable[Diagnostic]) -> dict[str, int]:
    c = {s.value: 0 for s in Severity}
    for d in diags:
        c[d.severity.value] += 1
    return c


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diags)
