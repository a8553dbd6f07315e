"""No string a machine file or a file name carries can drive a terminal, break XML or run shell.

Seen before: ``append = "console=hvc0\\u001b]0;x\\u0007"``, NUL, ``\\u000b`` and ``\\ufffe``
passed validation into argv, libvirt XML (not well-formed then) and the terminal;
diagnostics echoed values raw; a machine file named ``$'evil\\ntouch PWNED\\n.toml'`` put a
live command into ``export --format sh``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import MACHINES, run_vmctl
from vmctl.textfmt import UNSAFE_CHARS

BASE = MACHINES / "base" / "pseries.toml"
RAW_CONTROL = re.compile(f"[{UNSAFE_CHARS.replace(chr(0x0a) + '-', chr(0x0b) + '-')}]")
ESCAPES = {"\x1b": "\\u001b", "\x00": "\\u0000", "\x0b": "\\u000b", "\ufffe": "\\ufffe",
           "\x7f": "\\u007f", "\x85": "\\u0085", "\x9b": "\\u009b", "\u2028": "\\u2028",
           "\r": "\\r", "\n": "\\n", "\x07": "\\u0007"}
PLACES = {
    "boot.append": ('[boot]\nappend = "console=hvc0{c}x"\n', 5),
    "boot.kernel": ('[boot]\nkernel = "vmlinux{c}"\n', 5),
    "machine.cpu": ('cpu = "power9{c}"\n', 4),
    "sim.workload": ('[sim]\nworkload = "idle{c}"\n', 5),
    "device[0].id": ('[[device]]\nkind = "vfio-pci"\nid = "gpu0{c}"\nhost = "0000:01:00.0"\n', 6),
}


def machine(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "m.toml"
    f.write_text(f'include = ["{BASE}"]\n[machine]\nname = "m"\n{body}')
    return f


def assert_no_raw_control(text: str) -> None:
    assert not RAW_CONTROL.search(text), repr(RAW_CONTROL.search(text).group())


@pytest.mark.parametrize("char", list(ESCAPES), ids=[f"U+{ord(c):04X}" for c in ESCAPES])
@pytest.mark.parametrize("key", list(PLACES))
def test_control_characters_are_refused_at_their_key_and_line(tmp_path: Path, key: str, char: str):
    body, line = PLACES[key]
    f = machine(tmp_path, body.format(c=ESCAPES[char]))
    proc = run_vmctl("validate", str(f))
    assert proc.returncode == 1, proc.stdout
    assert f"m.toml:{line}: error[{key}]: {key} holds a control character" in proc.stdout
    assert_no_raw_control(proc.stdout + proc.stderr)


def test_a_control_character_in_a_key_name_is_refused(tmp_path: Path):
    f = machine(tmp_path, '[sim]\n"seed\\u001b[2J" = 1\n')
    proc = run_vmctl("validate", str(f))
    assert proc.returncode == 1
    assert "holds a control character" in proc.stdout
    assert_no_raw_control(proc.stdout + proc.stderr)


def test_a_tab_in_the_kernel_command_line_is_fine(tmp_path: Path):
    f = machine(tmp_path, '[boot]\nappend = "console=hvc0\\tquiet"\n')
    assert run_vmctl("validate", str(f)).returncode == 0


@pytest.mark.parametrize("fmt", ["argv", "sh", "libvirt-xml"])
def test_exports_refuse_a_machine_with_control_characters(tmp_path: Path, fmt: str):
    f = machine(tmp_path, '[boot]\nappend = "console=hvc0\\u001b]0;x\\u0007"\n')
    proc = run_vmctl("export", str(f), "--format", fmt)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert_no_raw_control(proc.stderr)


def test_diagnostics_escape_a_file_name_that_holds_control_characters(tmp_path: Path):
    f = tmp_path / "evil\x1b]0;owned\x07.toml"
    f.write_text("[machine\n")
    proc = run_vmctl("validate", str(f))
    assert proc.returncode == 1
    assert "evil\\x1b]0;owned\\x07.toml:1: error[toml-syntax]" in proc.stdout
    assert_no_raw_control(proc.stdout + proc.stderr)


def test_error_messages_escape_names_from_the_command_line(tmp_path: Path):
    proc = run_vmctl("status", "x\x1b[2J")
    assert proc.returncode == 2
    assert "x\\x1b[2J" in proc.stderr
    assert_no_raw_control(proc.stderr)


@pytest.fixture
def fake_qemu(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A ``qemu-system-*`` first on PATH that records its argv (one JSON list per run)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "qemu-runs.jsonl"
    for arch in ("ppc64", "x86_64", "aarch64", "s390x"):
        exe = bindir / f"qemu-system-{arch}"
        exe.write_text("#!/usr/bin/env python3\nimport json, sys\n"
                       f"open({str(record)!r}, 'a').write(json.dumps(sys.argv) + '\\n')\n")
        exe.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}, record


def test_a_file_name_with_a_newline_does_not_inject_shell(tmp_path: Path, fake_qemu):
    env, record = fake_qemu
    work = tmp_path / "work"
    work.mkdir()
    inc = work / "base\ntouch PWNED-INC\n.toml"
    inc.write_text(BASE.read_text())
    evil = work / "evil\ntouch PWNED\n.toml"
    evil.write_text((MACHINES / "p9-dual.toml").read_text().replace('"base/pseries.toml"',
                                                                     json.dumps(inc.name)))
    proc = run_vmctl("export", evil.name, "--format", "sh", cwd=work)
    assert proc.returncode == 0, proc.stderr
    script = work / "run.sh"
    script.write_text(proc.stdout)
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    for line in proc.stdout.splitlines():
        assert line.startswith(("#", "set ", "exec ")), line
    subprocess.run(["sh", str(script)], cwd=work, env={**os.environ, **env}, timeout=30,
                   capture_output=True)
    assert not list(work.glob("PWNED*"))
    (argv,) = [json.loads(x) for x in record.read_text().splitlines()]
    assert Path(argv[0]).name == "qemu-system-ppc64" and "-machine" in argv


def test_libvirt_xml_of_every_shipped_machine_is_well_formed():
    for f in sorted(MACHINES.glob("*.toml")):
        proc = run_vmctl("export", str(f), "--format", "libvirt-xml")
        if proc.returncode == 0:
            ET.fromstring(proc.stdout)
