"""``info pic``: the parser on real QEMU 7.2 output, and the simulator printing the same shape.

``data/qemu72-*.txt`` were captured with ``human-monitor-command`` from
``qemu-system-ppc64 -M pseries,x-vof=on,ic-mode=… -smp 4`` booting Debian's 6.1 ppc64le
kernel under TCG (``*-precas`` with ``-S``, ``*-postcas`` after the guest's CAS).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vmctl_spapr_irq.model.guest import boot_guest
from vmctl_spapr_irq.model.info_pic import format_info_pic, parse_info_pic, summarize
from vmctl_spapr_irq.model.spapr import IrqConfig, SpaprIrqMachine

DATA = Path(__file__).parent / "data"


def real(name: str) -> str:
    return (DATA / f"qemu72-{name}.txt").read_bytes().decode()


def test_real_xics_output() -> None:
    text = real("dual-xiveoff-postcas")
    assert "\r\n" in text                                   # QMP returns CRLF
    pic = parse_info_pic(text)
    assert (pic["mode"], pic["controller"]) == ("xics", "emulated")
    assert [c["cpu"] for c in pic["cpus"]] == [0, 1, 2, 3]
    assert pic["cpus"][0] == {"cpu": 0, "xirr": 0xFF000000, "cppr": 0xFF, "xisr": 0, "pp": 0xFF, "mfrr": 0xFF}
    assert pic["ics"] == {"first": 0x1000, "last": 0x1FFF}
    by_irq = {s["irq"]: s for s in pic["sources"]}
    assert by_irq[0x1000] == {"irq": 0x1000, "type": "MSI", "priority": 5, "status": 0, "masked": False}
    assert by_irq[0x1200]["type"] == "LSI" and by_irq[0x1200]["masked"]


def test_real_xive_output_after_cas() -> None:
    pic = parse_info_pic(real("dual-postcas"))
    assert (pic["mode"], pic["controller"]) == ("xive", "emulated")
    assert len(pic["cpus"]) == 4 and {c["cppr"] for c in pic["cpus"]} == {0xFF}
    assert pic["cpus"][1]["rings"]["OS"]["w2"] == 0x80000401
    ipi = pic["sources"][0]
    assert ipi["lisn"] == 0 and ipi["pq"] == "--" and not ipi["masked"]
    assert (ipi["eisn"], ipi["server"], ipi["priority"]) == (0x10, 0, 6)
    assert ipi["eq"]["entries"] == 16384 and ipi["eq"]["qaddr"] == 0x32B0000 and ipi["eq"]["generation"] == 1
    assert ipi["eq"]["window"] == [0x80000010] * 5 + [0]
    masked = {s["lisn"]: s for s in pic["sources"]}[0x1200]
    assert masked["masked"] and masked["pq"] == "-Q" and masked["eq"] is None and masked["type"] == "LSI"


@pytest.mark.parametrize(("name", "mode"), [
    ("dual-precas", "xics"), ("xive-precas", "xive"), ("dual-postcas", "xive"),
    ("dual-xiveoff-postcas", "xics"), ("dual-p8-postcas", "xics"),
])
def test_mode_of_every_captured_case(name: str, mode: str) -> None:
    assert parse_info_pic(real(name))["mode"] == mode


def test_monitor_prompt_and_in_kernel_controller() -> None:
    text = "(qemu) CPU 0 XIRR=00000000 ((nil)) PP=ff MFRR=ff\nICS 1000..1fff 0x1\nirqchip: in-kernel\n"
    assert parse_info_pic(text)["controller"] == "kvm"


def test_text_without_a_controller_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_info_pic("Interrupt controller information not available\n")


def simulated(ic_mode: str, append: str | None, cpu: str = "power9", cpus: int = 4, boot: bool = True) -> str:
    m = SpaprIrqMachine(IrqConfig(ic_mode=ic_mode, cpu=cpu, cpus=cpus), name="p9")
    m.power_on()
    if boot:
        boot_guest(m, append, rng=random.Random(1))
    return format_info_pic(m.routing, m.controller, m.name)


def comparable(pic: dict) -> dict:
    """Everything but host pointers and the guest's queue pages and fill levels."""
    for src in pic["sources"]:
        if src.get("eq"):
            src["eq"] = {"entries": src["eq"]["entries"], "generation": src["eq"]["generation"]}
    pic.pop("ics", None)
    return pic


@pytest.mark.parametrize(("name", "ic_mode", "append", "cpu", "cpus", "boot"), [
    ("dual-precas", "dual", None, "power9", 4, False),
    ("xive-precas", "xive", None, "power9", 4, False),
    ("dual-postcas", "dual", "console=hvc0", "power9", 4, True),
    ("dual-xiveoff-postcas", "dual", "console=hvc0 xive=off", "power9", 4, True),
    ("dual-p8-postcas", "dual", "console=hvc0", "power8", 2, True),
])
def test_simulator_prints_what_qemu_prints(name, ic_mode, append, cpu, cpus, boot) -> None:
    assert comparable(parse_info_pic(simulated(ic_mode, append, cpu, cpus, boot))) == \
        comparable(parse_info_pic(real(name)))


def test_simulated_text_matches_qemu_line_for_line_before_cas() -> None:
    assert simulated("xive", None, boot=False) == real("xive-precas").replace("\r\n", "\n")


def test_summary_for_status() -> None:
    assert summarize(parse_info_pic(real("dual-postcas"))) == {
        "mode": "xive", "controller": "emulated", "cpus": 4, "sources": 12, "masked": 5}
