"""The plugin manager calls hooks through pluggy (firstresult, tryfirst/trylast, wrappers
mean what pluggy says) and still isolates a plugin that raises."""

from __future__ import annotations

import pluggy
import pytest

from vmctl import hookimpl
from vmctl.errors import VmctlError
from vmctl.plugins import GROUP, VmctlPluginManager, get_plugin_manager
from vmctl.types import Option, Section

spec = pluggy.HookspecMarker(GROUP)


class Specs:
    @spec(firstresult=True)
    def vmctl_test_first(self, x: int) -> int | None:
        """firstresult: stops at the first non-None."""

    @spec
    def vmctl_test_all(self, x: int) -> int | None:
        """every result."""


def make(*plugins: tuple[str, object]) -> VmctlPluginManager:
    pm = get_plugin_manager(entry_points=[])
    pm.add_hookspecs(Specs)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm


class Plain:
    def __init__(self, value: int | None) -> None:
        self.value = value

    @hookimpl
    def vmctl_test_first(self, x: int) -> int | None:
        return None if self.value is None else self.value + x

    @hookimpl
    def vmctl_test_all(self, x: int) -> int | None:
        return None if self.value is None else self.value + x


class First:
    @hookimpl(tryfirst=True)
    def vmctl_test_all(self, x: int) -> int:
        return 1000


class Last:
    @hookimpl(trylast=True)
    def vmctl_test_all(self, x: int) -> int:
        return -1000


class Broken:
    calls = 0

    @hookimpl
    def vmctl_test_all(self, x: int) -> int:
        Broken.calls += 1
        raise RuntimeError("boom")


class Refuses:
    @hookimpl
    def vmctl_test_all(self, x: int) -> int:
        raise VmctlError("this host cannot", hint="a deliberate refusal")


class Wrapper:
    @hookimpl(wrapper=True)
    def vmctl_test_all(self, x: int):
        results = yield
        return [*results, "wrapped"]


def test_call_order_is_pluggys_last_registered_first_and_tryfirst_trylast_move():
    pm = make(("a", Plain(1)), ("b", Plain(2)), ("last", Last()), ("first", First()))
    assert [v for _, v in pm.call("vmctl_test_all", x=0)] == [1000, 2, 1, -1000]
    assert [n for n, _ in pm.call("vmctl_test_all", x=0)] == ["first", "b", "a", "last"]


def test_firstresult_stops_at_the_first_non_none():
    pm = make(("a", Plain(1)), ("none", Plain(None)), ("b", Plain(2)))
    assert pm.call("vmctl_test_first", x=10) == [("b", 12)]
    assert pm.hook.vmctl_test_first(x=10).value == 12


def test_a_raising_plugin_is_named_once_left_out_and_the_others_go_on(capsys):
    Broken.calls = 0
    pm = make(("a", Plain(1)), ("bad", Broken()), ("b", Plain(2)))
    assert pm.call("vmctl_test_all", x=0) == [("b", 2), ("a", 1)]
    assert pm.call("vmctl_test_all", x=0) == [("b", 2), ("a", 1)]
    assert Broken.calls == 1
    err = capsys.readouterr().err
    assert err.count("warning: plugin 'bad' raised RuntimeError in vmctl_test_all: boom") == 1
    assert pm.get_plugin("bad") is None
    assert pm.infos.get("bad") is None or pm.infos["bad"].status == "failed"


def test_a_vmctl_error_is_a_refusal_not_a_broken_plugin():
    pm = make(("a", Plain(1)), ("no", Refuses()))
    with pytest.raises(VmctlError, match="this host cannot"):
        pm.call("vmctl_test_all", x=0)
    assert pm.get_plugin("no") is not None


def test_wrappers_see_the_guarded_results():
    pm = make(("a", Plain(1)), ("w", Wrapper()))
    results = pm.hook.vmctl_test_all(x=0)
    assert results[-1] == "wrapped" and results[0].value == 1


def test_records_are_tagged_with_their_plugin():
    class Sections:
        @hookimpl
        def vmctl_sections(self):
            return [Section("demo", "a demo", (Option("level", "int", "a level", default=1),))]

    pm = make(("demo-plugin", Sections()))
    (section,) = pm.call_flat("vmctl_sections")
    assert section.plugin == "demo-plugin"


def test_the_real_manager_is_a_vmctl_plugin_manager():
    pm = get_plugin_manager()
    assert isinstance(pm, VmctlPluginManager)
    assert {"spapr-irq", "vfio", "async-pf", "vfio-ap"} <= set(pm.infos)
