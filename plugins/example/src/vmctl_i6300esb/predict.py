"""What ``vmctl plan`` predicts for a watchdog: when, and how, a hung guest is caught."""

from __future__ import annotations

from typing import Any

from .model import expiry_seconds, stage_seconds
from .schema import HEARTBEAT_DEFAULT, KIND


def predict(machine: Any, ctx: Any = None) -> dict[str, Any] | None:
    """For ``vmctl plan``: when and how a hung guest is caught."""
    devices = machine.devices_of(KIND)
    if not devices:
        return None
    _, dev = devices[0]
    heartbeat = int(dev.get("heartbeat", HEARTBEAT_DEFAULT))
    action = dev.get("action", "reset")
    return {
        "action": action,
        "heartbeat_s": heartbeat,
        "stage_s": round(stage_seconds(heartbeat << 9), 3),
        "fires_after_s": round(expiry_seconds(heartbeat), 3),
        "guest_can_stop": not dev.get("nowayout", False),
        "reasons": [f"the driver programs {heartbeat} << 9 ticks into both 1 kHz stages "
                    f"({stage_seconds(heartbeat << 9):.3f} s each); a guest silent for "
                    f"{expiry_seconds(heartbeat):.3f} s gets '{action}'"],
    }
