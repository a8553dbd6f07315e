"""The device and /dev/watchdog0 as state machines: timings, errnos, nowayout, magic close."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmctl.api import ModelError
from vmctl_i6300esb.model import (WDIOF_CARDRESET, DevState, Esb6300, Stage, WatchdogDev,
                                  expiry_seconds, stage_seconds)

HEARTBEAT = 30
EXPIRY = expiry_seconds(HEARTBEAT)


def started(nowayout: bool = False, timeout: int = HEARTBEAT) -> WatchdogDev:
    dev = WatchdogDev(Esb6300(), timeout=timeout, nowayout=nowayout)
    dev.open()
    return dev


def test_timing_is_qemus_arithmetic():
    # the driver writes heartbeat << 9; QEMU counts preload << 15 cycles of the 33 MHz clock
    assert stage_seconds(30 << 9) == pytest.approx(15.2520, abs=1e-4)
    assert EXPIRY == pytest.approx(30.5040, abs=1e-4)
    assert expiry_seconds(2046) == pytest.approx(2080.3, abs=0.1)
    assert stage_seconds(0x1FFFFF) == stage_seconds(0xFFFFF)  # 20-bit registers


def test_fires_exactly_one_expiry_after_the_last_ping():
    dev = started()
    assert dev.hw.stage is Stage.FIRST
    assert not dev.hw.advance(EXPIRY / 2 + 0.001)
    assert dev.hw.stage is Stage.SECOND
    assert not dev.hw.advance(EXPIRY / 2 - 0.002)
    assert dev.hw.advance(0.002)
    # QEMU resets the device after performing the action: off and unlocked, flag set
    assert (dev.hw.stage, dev.hw.enabled, dev.hw.previous_reboot) == (Stage.OFF, False, True)


def test_a_ping_in_stage_two_starts_over():
    dev = started()
    dev.hw.advance(EXPIRY * 0.9)
    dev.write("\n")
    assert dev.hw.stage is Stage.FIRST and dev.hw.time_left == pytest.approx(EXPIRY)
    assert not dev.hw.advance(EXPIRY * 0.9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=EXPIRY - 0.01), min_size=1, max_size=40))
def test_a_guest_that_pings_in_time_is_never_reset(gaps):
    dev = started()
    for gap in gaps:
        assert not dev.hw.advance(gap)
        dev.ping()
    assert dev.hw.expiries == 0 and dev.pings == len(gaps)


def test_the_next_boot_sees_the_watchdog_reset():
    hw = Esb6300()
    dev = WatchdogDev(hw, timeout=1, nowayout=False)
    dev.open()
    assert hw.advance(expiry_seconds(1) + 0.01)
    hw.reset()  # the system reset; QEMU keeps the flag across it
    again = WatchdogDev(hw, timeout=1, nowayout=False)
    assert again.bootstatus == WDIOF_CARDRESET
    assert WatchdogDev(hw, timeout=1, nowayout=False).bootstatus == 0  # the driver cleared it


def test_kernel_errnos():
    dev = started()
    with pytest.raises(ModelError) as busy:
        dev.open()
    assert busy.value.errno == errno.EBUSY
    for bad in (0, 2047):
        with pytest.raises(ModelError) as inval:
            dev.set_timeout(bad)
        assert inval.value.errno == errno.EINVAL
    with pytest.raises(ModelError) as nosup:
        dev.get_timeleft()
    assert nosup.value.errno == errno.EOPNOTSUPP
    with pytest.raises(ModelError) as notty:
        dev.ioctl("WDIOC_GETTEMP")
    assert notty.value.errno == errno.ENOTTY
    dev.write("V")
    dev.close()
    with pytest.raises(ModelError) as badf:
        dev.ping()
    assert badf.value.errno == errno.EBADF


def test_magic_close_stops_and_a_plain_close_does_not():
    dev = started()
    dev.write("V")
    assert dev.close() is True and dev.hw.stage is Stage.OFF and not dev.active
    dev.open()
    assert dev.close() is False  # the daemon died: no magic character
    assert dev.log[-1] == "watchdog: watchdog0: watchdog did not stop!"
    assert dev.state is DevState.CLOSED and dev.active
    assert dev.hw.advance(EXPIRY + 0.01)


def test_nowayout_cannot_be_stopped_and_locks_the_device():
    dev = started(nowayout=True)
    assert dev.hw.locked
    with pytest.raises(ModelError) as busy:
        dev.stop()
    assert busy.value.errno == errno.EBUSY
    assert "nowayout prevents watchdog being stopped!" in dev.log[-1]
    dev.write("V")
    assert dev.close() is False
    assert not dev.hw.write_lock(enable=False)  # the hardware ignores it until reset
    assert dev.hw.advance(EXPIRY + 0.01)
    assert not dev.hw.locked  # the expiry reset the device


def test_after_an_expiry_pings_reach_a_switched_off_device():
    dev = started()
    assert dev.hw.advance(EXPIRY + 0.01)
    dev.ping()
    assert dev.hw.stage is Stage.OFF  # QEMU's reload does nothing while disabled
    assert not dev.hw.advance(10 * EXPIRY)


def test_time_cannot_go_backwards():
    with pytest.raises(ModelError) as exc:
        Esb6300().advance(-1)
    assert exc.value.errno == errno.EINVAL
