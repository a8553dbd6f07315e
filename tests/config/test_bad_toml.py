"""One named bad-TOML fixture per failure mode: the message, key and line a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_vmctl

BAD = Path(__file__).resolve().parent.parent / "fixtures" / "bad"

# fixture → (code, key, line, words the message must contain)
CASES = {
    "syntax": ("toml-syntax", "", 7, "TOML syntax error"),
    "wrong-type": ("type", "machine.cpus", 6, "must be an integer"),
    "out-of-range": ("range", "machine.cpus", 6, "below the minimum 1"),
    "unknown-key": ("unknown-key", "machine.memroy", 7, "unknown key 'memroy'"),
    "unknown-section": ("unknown-section", "iqr", 7, "unknown section [iqr]"),
    "unknown-device-kind": ("unknown-device-kind", "device[0].kind", 8, "unknown device kind 'vfio-pcie'"),
    "bad-choice": ("choice", "irq.ic-mode", 8, 'must be one of "xics" | "xive" | "dual"'),
    "missing-key": ("missing-key", "machine", 1, "needs 'cpu'"),
    "max-cpus-below-cpus": ("range", "machine.max-cpus", 7, "max-cpus (2) is less than cpus (4)"),
    "bad-size": ("value", "machine.memory", 6, "is not a size"),
    "boot-file-missing": ("file-not-found", "boot.kernel", 8, "boot.kernel not found"),
    "cycle-a": ("include-cycle", "include", 1, "cycle-a.toml → tests/fixtures/bad/cycle-b.toml → "),
    "missing-include": ("include-not-found", "include", 1, "included file not found: base/nope.toml"),
    "bad-arch": ("choice", "machine.arch", 3, "must be one of"),
    "device-wrong-arch": ("arch", "device[0].kind", 8, "device kind 'vfio-ap' needs s390x"),
    "too-many-devices": ("too-many-devices", "device[1]", 12, "at most 1 vfio-ap device"),
    "list-out-of-range": ("range", "device[0].adapters", 9, "value 300 is above the maximum 255"),
    "duplicate-device-id": ("duplicate-id", "device[1].id", 13, "device id 'a' is already used by device[0]"),
    "section-not-table": ("type", "irq", 1, "irq must be a table"),
    "duplicate-table": ("toml-syntax", "", 10, "TOML syntax error"),
    "device-without-kind": ("missing-key", "device[0]", 7, "device[0] has no kind"),
}

HINTS = {
    "unknown-key": 'did you mean "memory"?',
    "unknown-section": 'did you mean "irq"?',
    "unknown-device-kind": 'did you mean "vfio-pci"?',
    "bad-choice": 'did you mean "xive"?',
    "bad-arch": "riscv64",
}


def _validate_json(path: Path) -> tuple[int, dict]:
    import json

    proc = run_vmctl("validate", "--format", "json", str(path))
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_fixture_gives_one_clear_message(name: str) -> None:
    code, key, line, words = CASES[name]
    rc, report = _validate_json(BAD / f"{name}.toml")
    assert rc == 1
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert len(errors) == 1, errors
    d = errors[0]
    assert (d["code"], d["key"], d["line"]) == (code, key, line)
    assert words in d["message"]
    # a cycle is reported where it closes: the include line of the last file in the chain
    assert d["file"].endswith("cycle-b.toml" if name == "cycle-a" else f"{name}.toml")
    assert d["hint"], "every error carries a hint"
    if name in HINTS and name != "bad-arch":
        assert HINTS[name] in d["hint"]


def test_text_output_reads_like_a_compiler(tmp_path: Path) -> None:
    proc = run_vmctl("validate", str(BAD / "bad-choice.toml"))
    assert proc.returncode == 1
    first, hint = proc.stdout.splitlines()[:2]
    assert first.startswith("tests/fixtures/bad/bad-choice.toml:8: error[irq.ic-mode]: ")
    assert first.endswith("(spapr-irq: choice)")
    assert hint == '  hint: did you mean "xive"?'
    assert "Traceback" not in proc.stderr


def test_non_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "latin1.toml"
    p.write_bytes(b'[machine]\nname = "caf\xe9"\n')
    rc, report = _validate_json(p)
    assert rc == 1
    (d,) = report["diagnostics"]
    assert (d["code"], d["line"]) == ("not-utf8", 2)
    assert "iconv" in d["hint"]


def test_file_over_one_mib(tmp_path: Path) -> None:
    p = tmp_path / "huge.toml"
    p.write_text("# " + "x" * (1024 * 1024) + "\n")
    rc, report = _validate_json(p)
    assert rc == 1
    assert report["diagnostics"][0]["code"] == "file-too-large"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # CI runs as root, which reads any file: make open() refuse as it would for a user
    import builtins

    from vmctl.config.loader import Loader, MachineError

    p = tmp_path / "secret.toml"
    p.write_text("[machine]\n")
    real_open = builtins.open

    def refuse(file, *a, **kw):
        if str(file) == str(p):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr(builtins, "open", refuse)
    with pytest.raises(MachineError) as info:
        Loader().parse(p)
    (d,) = info.value.diagnostics
    assert d.code == "unreadable" and "permission denied" in d.message and d.hint


def test_folder_without_machines_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_vmctl("validate", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no machine files (*.toml) in folder")
    assert "hint:" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_path_is_a_usage_error() -> None:
    proc = run_vmctl("validate", "no/such/machine.toml")
    assert proc.returncode == 2
    assert "no such file or folder: no/such/machine.toml" in proc.stderr


def test_unknown_option_is_a_usage_error() -> None:
    proc = run_vmctl("validate", "--bogus", "machines")
    assert proc.returncode == 2


def test_commands_refuse_invalid_machines_without_traceback() -> None:
    for cmd in (["plan"], ["export", "--format", "argv"], ["show"]):
        proc = run_vmctl(*cmd, str(BAD / "unknown-key.toml"))
        assert proc.returncode == 1, cmd
        assert "unknown key 'memroy'" in proc.stderr
        assert "Traceback" not in proc.stderr
