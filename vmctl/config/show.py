"""``vmctl show``: the resolved machine with each value's source."""

from __future__ import annotations

from typing import Any

import tomli_w

from vmctl.config.machine import Machine


def _effective_sections(m: Machine) -> list[str]:
    """Sections that apply to ``m``: written ones, plus defaults of those for its arch."""
    names = [k for k in m.data if k != "device"]
    if m.schema:
        for name, sec in m.schema.sections.items():
            if name not in names and (not sec.arches or m.arch in sec.arches) and m.schema.defaults(name):
                names.append(name)
    return names


def _origin(m: Machine, key: str, owner: str) -> dict[str, Any]:
    if m.is_default(key):
        return {"file": None, "line": None, "default": True, "plugin": owner}
    src = m.source(key)
    return {"file": src.file, "line": src.line, "default": False, "plugin": owner}


def _ordered(values: dict[str, Any], order: list[str]) -> dict[str, Any]:
    known = [k for k in order if k in values]
    return {k: values[k] for k in known + [k for k in values if k not in known]}


def resolved(m: Machine) -> dict[str, Any]:
    """JSON for programs: ``{"machine": {...}, "sources": {"irq.ic-mode": {...}}, "file": …}``.

    Keys follow the schema's order; every value has a source: file and line, or
    ``default`` with the plugin whose schema supplied it.
    """
    data: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    schema = m.schema
    for name in _effective_sections(m):
        sec_schema = schema.sections.get(name) if schema else None
        sec = _ordered(m.section(name), [o.name for o in sec_schema.options] if sec_schema else [])
        owner = (sec_schema.plugin if sec_schema else "") or "vmctl"
        data[name] = sec
        for key in sec:
            sources[f"{name}.{key}"] = _origin(m, f"{name}.{key}", owner)
    devices = m.devices
    if devices:
        data["device"] = []
        for i, dev in enumerate(devices):
            kind = schema.kinds.get(dev.get("kind")) if schema and isinstance(dev, dict) else None
            dev = _ordered(dev, ["kind", "id", *(o.name for o in kind.options)] if kind else ["kind", "id"])
            data["device"].append(dev)
            for key in dev:
                sources[f"device[{i}].{key}"] = _origin(m, f"device[{i}].{key}",
                                                        (kind.plugin if kind else "") or "vmctl")
    return {"machine": data, "sources": sources, "file": m.file}


def _inline(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip()[4:]


def _line(key: str, value: Any, origin: dict[str, Any]) -> str:
    text = f"{key} = {_inline(value)}"
    if origin["default"]:
        note = f"default ({origin['plugin']})"
    else:
        note = f"{origin['file']}:{origin['line']}"
    return f"{text}  # {note}"


def render_toml(m: Machine) -> str:
    """TOML that parses back to the resolved machine; a comment after each value says its source."""
    r = resolved(m)
    out = [f"# {m.name}: resolved from {m.file}; defaults are marked"]
    for name, sec in r["machine"].items():
        if name == "device":
            continue
        out.append("")
        out.append(f"[{_key(name)}]")
        for key, value in sec.items():
            out.append(_line(_key(key), value, r["sources"][f"{name}.{key}"]))
    for i, dev in enumerate(r["machine"].get("device", [])):
        out.append("")
        out.append("[[device]]")
        for key, value in dev.items():
            out.append(_line(_key(key), value, r["sources"][f"device[{i}].{key}"]))
    return "\n".join(out) + "\n"


def _key(name: str) -> str:
    return tomli_w.dumps({name: 0}).split(" = ")[0]
