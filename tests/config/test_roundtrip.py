"""machine → tomli-w → tomllib → the same machine, for any machine the schema allows."""

from __future__ import annotations

import tomllib

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from vmctl.config import load_machine
from vmctl.config.validate import check_machine
from vmctl.diagnostics import has_errors
from vmctl.plugins import get_plugin_manager

_PM = get_plugin_manager()

names = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
ppc = st.fixed_dictionaries({
    "machine": st.fixed_dictionaries({
        "name": names, "arch": st.just("ppc64"), "type": st.just("pseries"),
        "cpu": st.sampled_from(["power9", "power10"]), "cpus": st.integers(1, 8),
        "memory": st.sampled_from(["512M", "1G", "2G"]), "accel": st.sampled_from(["tcg", "auto"])}),
    "irq": st.fixed_dictionaries({"ic-mode": st.sampled_from(["xics", "xive", "dual"])},
                                 optional={"kernel-irqchip": st.sampled_from(["auto", "off"])}),
}, optional={"sim": st.fixed_dictionaries({"seed": st.integers(0, 2**31)})})
s390 = st.fixed_dictionaries({
    "machine": st.fixed_dictionaries({
        "name": names, "arch": st.just("s390x"), "type": st.just("s390-ccw-virtio"), "cpu": st.just("host"),
        "accel": st.just("kvm")}),
    "device": st.lists(st.fixed_dictionaries({
        "kind": st.just("vfio-ap"),
        "adapters": st.lists(st.integers(0, 255), min_size=1, max_size=4, unique=True),
        "domains": st.lists(st.integers(0, 255), min_size=1, max_size=4, unique=True)}), min_size=1, max_size=1),
})


@settings(max_examples=60, deadline=None)
@given(st.one_of(ppc, s390))
def test_round_trip(tmp_path_factory, data):
    vmctl_pm = _PM
    path = tmp_path_factory.mktemp("rt") / "m.toml"
    text = tomli_w.dumps(data)
    path.write_text(text)
    m = load_machine(path, vmctl_pm)
    assert m.data == data == tomllib.loads(text)
    # the schema accepts every generated machine, and a second trip changes nothing
    assert not has_errors(check_machine(m, vmctl_pm, schema_only=True))
    assert tomllib.loads(tomli_w.dumps(m.data)) == m.data
