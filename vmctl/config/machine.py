"""The resolved machine that plugins see.

``Machine`` holds the merged data as written (includes resolved), each key's source, and
the schema, so ``get`` returns defaults for keys the user left out.  It is cheap to build
and JSON round-trips, so a runtime instance can store it and the simulator rebuild it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmctl.config.lines import keystr
from vmctl.config.loader import KeyPath, Source
from vmctl.types import Diagnostic, Severity

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.config.schema import Schema


def parse_key(key: str) -> KeyPath:
    """``"device[1].adapters"`` → ``("device", 1, "adapters")``."""
    out: list[str | int] = []
    for part in key.split("."):
        while "[" in part:
            name, _, rest = part.partition("[")
            idx, closed, tail = rest.partition("]")
            if not (closed and idx.isdigit()):
                break  # a quoted key that holds brackets ("a[x]" = 1): keep it as written
            if name:
                out.append(name)
            out.append(int(idx))
            part = tail
        if part:
            out.append(part)
    return tuple(out)


class Machine:
    """A machine definition after includes, with provenance and schema defaults."""

    def __init__(self, data: dict[str, Any], provenance: dict[KeyPath, Source], path: Path | str,
                 schema: Schema | None = None) -> None:
        self.data = data
        self.provenance = provenance
        self.path = Path(path)
        self.schema = schema

    # -- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.data.get("machine", {}).get("name", ""))

    @property
    def arch(self) -> str:
        return str(self.data.get("machine", {}).get("arch", ""))

    @property
    def file(self) -> str:
        """The top-level file as shown to the user."""
        return self.source(("machine",)).file or str(self.path)

    # -- values ---------------------------------------------------------------------------
    def section(self, name: str) -> dict[str, Any]:
        """A section with defaults applied (an absent section gives all defaults)."""
        raw = self.data.get(name, {})
        defaults = self.schema.defaults(name) if self.schema else {}
        return {**defaults, **raw} if isinstance(raw, dict) else dict(defaults)

    def has_section(self, name: str) -> bool:
        return isinstance(self.data.get(name), dict)

    def get(self, key: str, default: Any = None) -> Any:
        """A value by key path (``"irq.ic-mode"``, ``"device[0].host"``), defaults applied."""
        path = parse_key(key)
        if path and path[0] == "device" and len(path) >= 2:
            devs = self.devices
            idx = path[1]
            if not isinstance(idx, int) or idx >= len(devs):
                return default
            cur: Any = devs[idx]
            rest = path[2:]
        else:
            cur = self.section(str(path[0])) if path else self.data
            rest = path[1:]
        for part in rest:
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
                cur = cur[part]
            else:
                return default
        return cur

    @property
    def devices(self) -> list[dict[str, Any]]:
        """Every ``[[device]]`` entry with its kind's defaults applied, in order."""
        cached = getattr(self, "_devices", None)
        if cached is None:
            out = []
            for dev in self.data.get("device", []) or []:
                if not isinstance(dev, dict):
                    out.append(dev)
                    continue
                defaults = self.schema.device_defaults(dev.get("kind")) if self.schema else {}
                out.append({**defaults, **dev})
            self._devices = cached = out
        return cached

    def devices_of(self, kind: str) -> list[tuple[int, dict[str, Any]]]:
        """``(index, device)`` pairs of one kind; ``index`` is the ``device[N]`` number."""
        return [(i, d) for i, d in enumerate(self.devices) if isinstance(d, dict) and d.get("kind") == kind]

    # -- provenance -----------------------------------------------------------------------
    def source(self, key: str | KeyPath) -> Source:
        """Where ``key`` was written; falls back to its nearest written parent."""
        path = parse_key(key) if isinstance(key, str) else tuple(key)
        while path:
            src = self.provenance.get(path)
            if src is not None:
                return src
            path = path[:-1]
        top = self.provenance.get(("machine",))
        return Source(top.file if top else str(self.path), 0)

    def is_default(self, key: str) -> bool:
        return parse_key(key) not in self.provenance

    def resolve_path(self, key: str) -> Path | None:
        """A path option resolved relative to the file that set it.

        ``guest:ARCH`` (``boot.kernel``/``boot.initrd``) is the cached guest's stable path
        (:func:`vmctl.guest.reference_path`), known before it is fetched; None if ARCH is unknown.
        """
        value = self.get(key)
        if not value or not isinstance(value, str) or "\x00" in value:
            return None  # a NUL is reported by validation; no path can hold one
        if value.startswith("guest:"):
            from vmctl.guest import reference_path

            return reference_path(value, key)
        p = Path(value)
        if p.is_absolute():
            return p
        src = self.source(key)
        base = Path(src.file).parent if src.file else self.path.parent
        try:
            return (base / p).resolve()
        except (OSError, RuntimeError):
            return base / p

    def diagnostic(self, severity: Severity | str, code: str, key: str, message: str,
                   hint: str = "") -> Diagnostic:
        """A diagnostic about ``key``, with file and line from its provenance."""
        src = self.source(key)
        # every diagnostic names a file and a line: line 1 when nothing better is known
        # (a missing section, a key only a default provides)
        return Diagnostic(Severity(severity), code, message, key=key, hint=hint,
                          file=src.file or str(self.path), line=src.line or 1)

    def error(self, code: str, key: str, message: str, hint: str = "") -> Diagnostic:
        return self.diagnostic(Severity.ERROR, code, key, message, hint)

    def warning(self, code: str, key: str, message: str, hint: str = "") -> Diagnostic:
        return self.diagnostic(Severity.WARNING, code, key, message, hint)

    def note(self, code: str, key: str, message: str, hint: str = "") -> Diagnostic:
        return self.diagnostic(Severity.NOTE, code, key, message, hint)

    # -- serialisation --------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "data": self.data,
                "provenance": [[keystr(k), list(k), v.file, v.line] for k, v in self.provenance.items()]}

    @classmethod
    def from_json(cls, obj: dict[str, Any], schema: Schema | None = None) -> Machine:
        prov = {tuple(p[1]): Source(p[2], p[3]) for p in obj.get("provenance", [])}
        return cls(obj["data"], prov, obj.get("path", ""), schema)

    def __repr__(self) -> str:
        return f"<Machine {self.name or '?'} from {self.file}>"
