"""Shared base for plugins' simulation models.

A plugin's model is plain synchronous Python: a state machine whose operations either
succeed or raise :class:`ModelError` carrying the errno the kernel would return.  Models do
no I/O, read no clock and start no threads; time and randomness come in as arguments
(a seeded :class:`random.Random`), so a run is reproducible from its seed.
"""

from __future__ import annotations

import errno as _errno
import os


class ModelError(OSError):
    """An operation refused by a model, with the kernel's errno.

    ``ModelError(errno.EBUSY, "vCPU 3 already connected")`` reads like the kernel's return
    code; ``str()`` gives ``"EBUSY: vCPU 3 already connected"``.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)

    @property
    def errno_name(self) -> str:
        return _errno.errorcode.get(self.errno, str(self.errno))

    def __str__(self) -> str:
        return f"{self.errno_name}: {self.strerror}"

    def to_json(self) -> dict[str, object]:
        return {"errno": self.errno_name, "code": -self.errno, "message": self.strerror,
                "description": os.strerror(self.errno)}
