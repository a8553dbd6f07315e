"""Plugins' device models in the simulator: lifecycle, commands, info, isolation."""

from __future__ import annotations

import errno

import pytest

from vmctl.model import ModelError
from vmctl.sim.qmp import QMPError
from vmctl.types import SimDevice

from .conftest import names, simulate


class Counter(SimDevice):
    """Counts ticks, remembers phases, serves a command and an info page."""

    def attach(self, vm):
        self.vm = vm
        self.phases: list[str] = []
        self.ticks = 0
        self.busy = False

    def on_phase(self, phase):
        self.phases.append(phase)
        if phase == "kernel":
            self.vm.emit("__org.vmctl_COUNTER_READY", {"at": round(self.vm.now(), 3)})

    def tick(self, now, dt):
        self.ticks += 1

    def qmp_commands(self):
        return {"__org.vmctl_counter-grab": self.grab}

    def grab(self, args):
        if self.busy:
            raise ModelError(errno.EBUSY, "counter already grabbed")
        self.busy = True
        return {"ticks": self.ticks}

    def hmp_info(self):
        return {"counter": lambda: f"ticks {self.ticks}\nbusy {self.busy}\n"}

    def state(self):
        return {"ticks": self.ticks, "phases": self.phases}


class Broken(SimDevice):
    def tick(self, now, dt):
        raise RuntimeError("boom")

    def state(self):
        return {"never": True}


def test_devices_follow_the_lifecycle_and_emit_vendor_events():
    dev = Counter()
    sim = simulate(devices=[("counter", [dev])])
    sim.advance(0.2)
    assert dev.phases == ["reset", "firmware", "kernel"]
    assert dev.ticks == 4
    assert ("__org.vmctl_COUNTER_READY", {"at": 0.1}) in sim.events
    sim.execute("stop")
    sim.advance(1)
    assert dev.ticks == 4 and dev.phases[-1] == "stop"


def test_vendor_command_and_model_errno_on_the_wire():
    sim = simulate(devices=[("counter", [Counter()])])
    assert sim.execute("__org.vmctl_counter-grab") == {"ticks": 0}
    with pytest.raises(QMPError) as err:
        sim.execute("__org.vmctl_counter-grab")
    assert (err.value.error_class, err.value.desc) == ("GenericError",
                                                       "EBUSY: counter already grabbed")
    assert "__org.vmctl_counter-grab" in [c["name"] for c in sim.execute("query-commands")]


def test_plugin_info_subcommand_via_hmp_uses_crlf():
    sim = simulate(devices=[("counter", [Counter()])])
    out = sim.execute("human-monitor-command", {"command-line": "info counter"})
    assert out == "ticks 0\r\nbusy False\r\n"
    listing = sim.execute("human-monitor-command", {"command-line": "info"})
    assert "info counter  -- show counter state (plugin counter)" in listing


def test_query_device_and_unknown_plugin():
    sim = simulate(devices=[("counter", [Counter()])])
    assert sim.execute("__org.vmctl_query-device", {"plugin": "counter"})["ticks"] == 0
    with pytest.raises(QMPError) as err:
        sim.execute("__org.vmctl_query-device", {"plugin": "nope"})
    assert err.value.error_class == "DeviceNotFound"
    assert "plugins with devices: counter" in err.value.desc


def test_a_failing_device_is_isolated_and_reported():
    good = Counter()
    sim = simulate(devices=[("broken", [Broken()]), ("counter", [good])])
    sim.advance(0.5)
    assert good.ticks == 10
    plugins = {p["plugin"]: p for p in sim.execute("__org.vmctl_query-plugins")}
    assert plugins["broken"]["status"] == "failed"
    assert "RuntimeError: boom" in plugins["broken"]["error"]
    assert sim.execute("__org.vmctl_query-device", {"plugin": "broken"})["status"] == "failed"
    assert sim.execute("query-status")["status"] == "running"


def test_events_without_vendor_prefix_are_refused():
    sim = simulate(devices=[("counter", [Counter()])])
    with pytest.raises(ValueError, match="__org.vmctl_"):
        sim.vm.emit("XIVE_READY", None)
    sim.vm.emit("DEVICE_DELETED", {"device": "ap0"})
    assert names(sim)[-1] == "DEVICE_DELETED"


class Squatter(SimDevice):
    def qmp_commands(self):
        return {"query-status": lambda a: "mine", "no-prefix": lambda a: 1,
                "__org.vmctl_query-sim": lambda a: 2}

    def hmp_info(self):
        return {"status": lambda: "mine"}


def test_plugins_cannot_take_builtin_or_unprefixed_names():
    lines: list[str] = []
    from vmctl.sim.build import build_simulation

    from .conftest import make_machine
    sim = build_simulation(make_machine(), contributions=[("sq", [Squatter()])],
                           console=lines.append)
    assert sim.execute("query-status")["status"] == "running"
    assert sim.execute("human-monitor-command",
                       {"command-line": "info status"}) == "VM status: running\r\n"
    with pytest.raises(QMPError) as err:
        sim.execute("no-prefix")
    assert err.value.error_class == "CommandNotFound"
    assert sum("ignored" in ln for ln in lines) == 4


def test_hmp_builtins_match_qemu_text():
    sim = simulate(paused=True)
    hmp = lambda line: sim.execute("human-monitor-command", {"command-line": line})  # noqa: E731
    assert hmp("info status") == "VM status: paused (prelaunch)\r\n"
    assert hmp("info cpus").startswith("* CPU #0: thread_id=")
    assert hmp("info name") == "t1\r\n"
    assert hmp("frob") == "unknown command: 'frob'\r\n"
    assert hmp("info nope") == "unknown command: 'info nope'\r\n"
    assert hmp("") == ""
    assert hmp("cont") == "" and hmp("info status") == "VM status: running\r\n"


def test_query_cpus_fast_shape_per_target():
    from .conftest import make_machine
    s390 = simulate(make_machine(arch="s390x", mtype="s390-ccw-virtio"), paused=True)
    cpus = s390.execute("query-cpus-fast")
    assert [c["cpu-state"] for c in cpus] == ["operating", "stopped"]
    assert list(cpus[0]) == ["thread-id", "props", "cpu-state", "qom-path", "cpu-index", "target"]
    ppc = simulate().execute("query-cpus-fast")
    assert ppc[1]["qom-path"] == "/machine/unattached/device[2]/thread[0]"
    assert ppc[1]["props"] == {"core-id": 1, "node-id": 0}
