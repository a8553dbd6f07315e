"""Machine files: reading (tomllib), includes, provenance, schema, writing (tomli-w)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vmctl.config.loader import Loader, MachineError, Source
from vmctl.config.machine import Machine

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

__all__ = ["Loader", "Machine", "MachineError", "Source", "load_machine"]


def load_machine(path: str | Path, pm: pluggy.PluginManager | None = None,
                 loader: Loader | None = None) -> Machine:
    """Load ``path`` with its includes; with ``pm``, defaults come from the plugins' schema.

    Raises :class:`MachineError` (a :class:`~vmctl.errors.VmctlError`) with diagnostics
    for unreadable files, TOML syntax errors and include problems.  Schema and semantic
    checks are separate: :func:`vmctl.validation.check` (or, without QEMU,
    :func:`vmctl.config.validate.check_machine`).
    """
    from vmctl.config.schema import Schema

    path = Path(path)
    data, prov = (loader or Loader()).load(path)
    return Machine(data, prov, path, Schema.from_plugins(pm) if pm is not None else None)
