"""The schema of a machine file, built from the host's sections and the plugins'.

:class:`Schema` knows every section and device kind, who owns it, and the type, choices,
range and default of every key.  :meth:`Schema.check` turns a loaded machine into
diagnostics for unknown keys (with the nearest valid key), wrong types, bad choices and
out-of-range values; plugins' own semantic checks run after it.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import pluggy

from vmctl.config.hostschema import (CPU_MODELS, HOST_SECTIONS, MACHINE_TYPES, NAME_PATTERN,
                                     machine_type_known, parse_size)
from vmctl.config.lines import keystr
from vmctl.textfmt import first_unsafe, safe
from vmctl.config.machine import Machine
from vmctl.plugins import call_flat
from vmctl.types import ARCHES, DeviceKind, Diagnostic, Option, Section, Severity

HOST_KEYS = ("include", "machine", "boot", "sim", "device")
ID_RE = re.compile(NAME_PATTERN)

_TYPE_WORDS = {"str": "a string", "int": "an integer", "bool": "true or false",
               "size": 'a size such as "512M" or "2G"', "path": "a file path (string)",
               "list[int]": "a list of integers", "list[str]": "a list of strings"}


def nearest(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...], what: str) -> str:
    near = nearest(word, candidates)
    valid = ", ".join(sorted(candidates))
    if near:
        return f'did you mean "{near}"? valid {what}: {valid}'
    return f"valid {what}: {valid}"


class Schema:
    """Every section and device kind known to this run."""

    def __init__(self, sections: list[Section], kinds: list[DeviceKind]) -> None:
        self.sections: dict[str, Section] = {}
        self.kinds: dict[str, DeviceKind] = {}
        self.conflicts: list[str] = []
        for s in sections:
            if s.name in self.sections or s.name in ("include", "device"):
                owner = self.sections[s.name].plugin if s.name in self.sections else "vmctl"
                self.conflicts.append(f"section [{s.name}] of plugin '{s.plugin}' is already owned by '{owner}'")
                continue
            self.sections[s.name] = s
        for k in kinds:
            if k.name in self.kinds:
                self.conflicts.append(f"device kind '{k.name}' of plugin '{k.plugin}' is already owned by "
                                      f"'{self.kinds[k.name].plugin}'")
                continue
            self.kinds[k.name] = k
        self._defaults = {n: {o.name: o.default for o in s.options if o.default is not None}
                          for n, s in self.sections.items()}
        self._kdefaults = {n: {o.name: o.default for o in k.options if o.default is not None}
                           for n, k in self.kinds.items()}

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager) -> Schema:
        """The schema for ``pm`` (computed once per manager)."""
        cached = getattr(pm, "schema", None)
        if cached is None:
            sections = list(HOST_SECTIONS) + call_flat(pm, "vmctl_sections")
            cached = cls(sections, call_flat(pm, "vmctl_device_kinds"))
            pm.schema = cached
        return cached

    def defaults(self, section: str) -> dict[str, Any]:
        return self._defaults.get(section, {})

    def device_defaults(self, kind: Any) -> dict[str, Any]:
        return self._kdefaults.get(kind, {}) if isinstance(kind, str) else {}

    def owner(self, key: str) -> str:
        head = key.split(".")[0].split("[")[0]
        if head in self.sections:
            return self.sections[head].plugin or "vmctl"
        return "vmctl"

    # -- checking -----------------------------------------------------------------------
    def check(self, m: Machine) -> list[Diagnostic]:
        """Schema diagnostics for ``m`` (empty when it is well-formed)."""
        out: list[Diagnostic] = [self._err(m, "control-character", key, message, hint)
                                 for key, message, hint in unsafe_strings(m.data)]
        arch = m.data.get("machine", {}).get("arch") if isinstance(m.data.get("machine"), dict) else None
        for key, value in m.data.items():
            if key == "device":
                out += self._check_devices(m, value, arch)
                continue
            section = self.sections.get(key)
            if section is None:
                out.append(self._err(m, "unknown-section", key, f"unknown section [{key}]",
                                     did_you_mean(key, [*self.sections, "device"], "sections")))
                continue
            if not isinstance(value, dict):
                out.append(self._err(m, "type", key, f"{key} must be a table ([{key}]), not {_kind(value)}",
                                     f"write it as a [{key}] section", section.plugin))
                continue
            if section.arches and arch in ARCHES and arch not in section.arches:
                out.append(self._err(m, "arch", key, f"section [{key}] applies to {_list(section.arches)} "
                                     f'machines, not arch = "{arch}"',
                                     f"remove [{key}] or change machine.arch", section.plugin))
            out += self._check_options(m, key, value, section.options, section.plugin, arch)
        out.sort(key=lambda d: d.line)
        if "machine" not in m.data:
            out.append(self._err(m, "missing-section", "machine", "the machine has no [machine] section",
                                 'add [machine] with name, arch, type and cpu (or include a base file)'))
        else:
            out += self._check_host(m)
        return out

    def _err(self, m: Machine, code: str, key: str, message: str, hint: str = "",
             plugin: str = "vmctl", severity: Severity = Severity.ERROR) -> Diagnostic:
        d = m.diagnostic(severity, code, key, message, hint)
        return Diagnostic(d.severity, d.code, d.message, d.key, d.hint, d.file, d.line, plugin or "vmctl")

    def _check_options(self, m: Machine, prefix: str, table: dict[str, Any], options: tuple[Option, ...],
                       plugin: str, arch: Any, skip: tuple[str, ...] = ()) -> list[Diagnostic]:
        out: list[Diagnostic] = []
        by_name = {o.name: o for o in options}
        for key, value in table.items():
            if key in skip:
                continue
            full = f"{prefix}.{key}"
            opt = by_name.get(key)
            if opt is None:
                out.append(self._err(m, "unknown-key", full, f"unknown key {key!r} in {_where(prefix)}",
                                     did_you_mean(key, [*by_name, *skip], "keys"), plugin))
                continue
            problem = _check_value(opt, value)
            if problem:
                code, msg, hint = problem
                out.append(self._err(m, code, full, f"{full} {msg}", hint, plugin))
            elif opt.arches and arch in ARCHES and arch not in opt.arches:
                out.append(self._err(m, "arch", full, f"{full} applies to {_list(opt.arches)} machines only",
                                     f"remove {key} for arch = \"{arch}\"", plugin))
            if opt.deprecated and not problem:
                out.append(self._err(m, "deprecated", full, f"{full} is deprecated: {opt.deprecated}",
                                     f"{full} still works in this release; the next one drops it", plugin,
                                     severity=Severity.NOTE))
        for opt in options:
            if opt.required and opt.name not in table:
                out.append(self._err(m, "missing-key", prefix, f"{_where(prefix)} needs {opt.name!r} ({opt.help})",
                                     f"add {opt.name} = …", plugin))
        return out

    def _check_devices(self, m: Machine, devices: Any, arch: Any) -> list[Diagnostic]:
        if not isinstance(devices, list):
            return [self._err(m, "type", "device", "device must be an array of tables ([[device]])",
                              "write each device as a [[device]] section")]
        out: list[Diagnostic] = []
        counts: dict[str, int] = {}
        ids: dict[str, int] = {}
        for i, dev in enumerate(devices):
            key = f"device[{i}]"
            if not isinstance(dev, dict):
                out.append(self._err(m, "type", key, f"{key} must be a table", "use [[device]] sections"))
                continue
            kind_name = dev.get("kind")
            if not isinstance(kind_name, str):
                out.append(self._err(m, "missing-key", key, f"{key} has no kind",
                                     f"add kind = one of: {', '.join(sorted(self.kinds))}"))
                continue
            kind = self.kinds.get(kind_name)
            if kind is None:
                out.append(self._err(m, "unknown-device-kind", f"{key}.kind",
                                     f"unknown device kind {kind_name!r}",
                                     did_you_mean(kind_name, list(self.kinds), "kinds")
                                     + " (vmctl plugins lists who provides them)"))
                continue
            did = dev.get("id")
            if did is not None:
                if not isinstance(did, str) or not ID_RE.fullmatch(did):
                    out.append(self._err(m, "value", f"{key}.id", f"{key}.id must match {NAME_PATTERN}",
                                         'use lower-case letters, digits and "-"'))
                elif did in ids:
                    out.append(self._err(m, "duplicate-id", f"{key}.id",
                                         f"device id {did!r} is already used by device[{ids[did]}]",
                                         "ids must be unique within a machine"))
                else:
                    ids[did] = i
            if kind.arches and arch in ARCHES and arch not in kind.arches:
                out.append(self._err(m, "arch", f"{key}.kind", f"device kind {kind_name!r} needs "
                                     f"{_list(kind.arches)}, not arch = \"{arch}\"",
                                     "remove the device or change machine.arch", kind.plugin))
            counts[kind_name] = counts.get(kind_name, 0) + 1
            if kind.max_per_machine is not None and counts[kind_name] == kind.max_per_machine + 1:
                out.append(self._err(m, "too-many-devices", key,
                                     f"a machine can have at most {kind.max_per_machine} {kind_name} device"
                                     f"{'s' if kind.max_per_machine != 1 else ''}",
                                     "merge them into one", kind.plugin))
            out += self._check_options(m, key, dev, kind.options, kind.plugin, arch, skip=("kind", "id"))
        return out

    def _check_host(self, m: Machine) -> list[Diagnostic]:
        out: list[Diagnostic] = []
        mach = m.data.get("machine")
        if not isinstance(mach, dict):
            return out
        arch, mtype, cpu = mach.get("arch"), mach.get("type"), mach.get("cpu")
        if arch in ARCHES and isinstance(mtype, str) and not machine_type_known(arch, mtype):
            out.append(self._err(m, "unknown-machine-type", "machine.type",
                                 f'machine type "{mtype}" is not a {arch} machine type',
                                 did_you_mean(mtype, MACHINE_TYPES[arch], f"{arch} types")))
        if arch in ARCHES and isinstance(cpu, str) and cpu not in CPU_MODELS[arch]:
            out.append(self._err(m, "unknown-cpu-model", "machine.cpu", f'CPU model "{cpu}" is not a {arch} CPU',
                                 did_you_mean(cpu, CPU_MODELS[arch], f"{arch} models")))
        cpus, maxc = mach.get("cpus", 1), mach.get("max-cpus")
        if isinstance(cpus, int) and isinstance(maxc, int) and not isinstance(maxc, bool) and maxc < cpus:
            out.append(self._err(m, "range", "machine.max-cpus", f"max-cpus ({maxc}) is less than cpus ({cpus})",
                                 f"raise max-cpus to at least {cpus}, or remove it"))
        mem = mach.get("memory")
        if isinstance(mem, str) and (size := parse_size(mem)) is not None and size < (16 << 20):
            out.append(self._err(m, "range", "machine.memory", f'memory "{mem}" is below 16M',
                                 'give the guest at least "128M"'))
        boot = m.data.get("boot")
        if isinstance(boot, dict):
            from vmctl.guest import check_boot, fitting_for, reference

            for key, sev, code, message, hint in check_boot(boot, arch if isinstance(arch, str) else None):
                out.append(self._err(m, code, key, message, hint, severity=Severity(sev)))
            for key in ("kernel", "initrd"):
                if isinstance(boot.get(key), str) and reference(boot[key]) is None:
                    path = m.resolve_path(f"boot.{key}")
                    if path is not None and not path.is_file():
                        out.append(self._err(m, "file-not-found", f"boot.{key}", f"boot.{key} not found: {path}",
                                             "paths are relative to the file that sets them"
                                             + "".join(f'; {key} = "{g}" boots Debian\'s guest (vmctl guest list)'
                                                       for g in fitting_for(arch)[:1])))
            fw = boot.get("firmware")
            if fw in ("slof", "vof") and not (isinstance(mtype, str) and mtype.startswith("pseries")):
                out.append(self._err(m, "value", "boot.firmware", f'firmware = "{fw}" is for pseries machines only',
                                     'remove it or set firmware = "default"'))
        return out


def unsafe_strings(data: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str, str, str]]:
    """``(key, message, hint)`` for every key or string value that holds a control character.

    Any string may reach QEMU's argv, libvirt XML, a shell script or a terminal, so C0 and
    C1 controls (tab allowed), DEL, U+2028/U+2029, lone surrogates and U+FFFE/U+FFFF are
    refused everywhere, at the key that holds them.
    """
    out: list[tuple[str, str, str]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for k, v in items:
        path = (*prefix, k)
        if isinstance(k, str) and (at := first_unsafe(k)) >= 0:
            out.append((keystr(prefix) or k, f"key {safe(k)!r} holds a control character "
                        f"({safe(k[at])} at position {at + 1})",
                        "keys are plain names; retype it without the character"))
        if isinstance(v, str):
            if (at := first_unsafe(v)) >= 0:
                key = keystr(path)
                out.append((key, f"{key} holds a control character ({safe(v[at])} at position "
                                 f"{at + 1}): '{safe(v)}'",
                            "control characters would reach QEMU's command line, XML, scripts "
                            "and terminals; remove it (TOML escapes such as \\u001b count too)"))
        elif isinstance(v, (dict, list)):
            out += unsafe_strings(v, path)
    return out


def _check_value(opt: Option, value: Any) -> tuple[str, str, str] | None:
    t = opt.type
    want = _TYPE_WORDS[t]
    if t in ("str", "path", "size"):
        if not isinstance(value, str):
            return "type", f"must be {want}, not {_kind(value)}", f"write it in quotes: \"{value}\""
        if t == "size" and parse_size(value) is None:
            return "value", f'"{value}" is not a size', 'use a number and a unit: "512M", "2G"'
        if t == "path" and not value:
            return "value", "must not be empty", "give a file name, or remove the key"
    elif t == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return "type", f"must be {want}, not {_kind(value)}", "write a number without quotes"
    elif t == "bool":
        if not isinstance(value, bool):
            return "type", f"must be {want}, not {_kind(value)}", "write true or false without quotes"
    elif t == "list[int]":
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return "type", f"must be {want}, not {_kind(value)}", "write e.g. [5, 6, 0xab]"
    elif t == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "type", f"must be {want}, not {_kind(value)}", 'write e.g. ["a", "b"]'
    if opt.choices and value not in opt.choices:
        near = nearest(str(value), [str(c) for c in opt.choices])
        shown = " | ".join(f'"{c}"' if isinstance(c, str) else str(c) for c in opt.choices)
        return ("choice", f"must be one of {shown}, not {value!r}",
                f'did you mean "{near}"?' if near else f"{opt.name}: {opt.help}")
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            if opt.minimum is not None and v < opt.minimum:
                return "range", f"value {v} is below the minimum {opt.minimum}", f"{opt.name}: {opt.help}"
            if opt.maximum is not None and v > opt.maximum:
                return "range", f"value {v} is above the maximum {opt.maximum}", f"{opt.name}: {opt.help}"
    if opt.pattern and isinstance(value, str) and not re.fullmatch(opt.pattern, value):
        return "value", f"{value!r} is not valid", f"{opt.name} must be {opt.help} (pattern {opt.pattern})"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        return f'a string ("{value}")'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _list(items: tuple[str, ...]) -> str:
    return ", ".join(items[:-1]) + (" or " if len(items) > 1 else "") + items[-1]


def _where(prefix: str) -> str:
    return f"[{prefix}]" if "[" not in prefix and "." not in prefix else prefix


__all__ = ["Schema", "keystr", "nearest", "did_you_mean"]
