"""Reading machine files: size and encoding checks, TOML syntax, includes, provenance.

``include = ["base/pseries.toml"]`` is resolved relative to the including file and merged
in order: tables merge key by key, the including file wins; ``[[device]]`` lists
concatenate, and a device whose ``id`` matches an included device replaces it in place.
Every resolved value remembers the file and line it came from.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from vmctl.config.limits import (MAX_FILE_BYTES, MAX_FILES, MAX_INCLUDE_DEPTH, MAX_TOTAL_BYTES,
                                 check_shape)
from vmctl.config.lines import key_lines
from vmctl.errors import VmctlError
from vmctl.textfmt import safe
from vmctl.types import Diagnostic, Severity

MAX_BYTES = MAX_FILE_BYTES

KeyPath = tuple[str | int, ...]


class LineIndex:
    """Line numbers of one file's keys, scanned on first use (most machines never need them)."""

    __slots__ = ("text", "_lines")

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: dict[KeyPath, int] | None = None

    def line(self, key: KeyPath) -> int:
        if self._lines is None:
            self._lines = key_lines(self.text)
        while key:
            found = self._lines.get(key)
            if found is not None:
                return found
            key = key[:-1]
        return 0


class Source:
    """Where a value was written: ``file`` as shown to the user, 1-based ``line`` (0: unknown).

    Built with a :class:`LineIndex` and the key, the line is looked up only when read.
    """

    __slots__ = ("file", "_line", "_index", "_key")

    def __init__(self, file: str, line: int | None = None, index: LineIndex | None = None,
                 key: KeyPath = ()) -> None:
        self.file = file
        self._line = line
        self._index = index
        self._key = key

    @property
    def line(self) -> int:
        if self._line is None:
            self._line = self._index.line(self._key) if self._index is not None else 0
        return self._line

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Source) and (self.file, self.line) == (other.file, other.line)

    def __hash__(self) -> int:
        return hash((self.file, self.line))

    def __repr__(self) -> str:
        return f"Source({self.file!r}, {self.line})"


def key_paths(data: dict[str, Any], prefix: KeyPath = ()) -> list[KeyPath]:
    """Every table and key path in parsed TOML data; ``[[device]]`` entries by index."""
    out: list[KeyPath] = []
    for key, value in data.items():
        path = (*prefix, key)
        out.append(path)
        if isinstance(value, dict):
            out += key_paths(value, path)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out.append((*path, i))
                out += key_paths(item, (*path, i))
    return out


class MachineError(VmctlError):
    """A machine that cannot be loaded or is invalid; carries its diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        first = diagnostics[0]
        super().__init__(first.message, first.hint)
        self.diagnostics = diagnostics


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _fail(path: Path | str, code: str, message: str, hint: str = "", line: int = 1,
          key: str = "") -> MachineError:
    shown = display_path(Path(path)) if not isinstance(path, str) else path
    return MachineError([Diagnostic(Severity.ERROR, code, message, key=key, hint=hint,
                                    file=shown, line=line, plugin="vmctl")])


_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
_TOML_END = re.compile(r"\(at end of document\)")


class FileProblem(Exception):
    """A file that cannot be read as a machine file; reported where it was named."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY)


def read_machine_text(path: Path) -> str:
    """The text of a regular file of at most 1 MiB; :class:`FileProblem` otherwise.

    Only regular files are read: a FIFO would block forever and a device could be
    anything.  The kind is checked before opening and again on the open descriptor
    (opened non-blocking, so even a FIFO swapped in between cannot hang the read).
    """
    shown = display_path(path)
    try:
        st = os.stat(path)
        kind = stat.S_IFMT(st.st_mode)
        if kind != stat.S_IFREG:
            raise FileProblem("not-a-file", f"{shown} is {_KINDS.get(kind, 'not a regular file')}, "
                              "not a machine file", "give a regular .toml file")
        with open(path, "rb", opener=_nonblocking) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise FileProblem("not-a-file", f"{shown} is not a regular file",
                                  "give a regular .toml file")
            blob = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise FileProblem("file-not-found", f"no such file: {shown}",
                          "check the path; includes are relative to the including file") from None
    except PermissionError:
        raise FileProblem("unreadable", f"cannot read {shown}: permission denied",
                          "check the file's mode and owner") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileProblem("symlink-loop", f"{shown}: too many levels of symbolic links",
                              "a symlink points (through others) back at itself") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise FileProblem("name-too-long", f"file name too long: {safe(shown[:80])}…",
                              "a file name has at most 255 bytes, a path 4095") from None
        raise FileProblem("unreadable", f"cannot read {shown}: {exc.strerror}",
                          "check the path") from None
    if len(blob) > MAX_FILE_BYTES:
        raise FileProblem("file-too-large", f"{shown} is larger than 1 MiB",
                          "a machine file is a few hundred bytes; is this the right file?")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = blob[: exc.start].count(b"\n") + 1
        raise _fail(path, "not-utf8", f"{shown} is not UTF-8 text (byte 0x{blob[exc.start]:02x})",
                    "TOML files must be UTF-8; convert with iconv -t UTF-8", line=line) from None


class _Budget:
    """What one machine's resolution has read so far (see :mod:`vmctl.config.limits`)."""

    __slots__ = ("files", "bytes")

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0


class Loader:
    """Loads files with a cache, so a base file included by many machines is parsed once."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[dict[str, Any], LineIndex]] = {}

    def parse(self, path: Path) -> tuple[dict[str, Any], LineIndex]:
        """Parse one file (no includes): its data and its line index.  ``path`` is resolved."""
        try:
            return self._parse(path)
        except FileProblem as p:
            raise _fail(path, p.code, p.message, p.hint, line=1) from None

    def _parse(self, path: Path) -> tuple[dict[str, Any], LineIndex]:
        hit = self._cache.get(path)
        if hit is not None:
            return hit
        text = read_machine_text(path)
        shape = check_shape(text)
        if shape is not None:
            line, problem = shape
            raise _fail(path, "too-deep", f"{display_path(path)}: {problem}",
                        "a machine file needs a few levels at most; is this the right file?",
                        line=line)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            msg = str(exc)
            m = _TOML_POS.search(msg)
            line = int(m.group(1)) if m else max(1, text.count("\n") + (not text.endswith("\n")))
            col = f", column {m.group(2)}" if m else ""
            clean = _TOML_END.sub("", _TOML_POS.sub("", msg)).strip()
            where = "" if m else " at the end of the file"
            raise _fail(path, "toml-syntax", f"TOML syntax error{col}{where}: {clean}",
                        "see https://toml.io for the syntax; strings need quotes", line=line) from None
        result = (data, LineIndex(text))
        self._cache[path] = result
        return result

    def load(self, path: Path, _stack: tuple[Path, ...] = (),
             _budget: _Budget | None = None) -> tuple[dict[str, Any], dict[KeyPath, Source]]:
        """The merged data of ``path`` with its includes, and each key's source.

        Raises :class:`MachineError` with a file and a line for every failure, including
        the limits of :mod:`vmctl.config.limits`.
        """
        if not _stack:
            try:
                path = Path(os.path.realpath(path))
                return self._load(path, (), _Budget())
            except FileProblem as p:
                raise _fail(path, p.code, p.message, p.hint, line=1) from None
        return self._load(path, _stack, _budget or _Budget())

    def _load(self, path: Path, _stack: tuple[Path, ...],
              budget: _Budget) -> tuple[dict[str, Any], dict[KeyPath, Source]]:
        if path in _stack:
            chain = " → ".join(display_path(p) for p in (*_stack, path))
            raise _fail(_stack[-1], "include-cycle", f"include cycle: {chain}",
                        "remove one of the includes", line=self.parse(_stack[-1])[1].line(("include",)),
                        key="include")
        data, index = self._parse(path)
        budget.files += 1
        budget.bytes += len(index.text)
        shown = display_path(path)
        prov = {k: Source(shown, None, index, k) for k in key_paths(data)}
        includes = data.get("include", [])

        def inc_line() -> int:  # only on an error: most files never need their lines
            return index.line(("include",)) or 1
        if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
            raise _fail(path, "type", "include must be a list of file names",
                        'write include = ["base/pseries.toml"]', line=inc_line(), key="include")
        if includes and len(_stack) + 1 > MAX_INCLUDE_DEPTH:
            chain = f"{_stack[0].name} → {_stack[1].name} → … → {path.name}"
            raise _fail(path, "include-too-deep", f"includes nest more than {MAX_INCLUDE_DEPTH} "
                        f"files deep: {chain} → …", "flatten the include chain", line=inc_line(),
                        key="include")
        merged: dict[str, Any] = {}
        mprov: dict[KeyPath, Source] = {}
        for inc in includes:
            if budget.files >= MAX_FILES or budget.bytes > MAX_TOTAL_BYTES:
                raise _fail(path, "include-limit", f"this machine reads more than {MAX_FILES} files "
                            f"or {MAX_TOTAL_BYTES >> 20} MiB through its includes (an include "
                            "repeated at many levels multiplies)",
                            "include each base file once; merge repeated includes", line=inc_line(),
                            key="include")
            try:
                target = Path(os.path.realpath(path.parent / inc))
                idata, iprov = self._load(target, (*_stack, path), budget)
            except FileProblem as p:
                if p.code == "file-not-found":
                    raise _fail(path, "include-not-found", f"included file not found: {inc}",
                                f"looked for {display_path(path.parent / inc)}; includes are "
                                f"relative to {shown}", line=inc_line(), key="include") from None
                raise _fail(path, p.code, f"include {inc!r}: {p.message}", p.hint, line=inc_line(),
                            key="include") from None
            merged, mprov = merge(merged, mprov, idata, iprov)
        own = {k: v for k, v in data.items() if k != "include"}
        own_prov = {k: v for k, v in prov.items() if k[:1] != ("include",)}
        return merge(merged, mprov, own, own_prov)


def merge(base: dict[str, Any], bprov: dict[KeyPath, Source],
          over: dict[str, Any], oprov: dict[KeyPath, Source]) -> tuple[dict[str, Any], dict[KeyPath, Source]]:
    """Merge ``over`` onto ``base`` (tables deep, devices by ``id``); provenance follows."""
    out = dict(base)
    prov = dict(bprov)
    for key, value in over.items():
        if key == "device" and isinstance(value, list) and isinstance(base.get("device"), list):
            out["device"], prov = _merge_devices(base["device"], value, prov, oprov)
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            sub, subprov = merge(base[key], _sub(prov, key), value, _sub(oprov, key))
            out[key] = sub
            prov = {k: v for k, v in prov.items() if k[:1] != (key,)}
            prov.update({(key, *k): v for k, v in subprov.items()})
            prov[(key,)] = oprov.get((key,), bprov.get((key,), Source("", 0)))
            continue
        out[key] = value
        prov = {k: v for k, v in prov.items() if k[:1] != (key,)}
        prov.update({k: v for k, v in oprov.items() if k[:1] == (key,)})
    for k, v in oprov.items():
        prov.setdefault(k, v)
    return out, prov


def _sub(prov: dict[KeyPath, Source], key: str) -> dict[KeyPath, Source]:
    return {k[1:]: v for k, v in prov.items() if k[:1] == (key,) and len(k) > 1}


def _merge_devices(base: list[Any], over: list[Any], bprov: dict[KeyPath, Source],
                   oprov: dict[KeyPath, Source]) -> tuple[list[Any], dict[KeyPath, Source]]:
    devices = list(base)
    # provenance per device, by position
    per: list[dict[KeyPath, Source]] = [
        {k[2:]: v for k, v in bprov.items() if k[:2] == ("device", i)} for i in range(len(base))]
    by_id = {d.get("id"): i for i, d in enumerate(devices) if isinstance(d, dict) and d.get("id")}
    for j, dev in enumerate(over):
        dprov = {k[2:]: v for k, v in oprov.items() if k[:2] == ("device", j)}
        did = dev.get("id") if isinstance(dev, dict) else None
        if did and did in by_id:
            devices[by_id[did]] = dev
            per[by_id[did]] = dprov
        else:
            if did:
                by_id[did] = len(devices)
            devices.append(dev)
            per.append(dprov)
    prov = {k: v for k, v in bprov.items() if k[:1] != ("device",)}
    for i, dp in enumerate(per):
        prov.update({("device", i, *k): v for k, v in dp.items()})
    prov[("device",)] = oprov.get(("device", 0), bprov.get(("device",), Source("", 0)))
    return devices, prov
