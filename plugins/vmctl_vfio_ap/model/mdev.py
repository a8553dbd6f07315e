"""One matrix mdev as the vfio_ap driver keeps it (``struct ap_matrix_mdev``).

The record is shared by the guest's filtered view (:mod:`.filter`), the guest-facing
operations (:mod:`.hotplug`) and the matrix device that creates and assigns mdevs
(:mod:`.matrix`); it holds state only, the operations live in those modules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class MdevState(str, enum.Enum):
    DEFINED = "defined"
    """Created, nothing assigned."""
    CONFIGURED = "configured"
    """Something assigned, no guest."""
    IN_USE = "in-use"
    """Opened by a guest (QEMU realised ``-device vfio-ap``)."""


@dataclass
class Mdev:
    """One matrix mdev: its assigned masks, the shadow APCB and the guest using it.

    ``crycb`` is what the guest was last given (``(apm, aqm, adm)``); the pending ``*_add``
    masks hold additions to the host configuration until the AP bus scan completes.
    """

    uuid: str
    apm: int = 0
    aqm: int = 0
    adm: int = 0
    shadow_apm: int = 0
    shadow_aqm: int = 0
    shadow_adm: int = 0
    guest: str | None = None
    open_count: int = 0
    crycb: tuple[int, int, int] = (0, 0, 0)
    apm_add: int = 0
    aqm_add: int = 0
    adm_add: int = 0
    iommu_group: int = 0

    @property
    def state(self) -> MdevState:
        if self.guest is not None:
            return MdevState.IN_USE
        return MdevState.CONFIGURED if (self.apm or self.aqm or self.adm) else MdevState.DEFINED

    def mask(self, what: str) -> int:
        return {"adapter": self.apm, "domain": self.aqm, "control_domain": self.adm}[what]

    def set_mask(self, what: str, value: int) -> None:
        setattr(self, {"adapter": "apm", "domain": "aqm", "control_domain": "adm"}[what], value)

