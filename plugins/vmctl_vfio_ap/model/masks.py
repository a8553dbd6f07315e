"""AP bit masks, APQNs and the kernel's text formats for them.

A mask is a Python ``int`` of 256 bits laid out the way the s390 architecture (and
``/sys/bus/ap/apmask``) numbers them: **bit 0 is the left-most bit**.  So id ``n`` is
``1 << (255 - n)`` and the kernel's text form ``0x`` + 64 hex digits is simply the number in
hex.  All functions here are pure.

Formats reproduced (``drivers/s390/crypto/ap_bus.c``, ``vfio_ap_ops.c``):

* masks: ``0x%016lx%016lx%016lx%016lx`` (apmask, aqmask; the QCI masks print the same digits)
* writes to apmask/aqmask: absolute hex (``0x…``, ``x…`` or bare digits, left-aligned, shorter
  values padded with zeros) or a list of relative edits ``+N``, ``-N``, ``+A-B`` separated by
  ``,`` (``ap_parse_bitmap_str``: ``hex2bitmap`` / ``modify_bitmap``)
* numbers written to ``assign_*``: ``kstrtoul(buf, 0)`` (decimal, ``0x`` hex, ``0`` octal)
* ``matrix`` / ``guest_matrix``: ``%02lx.%04lx`` per APQN, or ``%02lx.`` per adapter when no
  domain is assigned, or ``.%04lx`` per domain when no adapter is assigned
* ``control_domains``: ``%04lx`` per domain
"""

from __future__ import annotations

import errno
import string
from collections.abc import Iterable

from vmctl.api import ModelError

AP_DEVICES = 256
"""Architected number of adapter ids (APID 0..255)."""
AP_DOMAINS = 256
"""Architected number of domain ids (APQI 0..255)."""
FULL = (1 << 256) - 1
"""A mask with every bit set (the boot default of apmask and aqmask)."""

_ULONG_MAX = (1 << 64) - 1
_HEX = frozenset(string.hexdigits)


def bit(n: int) -> int:
    """The mask with only id ``n`` set (bit ``n`` counted from the left)."""
    return 1 << (255 - n)


def test(mask: int, n: int) -> bool:
    """Whether id ``n`` is set in ``mask``."""
    return (mask >> (255 - n)) & 1 == 1


def from_ids(ids: Iterable[int]) -> int:
    """The mask with exactly ``ids`` set."""
    m = 0
    for n in ids:
        if not 0 <= n < 256:
            raise ValueError(f"AP id {n} out of range 0..255")
        m |= 1 << (255 - n)
    return m


def ids(mask: int) -> list[int]:
    """The ids set in ``mask``, ascending (the kernel's ``for_each_set_bit_inv`` order)."""
    out = []
    while mask:
        top = mask.bit_length() - 1
        out.append(255 - top)
        mask ^= 1 << top
    return out


def up_to(max_id: int) -> int:
    """The mask of ids ``0..max_id``."""
    return FULL ^ (FULL >> (max_id + 1)) if max_id >= 0 else 0


def format_mask(mask: int) -> str:
    """The kernel's text form of a 256-bit mask: ``0x`` and 64 hex digits, bit 0 left-most."""
    return f"0x{mask:064x}"


# -- numbers as the kernel parses them ---------------------------------------------------
def _fixup_radix(s: str) -> tuple[str, int]:
    """``_parse_integer_fixup_radix`` for base 0: ``0x`` + hex digit → 16, ``0`` → 8, else 10."""
    if s[:1] == "0":
        if s[1:2].lower() == "x" and s[2:3] in _HEX:
            return s[2:], 16
        return s, 8
    return s, 10


def _digits(s: str, base: int) -> int:
    """How many leading characters of ``s`` are digits in ``base``."""
    n = 0
    for ch in s:
        if ch in _HEX and int(ch, 16) < base:
            n += 1
        else:
            break
    return n


def kstrtoul(text: str) -> int:
    """Parse like the kernel's ``kstrtoul(buf, 0, &val)`` used by every ``assign_*`` store.

    Accepts an optional leading ``+``, then decimal, ``0x`` hex or ``0`` octal digits, then at
    most one trailing newline.  Anything else is ``EINVAL``; a value above ``ULONG_MAX`` is
    ``ERANGE``.
    """
    s = text[1:] if text[:1] == "+" else text
    s, base = _fixup_radix(s)
    n = _digits(s, base)
    if n == 0:
        raise ModelError(errno.EINVAL, f"invalid number {text.strip()!r}")
    value = int(s[:n], base)
    rest = s[n:]
    if rest[:1] == "\n":
        rest = rest[1:]
    if rest:
        raise ModelError(errno.EINVAL, f"invalid number {text.strip()!r}")
    if value > _ULONG_MAX:
        raise ModelError(errno.ERANGE, f"number {text.strip()!r} out of range")
    return value


def _simple_strtoul(s: str) -> tuple[int, int]:
    """``simple_strtoul(s, &end, 0)``: (value modulo 2**64, characters consumed; 0 if none)."""
    body, base = _fixup_radix(s)
    prefix = len(s) - len(body)
    n = _digits(body, base)
    if n == 0:
        return 0, 0
    return int(body[:n], base) & _ULONG_MAX, prefix + n


# -- mask writes ---------------------------------------------------------------------------
def _hex2bitmap(s: str, bits: int) -> int:
    """``hex2bitmap``: digits fill the mask from the left; at most ``bits // 4`` of them."""
    if s[:2] == "0x":
        s = s[1:]
    if s[:1] == "x":
        s = s[1:]
    mask = 0
    i = 0
    pos = 0
    while pos < len(s) and s[pos] in _HEX and i < bits:
        mask |= int(s[pos], 16) << (252 - i)
        i += 4
        pos += 1
    rest = s[pos:]
    if rest[:1] == "\n":
        rest = rest[1:]
    if rest:
        raise ModelError(errno.EINVAL, f"invalid mask {s.strip()!r}: hex digits only, at most {bits // 4}")
    return mask


def _modify_bitmap(s: str, mask: int, bits: int) -> int:
    """``modify_bitmap``: apply ``+A``, ``-A``, ``+A-B`` terms in order; the last one wins."""
    while s:
        sign, s = s[0], s[1:]
        if sign not in "+-":
            raise ModelError(errno.EINVAL, f"invalid mask edit at {sign + s!r}: expected '+' or '-'")
        a, used = _simple_strtoul(s)
        if used == 0 or a >= bits:
            raise ModelError(errno.EINVAL, f"invalid mask edit {sign + s!r}: id must be 0..{bits - 1}")
        s = s[used:]
        z = a
        if s[:1] == "-":
            z, used = _simple_strtoul(s[1:])
            if used == 0 or a > z or z >= bits:
                raise ModelError(errno.EINVAL, f"invalid mask range {a}-{s[1:]!r}")
            s = s[1 + used:]
        span = ((1 << (z - a + 1)) - 1) << (255 - z)
        mask = mask | span if sign == "+" else mask & ~span
        s = s.lstrip(",\n")
    return mask


def parse_mask(text: str, current: int, bits: int = 256) -> int:
    """The mask a write of ``text`` to apmask/aqmask produces (``ap_parse_bitmap_str``).

    ``+…``/``-…`` edits modify ``current``; anything else replaces it with an absolute hex
    value.  Raises ``ModelError(EINVAL)`` where the kernel rejects the write.
    """
    if text[:1] in ("+", "-"):
        return _modify_bitmap(text, current, bits)
    return _hex2bitmap(text, bits)


def relative_edits(old: int, new: int) -> str:
    """The shortest ``+N``/``-N`` edit list (ranges ``+A-B``) turning ``old`` into ``new``.

    ``""`` when they are equal.  The result, written to the mask, gives ``new`` exactly.
    """
    terms: list[str] = []
    for sign, m in (("-", old & ~new), ("+", new & ~old)):
        run: list[int] = []
        for n in ids(m) + [-2]:
            if run and n == run[-1] + 1:
                run.append(n)
                continue
            if run:
                terms.append(f"{sign}{run[0]}" if len(run) == 1 else f"{sign}{run[0]}-{run[-1]}")
            run = [n]
    return ",".join(terms)


# -- APQNs and mdev attributes -----------------------------------------------------------
def apqn(apid: int, apqi: int) -> int:
    """The packed APQN ``APID << 8 | APQI``."""
    return (apid << 8) | apqi


def format_apqn(apid: int, apqi: int) -> str:
    """``AA.DDDD`` as the kernel names queue devices (``05.0004``)."""
    return f"{apid:02x}.{apqi:04x}"


def parse_apqn(text: str) -> tuple[int, int]:
    """``"05.0004"`` → ``(5, 4)``; ``ValueError`` on anything else."""
    card, _, dom = text.strip().partition(".")
    if len(card) != 2 or len(dom) != 4 or not (set(card + dom) <= _HEX):
        raise ValueError(f"not an APQN: {text!r} (expected AA.DDDD, e.g. 05.0004)")
    return int(card, 16), int(dom, 16)


def matrix_text(apm: int, aqm: int, apm_max: int = 255, aqm_max: int = 255) -> str:
    """What ``matrix`` or ``guest_matrix`` prints for these masks (``vfio_ap_mdev_matrix_show``).

    Only ids up to the machine's maxima are printed, as the kernel bounds its loops by them.
    """
    aps = [a for a in ids(apm) if a <= apm_max]
    aqs = [q for q in ids(aqm) if q <= aqm_max]
    if aps and aqs:
        return "".join(f"{a:02x}.{q:04x}\n" for a in aps for q in aqs)
    if aps:
        return "".join(f"{a:02x}.\n" for a in aps)
    return "".join(f".{q:04x}\n" for q in aqs)


def parse_matrix_text(text: str) -> tuple[int, int]:
    """Masks ``(apm, aqm)`` back from a ``matrix``/``guest_matrix`` text (all three forms)."""
    apm = aqm = 0
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        card, dot, dom = line.partition(".")
        if not dot or len(card) not in (0, 2) or len(dom) not in (0, 4) or not (card or dom):
            raise ValueError(f"not a matrix line: {line!r}")
        if card:
            apm |= bit(int(card, 16))
        if dom:
            aqm |= bit(int(dom, 16))
    return apm, aqm


def control_domains_text(adm: int, adm_max: int = 255) -> str:
    """What ``control_domains`` prints: one ``%04lx`` line per assigned control domain."""
    return "".join(f"{d:04x}\n" for d in ids(adm) if d <= adm_max)


def parse_control_domains_text(text: str) -> int:
    """The mask back from a ``control_domains`` text."""
    return from_ids(int(line, 16) for line in text.split() if line)
