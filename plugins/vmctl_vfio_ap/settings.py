"""The machine's keys this plugin reads: its ``vfio-ap`` device as a typed record, read once.

The mdev UUID is the device's ``uuid`` when given, otherwise derived from the machine name
(UUID version 5 in vmctl's own namespace), so the same machine always asks for the same
mdev and a re-plan finds the mdev it created before.
"""

from __future__ import annotations

import uuid as _uuid
import weakref
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from .model import masks as M
from .model.system import MATRIX

if TYPE_CHECKING:  # pragma: no cover
    from vmctl.api import Machine

KIND = "vfio-ap"
MDEV_NAMESPACE = _uuid.UUID("3c0f8a1e-5b7d-4e0a-9f62-766d6374c0a9")
"""Namespace of derived mdev UUIDs (``uuid5(MDEV_NAMESPACE, machine name)``)."""
CPU_FEATURES = ("ap", "apqci", "apft")
"""s390 CPU facilities a guest needs to see AP devices: AP instructions, QCI, and the
facilities test (``apft=off`` hides every AP device from the guest)."""


@lru_cache(maxsize=4096)
def derived_uuid(machine_name: str) -> str:
    return str(_uuid.uuid5(MDEV_NAMESPACE, machine_name))


@dataclass(frozen=True)
class ApDevice:
    """One ``[[device]] kind = "vfio-ap"`` entry: ``key`` is ``device[N]``."""

    key: str
    adapters: tuple[int, ...]
    domains: tuple[int, ...]
    control_domains: tuple[int, ...]
    uuid: str
    uuid_given: bool
    id: str | None = None

    @cached_property
    def apm(self) -> int:
        return M.from_ids(self.adapters)

    @cached_property
    def aqm(self) -> int:
        return M.from_ids(self.domains)

    @cached_property
    def adm(self) -> int:
        return M.from_ids(self.control_domains)

    @cached_property
    def apqns(self) -> list[tuple[int, int]]:
        """Every APQN the guest is given: adapters × domains, ascending, no duplicates."""
        return [(a, d) for a in sorted(set(self.adapters)) for d in sorted(set(self.domains))]

    @property
    def sysfsdev(self) -> str:
        return f"{MATRIX}/{self.uuid}"


_CACHE: weakref.WeakKeyDictionary[Machine, list[ApDevice]] = weakref.WeakKeyDictionary()


def ap_devices(machine: Machine) -> list[ApDevice]:
    """The machine's vfio-ap devices (the schema allows one), read once per machine object."""
    cached = _CACHE.get(machine)
    if cached is None:
        cached = _CACHE[machine] = _read(machine)
    return cached


def _read(machine: Machine) -> list[ApDevice]:
    out = []
    for i, dev in machine.devices_of(KIND):
        given = dev.get("uuid")
        out.append(ApDevice(
            key=f"device[{i}]",
            adapters=tuple(int(a) for a in dev.get("adapters") or ()),
            domains=tuple(int(d) for d in dev.get("domains") or ()),
            control_domains=tuple(int(c) for c in dev.get("control-domains") or ()),
            uuid=str(given).lower() if given else derived_uuid(machine.name),
            uuid_given=bool(given), id=dev.get("id")))
    return out
