"""Pure pieces: rates, formatting, the console's input language."""

from __future__ import annotations

import pytest

from vmctl.tui.qmpline import ConsoleSyntaxError, format_reply, parse_line
from vmctl.tui.snapshot import Link, RateMeter, Snapshot, format_count, format_duration, format_rate


def test_rate_meter_gives_per_second_rates_from_rising_counters():
    meter = RateMeter(history=3)
    assert meter.update("irq", 1000, at=10.0) is None          # one sample: no rate yet
    assert meter.update("irq", 1600, at=10.5) == pytest.approx(1200.0)
    assert meter.update("irq", 1600, at=11.0) == 0.0
    assert meter.history("irq") == pytest.approx([1200.0, 0.0])


def test_rate_meter_restarts_after_a_counter_reset_instead_of_going_negative():
    meter = RateMeter()
    meter.update("irq", 5000, at=1.0)
    meter.update("irq", 6000, at=2.0)
    assert meter.update("irq", 10, at=3.0) is None            # machine reset: counters restart
    assert meter.history("irq") == []
    assert meter.update("irq", 110, at=4.0) == pytest.approx(100.0)


def test_rate_meter_ignores_a_repeated_sample_time_and_keeps_a_bounded_history():
    meter = RateMeter(history=2)
    meter.update("x", 0, at=1.0)
    meter.update("x", 10, at=2.0)
    assert meter.update("x", 99, at=2.0) == pytest.approx(10.0)   # same instant: unchanged
    meter.update("x", 30, at=3.0)
    meter.update("x", 60, at=4.0)
    assert meter.history("x") == pytest.approx([20.0, 30.0])


@pytest.mark.parametrize("seconds,text", [(None, "—"), (0, "0s"), (59.9, "59s"), (65, "1m05s"),
                                          (7380, "2h03m"), (353000, "4d02h")])
def test_durations_are_short(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("rate,text", [(None, "—"), (950, "950/s"), (1234, "1.2k/s"),
                                       (3.4e6, "3.4M/s")])
def test_rates_are_scaled(rate, text):
    assert format_rate(rate) == text


def test_counts_have_no_unit():
    assert format_count(12_300) == "12.3k"


def test_snapshot_status_is_the_run_state_only_while_live():
    live = Snapshot("a", "sim", Link.LIVE, 0.0, 100.0, run_state="paused", started=40.0)
    assert (live.status, live.uptime) == ("paused", 60.0)
    crashed = Snapshot("a", "sim", Link.CRASHED, 0.0, 100.0, run_state="running", started=40.0)
    assert (crashed.status, crashed.uptime) == ("crashed", None)


@pytest.mark.parametrize("line,expected", [
    ("query-status", ("query-status", {})),
    ('{"execute": "query-status"}', ("query-status", {})),
    ('{"execute": "human-monitor-command", "arguments": {"command-line": "info pic"}}',
     ("human-monitor-command", {"command-line": "info pic"})),
    ("human-monitor-command command-line='info pic'",
     ("human-monitor-command", {"command-line": "info pic"})),
    ("hmp info pic", ("human-monitor-command", {"command-line": "info pic"})),
    ("__org.vmctl_query-device plugin=spapr-irq",
     ("__org.vmctl_query-device", {"plugin": "spapr-irq"})),
    ("x-cmd n=3 on=true list=[5,6] s='\"7\"' t=\"a b\"", ("x-cmd", {"n": 3, "on": True, "list": [5, 6], "s": "7", "t": "a b"})),
])
def test_console_lines_become_requests(line, expected):
    assert parse_line(line) == expected


@pytest.mark.parametrize("line,message", [
    ("", "empty command"),
    ("{not json", "invalid JSON"),
    ('["query-status"]', "must be an object"),
    ('{"arguments": {}}', "lacks a string member 'execute'"),
    ('{"execute": "stop", "args": {}}', "unexpected member 'args'"),
    ('{"execute": "stop", "arguments": []}', "'arguments' must be an object"),
    ("stop now", "argument 'now' is not name=value"),
    ("stop a=1 a=2", "given twice"),
    ("hmp", "hmp needs a command line"),
    ("'unterminated", "cannot split"),
    ("9lives", "is not a command name"),
])
def test_console_mistakes_are_explained(line, message):
    with pytest.raises(ConsoleSyntaxError, match=message):
        parse_line(line)


def test_replies_print_hmp_text_verbatim_and_the_rest_as_json():
    assert format_reply("VM status: paused\r\n") == "VM status: paused"
    assert format_reply({"status": "running"}) == '{\n  "status": "running"\n}'
