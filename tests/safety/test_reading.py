"""Reading machine files never hangs, never crashes, and every error has a file and a line.

Seen before: an include that is a FIFO (or a FIFO as the main file) blocked forever; a
symlink loop, an include name over 255 bytes, arrays nested 1,000 deep and a 100,000-part
dotted header gave tracebacks or took 30 s; 30 includes × 5 levels ran for minutes; a
missing ``[machine]``, "at end of document" and an include of a folder had no line.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.conftest import MACHINES, run_vmctl

BASE = MACHINES / "base" / "pseries.toml"
LOCATED = re.compile(r"^(?P<file>[^\n:]+):(?P<line>\d+): error\[", re.M)


def machine(tmp_path: Path, body: str, name: str = "m.toml") -> Path:
    f = tmp_path / name
    f.write_text(f'include = ["{BASE}"]\n[machine]\nname = "m"\n{body}')
    return f


def located_errors(proc) -> list[tuple[str, int]]:
    return [(m["file"], int(m["line"])) for m in LOCATED.finditer(proc.stdout + proc.stderr)]


def check_fails_fast(*args: str, seconds: float = 8) -> "subprocess.CompletedProcess[str]":
    t0 = time.monotonic()
    proc = run_vmctl(*args, timeout=seconds + 20)
    took = time.monotonic() - t0
    assert took < seconds, f"took {took:.1f} s"
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc


def test_an_include_that_is_a_fifo_is_an_error_at_the_include_line(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.toml")
    f = tmp_path / "m.toml"
    f.write_text('include = ["pipe.toml"]\n[machine]\nname = "m"\n')
    proc = check_fails_fast("validate", str(f))
    assert "is a FIFO (named pipe), not a machine file" in proc.stdout
    assert located_errors(proc)[0][1] == 1


@pytest.mark.parametrize("command", ["validate", "show", "plan", "export"])
def test_a_fifo_as_the_main_file_is_an_error_at_once(tmp_path: Path, command: str):
    os.mkfifo(tmp_path / "pipe.toml")
    args = [command, str(tmp_path / "pipe.toml")] + (["--format", "argv"] if command == "export" else [])
    proc = check_fails_fast(*args)
    assert "is a FIFO (named pipe)" in proc.stdout + proc.stderr
    assert located_errors(proc), proc.stdout + proc.stderr


def test_a_device_as_an_include_is_refused_without_opening_it(tmp_path: Path):
    f = tmp_path / "m.toml"
    f.write_text('include = ["/dev/zero"]\n[machine]\nname = "m"\n')
    proc = check_fails_fast("validate", str(f))
    assert "is a character device" in proc.stdout


def test_an_include_of_a_folder_names_the_include_line(tmp_path: Path):
    (tmp_path / "dir.toml").mkdir()
    f = tmp_path / "m.toml"
    f.write_text('# a machine\n\ninclude = ["dir.toml"]\n[machine]\nname = "m"\n')
    proc = check_fails_fast("validate", str(f))
    assert "is a folder, not a machine file" in proc.stdout
    assert [(Path(p).name, n) for p, n in located_errors(proc)] == [("m.toml", 3)]


def test_a_symlink_loop_is_an_error(tmp_path: Path):
    (tmp_path / "a.toml").symlink_to(tmp_path / "b.toml")
    (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
    f = tmp_path / "m.toml"
    f.write_text('\ninclude = ["a.toml"]\n[machine]\nname = "m"\n')
    proc = check_fails_fast("validate", str(f))
    assert "too many levels of symbolic links" in proc.stdout
    assert located_errors(proc)[0][1] == 2
    proc = check_fails_fast("validate", str(tmp_path / "a.toml"))
    assert "symbolic links" in proc.stdout


def test_an_include_name_over_255_bytes_is_an_error(tmp_path: Path):
    f = tmp_path / "m.toml"
    f.write_text('\n\ninclude = ["%s.toml"]\n[machine]\nname = "m"\n' % ("x" * 300))
    proc = check_fails_fast("validate", str(f))
    assert "file name too long" in proc.stdout
    assert located_errors(proc)[0][1] == 3


def test_arrays_nested_1000_deep_are_refused_before_parsing(tmp_path: Path):
    f = machine(tmp_path, "[sim]\nseed = " + "[" * 1000 + "]" * 1000 + "\n")
    proc = check_fails_fast("validate", str(f))
    assert "nested more than 32 deep" in proc.stdout
    assert located_errors(proc)[0][1] == 5


def test_inline_tables_nested_deep_are_refused(tmp_path: Path):
    f = machine(tmp_path, "[sim]\nx = " + "{a=" * 500 + "1" + "}" * 500 + "\n")
    proc = check_fails_fast("validate", str(f))
    assert "nested more than 32 deep" in proc.stdout


def test_a_100000_part_dotted_header_is_refused_quickly(tmp_path: Path):
    f = machine(tmp_path, "[" + ".".join(["a"] * 100_000) + "]\n")
    proc = check_fails_fast("validate", str(f), seconds=5)
    assert "more than 64 parts" in proc.stdout


def test_brackets_inside_strings_are_not_nesting(tmp_path: Path):
    f = machine(tmp_path, '[boot]\nappend = "' + "[{" * 100 + '"\n')
    proc = run_vmctl("validate", str(f))
    assert "nested" not in proc.stdout


def test_an_include_bomb_stops_at_the_file_limit(tmp_path: Path):
    # level k includes level k+1 thirty times: 30**5 reads without a limit
    (tmp_path / "l5.toml").write_text("[sim]\nseed = 1\n")
    for k in range(4, -1, -1):
        incs = ", ".join(['"l%d.toml"' % (k + 1)] * 30)
        (tmp_path / f"l{k}.toml").write_text(f"include = [{incs}]\n")
    f = machine(tmp_path, "", name="m.toml")
    f.write_text('include = ["l0.toml", "%s"]\n[machine]\nname = "m"\n' % BASE)
    proc = check_fails_fast("validate", str(f), seconds=5)
    assert "more than 256 files" in proc.stdout
    assert located_errors(proc)


def test_an_include_chain_deeper_than_16_is_refused(tmp_path: Path):
    for k in range(20):
        (tmp_path / f"c{k}.toml").write_text(f'include = ["c{k + 1}.toml"]\n' if k < 19 else "")
    f = tmp_path / "m.toml"
    f.write_text('include = ["c0.toml"]\n[machine]\nname = "m"\n')
    proc = check_fails_fast("validate", str(f))
    assert "nest more than 16 files deep" in proc.stdout
    assert located_errors(proc)


def test_an_include_chain_of_16_is_fine(tmp_path: Path):
    # m → c0 → … → c14 → base: 16 includes deep
    for k in range(15):
        nxt = f'include = ["c{k + 1}.toml"]\n' if k < 14 else f'include = ["{BASE}"]\n'
        (tmp_path / f"c{k}.toml").write_text(nxt)
    f = tmp_path / "m.toml"
    f.write_text('include = ["c0.toml"]\n[machine]\nname = "m"\n')
    proc = run_vmctl("validate", str(f))
    assert proc.returncode == 0, proc.stdout


def test_missing_machine_section_has_a_line(tmp_path: Path):
    f = tmp_path / "m.toml"
    f.write_text("[sim]\nseed = 1\n")
    proc = run_vmctl("validate", str(f))
    assert proc.returncode == 1
    assert ("m.toml", 1) in [(Path(p).name, n) for p, n in located_errors(proc)]


def test_a_syntax_error_at_the_end_of_the_document_has_the_last_line(tmp_path: Path):
    f = tmp_path / "m.toml"
    f.write_text('[machine]\nname = "m"\nx = [1,\n')
    proc = run_vmctl("validate", str(f))
    assert proc.returncode == 1
    assert [(Path(p).name, n) for p, n in located_errors(proc)] == [("m.toml", 3)]
    assert "end of the file" in proc.stdout


def test_every_error_of_the_bad_fixtures_has_a_file_and_a_line():
    bad = sorted((Path(__file__).parents[1] / "fixtures" / "bad").glob("*.toml"))
    proc = run_vmctl("validate", *map(str, bad))
    assert proc.returncode == 1
    errors = [ln for ln in proc.stdout.splitlines() if ": error[" in ln]
    assert errors and all(re.match(r"^[^:]+:\d+: error\[", ln) for ln in errors), errors
