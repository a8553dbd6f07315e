"""Format fidelity: masks, APQNs and mdev attributes exactly as the kernel prints and parses them."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmctl.model import ModelError
from vmctl_vfio_ap.model import masks as M

ids_st = st.sets(st.integers(0, 255), max_size=40)


def test_mask_text_is_0x_and_64_hex_digits_with_bit_0_leftmost() -> None:
    assert M.format_mask(M.FULL) == "0x" + "f" * 64
    assert M.format_mask(M.from_ids([0])) == "0x8" + "0" * 63
    assert M.format_mask(M.from_ids([3])) == "0x1" + "0" * 63
    assert M.format_mask(M.from_ids([255])) == "0x" + "0" * 63 + "1"
    assert M.format_mask(M.FULL & ~M.bit(5)) == "0xfb" + "f" * 62


@given(ids_st)
def test_absolute_form_round_trips(ids: set[int]) -> None:
    mask = M.from_ids(ids)
    assert M.parse_mask(M.format_mask(mask), M.FULL) == mask
    assert M.ids(mask) == sorted(ids)


@pytest.mark.parametrize("text, expected", [
    ("0x4", [1]),                 # left-aligned: the first digit is bits 0-3
    ("x4", [1]),                  # the kernel also accepts a bare "x"
    ("4", [1]),                   # and no prefix at all
    ("0xF0\n", [0, 1, 2, 3]),     # a trailing newline (echo) is fine
    ("0x", []),                   # no digits: an empty mask
])
def test_absolute_form_is_hex2bitmap(text: str, expected: list[int]) -> None:
    assert M.ids(M.parse_mask(text, M.FULL)) == expected


@pytest.mark.parametrize("text", ["0x" + "f" * 65, "0xg", "0X4", "0x4 ", "0x4\n\n"])
def test_absolute_form_rejects_what_the_kernel_rejects(text: str) -> None:
    with pytest.raises(ModelError) as exc:
        M.parse_mask(text, 0)
    assert exc.value.errno == errno.EINVAL


ALL_BUT = lambda *ids: M.FULL & ~M.from_ids(ids)  # noqa: E731


@pytest.mark.parametrize("text, start, expected", [
    ("-5", M.FULL, ALL_BUT(5)),
    ("+0-15,+32,-128,-0xFF", 0, M.from_ids(list(range(16)) + [32])),
    ("-0-255,+1-16,+0x80", M.FULL, M.from_ids(list(range(1, 17)) + [128])),
    ("+1,+2,+3,+4,-5,-7-10", M.FULL, ALL_BUT(5, 7, 8, 9, 10)),
    ("-3+3", 0, M.from_ids([3])),         # terms may follow each other without a comma; the last wins
    ("-010\n", M.FULL, ALL_BUT(8)),       # a leading 0 is octal, as simple_strtoul reads it
])
def test_relative_form_is_modify_bitmap(text: str, start: int, expected: int) -> None:
    assert M.parse_mask(text, start) == expected


@pytest.mark.parametrize("text", ["+256", "-5-3", "+", "+x", "+5 ", "5,+6", "+1,,x"])
def test_relative_form_rejects_what_the_kernel_rejects(text: str) -> None:
    with pytest.raises(ModelError) as exc:
        M.parse_mask(text, M.FULL)
    assert exc.value.errno == errno.EINVAL


@given(ids_st, ids_st)
def test_relative_edits_turn_old_into_new(old: set[int], new: set[int]) -> None:
    a, b = M.from_ids(old), M.from_ids(new)
    edits = M.relative_edits(a, b)
    assert (edits == "") == (a == b)
    if edits:
        assert M.parse_mask(edits, a) == b


def test_relative_edits_compress_runs() -> None:
    assert M.relative_edits(M.from_ids([1, 2, 3, 7]), M.from_ids([3, 4, 5, 6, 9])) == "-1-2,-7,+4-6,+9"


@pytest.mark.parametrize("text, value", [("5", 5), ("0x47", 0x47), ("071", 0o71), ("+7", 7),
                                         ("255\n", 255), ("0", 0)])
def test_kstrtoul_accepts(text: str, value: int) -> None:
    assert M.kstrtoul(text) == value


@pytest.mark.parametrize("text, code", [("xyz", errno.EINVAL), ("08", errno.EINVAL), ("0x", errno.EINVAL),
                                        ("-1", errno.EINVAL), ("5 ", errno.EINVAL), ("", errno.EINVAL),
                                        ("18446744073709551616", errno.ERANGE)])
def test_kstrtoul_rejects(text: str, code: int) -> None:
    with pytest.raises(ModelError) as exc:
        M.kstrtoul(text)
    assert exc.value.errno == code


def test_matrix_prints_apqns_adapter_major() -> None:
    text = M.matrix_text(M.from_ids([2, 1]), M.from_ids([6, 5]))
    assert text == "01.0005\n01.0006\n02.0005\n02.0006\n"


def test_matrix_partial_forms() -> None:
    assert M.matrix_text(M.from_ids([5, 0xab]), 0) == "05.\nab.\n"
    assert M.matrix_text(0, M.from_ids([4, 0xab])) == ".0004\n.00ab\n"
    assert M.matrix_text(0, 0) == ""


def test_matrix_is_bounded_by_the_machine_maxima() -> None:
    # a non-APXA machine (63 adapters, 15 domains) never prints higher ids
    assert M.matrix_text(M.from_ids([3, 64]), M.from_ids([15, 16]), 63, 15) == "03.000f\n"


@given(ids_st, ids_st)
def test_matrix_text_parses_back(apm_ids: set[int], aqm_ids: set[int]) -> None:
    apm, aqm = M.from_ids(apm_ids), M.from_ids(aqm_ids)
    assert M.parse_matrix_text(M.matrix_text(apm, aqm)) == (apm, aqm)


def test_control_domains_one_per_line() -> None:
    assert M.control_domains_text(M.from_ids([0x47, 4])) == "0004\n0047\n"
    assert M.parse_control_domains_text("0004\n0047\n") == M.from_ids([4, 0x47])


def test_apqn_names() -> None:
    assert M.format_apqn(5, 0x47) == "05.0047"
    assert M.parse_apqn("05.0047") == (5, 0x47)
    with pytest.raises(ValueError):
        M.parse_apqn("5.47")
