"""Rendering diagnostics for people (compiler-style) and programs (JSON)."""

from __future__ import annotations

from collections.abc import Iterable

from vmctl.types import Diagnostic, Severity


def render_one(d: Diagnostic) -> str:
    """``machines/p9.toml:14: error[irq.ic-mode]: … (spapr-irq: xive-needs-power9)`` + hint."""
    where = f"{d.file}:{d.line}" if d.line else (d.file or "vmctl")
    tag = d.key or d.code
    if d.plugin and d.plugin != "vmctl":
        owner = f" ({d.plugin}: {d.code})"
    else:
        owner = "" if tag == d.code else f" ({d.code})"
    text = f"{where}: {d.severity.value}[{tag}]: {d.message}{owner}"
    if d.hint:
        text += f"\n  hint: {d.hint}"
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
