"""The exception tree drawn in vmctl/errors.py is the one the code has."""

from __future__ import annotations

import vmctl.errors as errors
from vmctl.config.loader import MachineError
from vmctl.model import ModelError
from vmctl.runtime.client import QMPCommandError, QMPConnectionError
from vmctl.sim.qmp import QMPError
from vmctl.tui.feed import FeedError


def test_the_drawn_tree_matches_the_classes():
    drawn = errors.__doc__ or ""
    for cls, parent in [(errors.UsageError, errors.VmctlError), (MachineError, errors.VmctlError),
                        (QMPCommandError, errors.VmctlError), (QMPConnectionError, errors.VmctlError),
                        (ModelError, OSError), (QMPError, Exception), (FeedError, Exception)]:
        assert issubclass(cls, parent)
        assert f"── {cls.__name__} " in drawn, f"{cls.__name__} is not drawn in vmctl/errors.py"
    assert not issubclass(QMPError, errors.VmctlError)
