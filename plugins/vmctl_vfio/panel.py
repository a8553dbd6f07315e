"""The ``vmctl monitor`` panel: passed-through devices, pinned vs mapped memory, fault rate.

Imported only by the TUI.  One block per device (up to :data:`MAX_DEVICES`): its host
address, IOMMU group, driver and backend; how much guest memory the IOMMU maps and how
much is locked (a pinned container locks it all; the IOPF RFC locks nothing); and, for IOPF
devices on the simulator, a sparkline of I/O page faults per simulated second — the
ramp-up falling as the working set gets mapped.  On QEMU (:attr:`Panel.backend`) the panel
shows where each device sits in the guest (``query-pci``).  Every state key is optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult

from vmctl.api import KeyValue, Panel, RateChart

from .live import state_devices

MAX_DEVICES = 4
PAGE = 4096
MiB = 1 << 20


def bar(part: int, whole: int, width: int = 10) -> str:
    """``▕██████▌   ▏`` for ``part`` of ``whole``."""
    if whole <= 0:
        return ""
    eighths = round(8 * width * min(part, whole) / whole)
    full, rest = divmod(eighths, 8)
    cells = "█" * full + ("" if not rest else " ▏▎▍▌▋▊▉"[rest])
    return "▕" + cells.ljust(width) + "▏"


def memory_line(d: Mapping[str, Any]) -> str:
    guest = int(d.get("guest_pages", 0))
    mapped = int(d.get("mapped_pages", 0))
    locked = int(d.get("locked_pages", 0))
    pct = f" ({100 * mapped // guest}%)" if guest else ""
    line = (f"mapped {mapped * PAGE // MiB} of {guest * PAGE // MiB} MiB{pct} "
            f"{bar(mapped, guest)}  locked {locked * PAGE // MiB} MiB")
    if "iopf" in d:
        line += f" (pinning would lock {guest * PAGE // MiB} MiB)"
    return line


class VfioPanel(Panel):
    """VFIO: each device's group, driver, backend, mapped vs locked memory, fault rate."""

    def compose(self) -> ComposeResult:
        yield KeyValue("memory", id="vfio-memory")
        for i in range(MAX_DEVICES):
            yield KeyValue("device", id=f"vfio-dev-{i}")
            yield KeyValue("iommu", id=f"vfio-mem-{i}")
            yield RateChart("faults", id=f"vfio-rate-{i}")
        yield KeyValue("more", id="vfio-more")

    def on_mount(self) -> None:
        for i in range(MAX_DEVICES):
            for part in ("dev", "mem", "rate"):
                self.query_one(f"#vfio-{part}-{i}").display = False
        self.query_one("#vfio-more").display = False

    def update_state(self, state: Mapping[str, Any]) -> None:
        self.query_one("#vfio-memory", KeyValue).set(
            str(state.get("memory") or state.get("reason") or state.get("status") or "—"))
        devs = state_devices(state)
        for i in range(MAX_DEVICES):
            d = devs[i] if i < len(devs) else None
            self._show_device(i, d)
        more = self.query_one("#vfio-more", KeyValue)
        more.display = len(devs) > MAX_DEVICES
        if more.display:
            more.set(", ".join(str(d.get("id") or d.get("key")) for d in devs[MAX_DEVICES:]))

    def _show_device(self, i: int, d: Mapping[str, Any] | None) -> None:
        line = self.query_one(f"#vfio-dev-{i}", KeyValue)
        mem = self.query_one(f"#vfio-mem-{i}", KeyValue)
        chart = self.query_one(f"#vfio-rate-{i}", RateChart)
        qemu = self.backend == "qemu"                        # query-pci: no memory
        line.display = d is not None
        mem.display = d is not None and not qemu and "guest_pages" in d
        chart.display = d is not None and not qemu and "iopf" in d
        if d is None:
            return
        name = d.get("id") or d.get("key") or "?"
        if qemu:
            where = (f"in guest at {d.get('guest_address')}" if d.get("present")
                     else "not in guest" if d.get("present") is False else "unknown")
            line.set(f"[b]{name}[/b] {d.get('host')} · {d.get('iommu', '?')} · {where}")
            return
        line.set(f"[b]{name}[/b] {d.get('host')} · group {d.get('group', '?')} · "
                 f"{d.get('driver', '?')} · {d.get('iommu', '?')} · {d.get('memory', '?')}")
        if mem.display:
            mem.set(memory_line(d))
        if chart.display:
            history = [float(x) for x in d.get("fault_rate_history") or []]
            if not history and "faults" in d:                # fall back to poll-to-poll
                self.rate(f"faults{i}", float(d["faults"]))
                history = self.history(f"faults{i}")
            chart.show(history, float(d.get("fault_rate", history[-1] if history else 0)))
