"""``info pic`` for pseries, as QEMU 7.2 prints it, and a parser for it.

QEMU prints only the **active** controller, then ``irqchip: emulated|in-kernel``:

* XICS (``hw/intc/xics.c``): one ``CPU <n> XIRR=<xirr> (<owner>) PP=<pp> MFRR=<mfrr>``
  line per presenter, ``ICS 1000..1fff <ptr>``, then ``  <irq> MSI|LSI <prio> <status>``
  for every claimed source;
* XIVE (``hw/intc/xive.c``, ``spapr_xive.c``): five ``CPU[<nnnn>]:`` lines of thread
  context rings per vCPU, then the ``LISN PQ EISN CPU/PRIO EQ`` table: one line per claimed
  source with its PQ bits, mask, EISN and, when routed, the target, the event queue
  (index/entries, page, generation) and the last six queue entries.

:func:`parse_info_pic` reads real QEMU output (``\\r\\n`` from QMP included) and the
simulator's, which :func:`format_info_pic` writes in the same shape.
"""

from __future__ import annotations

import re
import zlib

from .constants import PRIORITY_MASKED, SPAPR_NR_XIRQS, SPAPR_XIRQ_BASE, Controller
from .routing import Routing, XicsRouting, XiveRouting

_NVT_BASE = 0x400
_TCTX_HEADER = "CPU[{:04x}]:   QW   NSR CPPR IPB LSMFB ACK# INC AGE PIPR  W2"
_RING = "CPU[{cpu:04x}]: {name:>4}    {nsr:02x}   {cppr:02x}  {ipb:02x}    {lsmfb:02x}   {ack:02x}  " \
        "{inc:02x}  {age:02x}   {pipr:02x}  {w2:08x}"
_RING_FIELDS = ("nsr", "cppr", "ipb", "lsmfb", "ack", "inc", "age", "pipr")


def fake_pointer(name: str) -> str:
    """A stable host-pointer-looking value for the ``ICS`` line (QEMU prints an address)."""
    return f"0x{0x55d000000000 | (zlib.crc32(name.encode()) & 0xFFFFFF) << 8 | 0x40:012x}"


def format_info_pic(routing: Routing, controller: Controller | str, name: str = "vm") -> str:
    """The text of ``info pic`` for the active controller ``routing``."""
    lines = _xive_lines(routing) if isinstance(routing, XiveRouting) else _xics_lines(routing, name)
    in_kernel = Controller(controller) is Controller.KVM
    lines.append(f"irqchip: {'in-kernel' if in_kernel else 'emulated'}")
    return "\n".join(lines) + "\n"


def _xics_lines(routing: XicsRouting, name: str) -> list[str]:
    out = []
    for p in sorted(routing.presenters.values(), key=lambda p: p.vcpu):
        xirr = (p.cppr << 24) | p.xirr_irq
        out.append(f"CPU {p.vcpu} XIRR={xirr:08x} ((nil)) PP=ff MFRR={p.mfrr:02x}")
    last = SPAPR_XIRQ_BASE + SPAPR_NR_XIRQS - 1
    out.append(f"ICS {SPAPR_XIRQ_BASE:4x}..{last:4x} {fake_pointer(name)}")
    for irq in sorted(routing.sources):
        if SPAPR_XIRQ_BASE <= irq <= last:
            src = routing.sources[irq]
            out.append(f"  {irq:4x} {'LSI' if src.lsi else 'MSI'} {src.priority:02x} {src.status:02x}")
    return out


def _xive_lines(routing: XiveRouting) -> list[str]:
    out = []
    zero = dict.fromkeys(_RING_FIELDS, 0)
    for p in sorted(routing.presenters.values(), key=lambda p: p.vcpu):
        out.append(_TCTX_HEADER.format(p.vcpu))
        os_ring = {**zero, "cppr": p.cppr, "lsmfb": 0xFF, "ack": 0xFF, "age": 0xFF, "pipr": 0xFF}
        for ring, values, w2 in (("USER", zero, 0), ("OS", os_ring, 0x80000000 | (_NVT_BASE + p.server)),
                                 ("POOL", zero, 0), ("PHYS", {**zero, "pipr": 0xFF}, 0)):
            out.append(_RING.format(cpu=p.vcpu, name=ring, w2=w2, **values))
    out.append("  LISN         PQ    EISN     CPU/PRIO EQ")
    for lisn in sorted(routing.sources):
        src = routing.sources[lisn]
        line = (f"  {lisn:08x} {'LSI' if src.lsi else 'MSI'} {'P' if src.pq & 2 else '-'}"
                f"{'Q' if src.pq & 1 else '-'}  {'M' if src.masked else ' '} {src.eisn:08x} ")
        eq = None if src.masked or src.target is None else src.target.eqs[src.priority]
        if eq is not None:
            window = eq.window()
            entries = " ".join(f"{'^' if i == len(window) - 1 else ''}{v:08x}" for i, v in enumerate(window))
            line += (f"{src.server:3d}/{src.priority:d} {eq.index: 6d}/{eq.entries:5d} @{eq.qaddr:x} "
                     f"^{eq.toggle:d} [ {entries} ]")
        out.append(line)
    return out


# -- parsing ------------------------------------------------------------------------------
_XICS_CPU = re.compile(r"^CPU (\d+) XIRR=([0-9a-f]{8}) \((.*)\) PP=([0-9a-f]{2}) MFRR=([0-9a-f]{2})$")
_ICS = re.compile(r"^ICS\s+([0-9a-f]+)\.\.\s*([0-9a-f]+)\s+(\S+)$")
_ICS_SRC = re.compile(r"^\s+([0-9a-f]+) (MSI|LSI) ([0-9a-f]{2}) ([0-9a-f]{2})$")
_TCTX_HDR = re.compile(r"^CPU\[([0-9a-f]+)\]:\s+QW\s+NSR")
_TCTX_RING = re.compile(r"^CPU\[([0-9a-f]+)\]:\s+(USER|OS|POOL|PHYS)\s+((?:[0-9a-f]{2}\s+){8})([0-9a-f]{8})$")
_LISN_HDR = re.compile(r"^\s+LISN\s+PQ\s+EISN")
_LISN = re.compile(r"^\s+([0-9a-f]{8}) (MSI|LSI) ([-P])([-Q])([A ]) ([M ]) ([0-9a-f]{8}) ?(.*)$")
_EQ = re.compile(r"^\s*(\d+)/(\d+)\s+(\d+)/\s*(\d+) @([0-9a-f]+) \^(\d)(?: \[ (.*?) ?\])?\s*$")
_IRQCHIP = re.compile(r"^irqchip: (emulated|in-kernel)$")


def parse_info_pic(text: str) -> dict[str, object]:
    """Parse ``info pic`` of a pseries machine.

    Returns ``{"mode": "xics"|"xive", "controller": "emulated"|"kvm"|None, "cpus": [...],
    "sources": [...]}`` (plus ``"ics"`` for XICS). XICS sources carry ``irq``, ``type``,
    ``priority``, ``status``, ``masked``; XIVE sources carry ``lisn``, ``type``, ``pq``,
    ``asserted``, ``masked``, ``eisn``, ``server``, ``priority`` and ``eq`` (None when not
    routed). Raises ValueError when the text holds neither controller.
    """
    xics_cpus, xive_cpus, sources_xics, sources_xive = [], {}, [], []
    ics, controller, saw_lisn = None, None, False
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.removeprefix("(qemu) ").rstrip("\n")
        if m := _XICS_CPU.match(line):
            xirr = int(m[2], 16)
            xics_cpus.append({"cpu": int(m[1]), "xirr": xirr, "cppr": xirr >> 24, "xisr": xirr & 0xFFFFFF,
                              "pp": int(m[4], 16), "mfrr": int(m[5], 16)})
        elif m := _ICS.match(line):
            ics = {"first": int(m[1], 16), "last": int(m[2], 16)}
        elif m := _ICS_SRC.match(line):
            prio = int(m[3], 16)
            sources_xics.append({"irq": int(m[1], 16), "type": m[2], "priority": prio,
                                 "status": int(m[4], 16), "masked": prio == PRIORITY_MASKED})
        elif m := _TCTX_HDR.match(line):
            xive_cpus.setdefault(int(m[1], 16), {})
        elif m := _TCTX_RING.match(line):
            values = [int(v, 16) for v in m[3].split()]
            ring = dict(zip(_RING_FIELDS, values)) | {"w2": int(m[4], 16)}
            xive_cpus.setdefault(int(m[1], 16), {})[m[2]] = ring
        elif _LISN_HDR.match(line):
            saw_lisn = True
        elif m := _LISN.match(line):
            sources_xive.append(_lisn(m))
        elif m := _IRQCHIP.match(line.strip()):
            controller = Controller.KVM.value if m[1] == "in-kernel" else Controller.EMULATED.value
    if xive_cpus or saw_lisn:
        cpus = [{"cpu": cpu, "cppr": rings.get("OS", {}).get("cppr"), "rings": rings}
                for cpu, rings in sorted(xive_cpus.items())]
        return {"mode": "xive", "controller": controller, "cpus": cpus, "sources": sources_xive}
    if xics_cpus or ics is not None:
        return {"mode": "xics", "controller": controller, "cpus": xics_cpus, "ics": ics,
                "sources": sources_xics}
    raise ValueError("no XICS or XIVE state in the 'info pic' output")


def _lisn(m: re.Match[str]) -> dict[str, object]:
    src: dict[str, object] = {
        "lisn": int(m[1], 16), "type": m[2], "pq": m[3] + m[4], "asserted": m[5] == "A",
        "masked": m[6] == "M", "eisn": int(m[7], 16), "server": None, "priority": None, "eq": None,
    }
    if eq := _EQ.match(m[8]):
        src["server"], src["priority"] = int(eq[1]), int(eq[2])
        window = [int(v.lstrip("^"), 16) for v in (eq[7] or "").split()]
        src["eq"] = {"index": int(eq[3]), "entries": int(eq[4]), "qaddr": int(eq[5], 16),
                     "generation": int(eq[6]), "window": window}
    return src


def summarize(parsed: dict[str, object]) -> dict[str, object]:
    """The few fields ``vmctl status`` shows: mode, controller, vCPUs, routed/masked sources."""
    sources = parsed["sources"]
    assert isinstance(sources, list)
    return {"mode": parsed["mode"], "controller": parsed["controller"], "cpus": len(parsed["cpus"]),  # type: ignore[arg-type]
            "sources": len(sources), "masked": sum(1 for s in sources if s["masked"])}
