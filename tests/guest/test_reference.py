"""``kernel = "guest:ARCH"`` / ``initrd = "guest:ARCH"`` in machine files: resolved to the
cache's stable names, checked without fetching, fetched by ``run --backend qemu`` only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_vmctl
from tests.guest.conftest import SRC, FakeApt
from vmctl import guest
from vmctl.errors import VmctlError

P9 = """[machine]
name = "p9-ref"
arch = "ppc64"
type = "pseries"
cpu = "power9"
memory = "1G"
accel = "tcg"

[boot]
kernel = "{kernel}"
initrd = "{initrd}"
append = "console=hvc0"
"""


def write(tmp_path: Path, kernel: str = "guest:ppc64le", initrd: str = "guest:ppc64le") -> Path:
    path = tmp_path / "p9.toml"
    path.write_text(P9.format(kernel=kernel, initrd=initrd))
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache for this test (the CLI subprocesses inherit it)."""
    monkeypatch.setenv("VMCTL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_fetch(cache: Path, arch: str = "ppc64le") -> None:
    kw = {"release": "6.1.0-50-s390x", "image": "vmlinuz"} if arch == "s390x" else {}
    guest.fetch_guest(arch, runner=FakeApt(**kw), source=SRC)


def test_resolve_path_gives_the_stable_names(tmp_path: Path, cache: Path, vmctl_pm) -> None:
    from vmctl.config import load_machine

    m = load_machine(write(tmp_path), vmctl_pm)
    assert m.resolve_path("boot.kernel") == cache / "guest" / "ppc64le" / "kernel"
    assert m.resolve_path("boot.initrd") == cache / "guest" / "ppc64le" / "initrd"
    assert guest.reference_path("guest:nosucharch", "boot.kernel") is None
    assert guest.reference_path("guest:ppc64le", "boot.append") is None
    assert not (cache / "guest").exists()                 # resolving fetches nothing


def test_validate_notes_a_guest_not_fetched_yet_and_fetches_nothing(tmp_path: Path, cache: Path) -> None:
    path = write(tmp_path)
    proc = run_vmctl("validate", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == (
        f'{path}:10: note[boot.kernel]: boot.kernel = "guest:ppc64le": Debian\'s ppc64le kernel and vmctl\'s '
        f"busybox initramfs are not in the cache yet; vmctl run --backend qemu fetches them into "
        f"{cache}/guest/ppc64le (guest-not-fetched)")
    assert proc.stdout.splitlines()[1] == "  hint: or fetch them now: vmctl guest fetch ppc64le"
    assert proc.stdout.count("guest-not-fetched") == 1      # once per guest, not per key
    assert proc.stdout.rstrip().endswith("1 machine checked: all valid (1 note)")
    assert not (cache / "guest").exists()


def test_a_cached_guest_validates_silently(tmp_path: Path, cache: Path) -> None:
    fake_fetch(cache)
    proc = run_vmctl("validate", "--format", "json", str(write(tmp_path)))
    assert proc.returncode == 0 and json.loads(proc.stdout)["diagnostics"] == []


def test_plan_and_export_print_the_cache_paths_without_fetching(tmp_path: Path, cache: Path) -> None:
    path = write(tmp_path)
    argv = json.loads(run_vmctl("export", str(path), "--format", "argv", check=True).stdout)
    k = argv.index("-kernel")
    assert argv[k:k + 4] == ["-kernel", f"{cache}/guest/ppc64le/kernel", "-initrd", f"{cache}/guest/ppc64le/initrd"]
    plan = json.loads(run_vmctl("plan", str(path), "--format", "json", check=True).stdout)
    assert f"{cache}/guest/ppc64le/initrd" in plan["argv"]
    xml = run_vmctl("export", str(path), "--format", "libvirt-xml", check=True).stdout
    assert f"<kernel>{cache}/guest/ppc64le/kernel</kernel>" in xml
    assert not (cache / "guest").exists()


@pytest.mark.parametrize("value, message, hint", [
    ("guest:nosucharch", 'boot.kernel = "guest:nosucharch" names no guest vmctl can fetch',
     "valid: guest:ppc64le (vmctl guest list shows them)"),
    ("guest:ppc64el", 'boot.kernel = "guest:ppc64el" names no guest vmctl can fetch',
     'did you mean "guest:ppc64le"? valid: guest:ppc64le (vmctl guest list shows them)'),
    ("guest:", 'boot.kernel = "guest:" names no guest vmctl can fetch',
     'did you mean "guest:ppc64le"? valid: guest:ppc64le (vmctl guest list shows them)'),
    ("guest:s390x", 'boot.kernel = "guest:s390x" is a guest for arch "s390x", but machine.arch = "ppc64"',
     "use guest:ppc64le"),
])
def test_bad_references_are_one_error_with_file_line_key_and_valid_names(tmp_path: Path, cache: Path,
                                                                          value: str, message: str, hint: str) -> None:
    path = write(tmp_path, kernel=value)
    proc = run_vmctl("validate", str(path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stdout.splitlines() if ": error[" in ln]
    code = "guest-arch" if "machine.arch" in message else "unknown-guest"
    assert errors == [f"{path}:10: error[boot.kernel]: {message} ({code})"]
    assert f"  hint: {hint}" in proc.stdout.splitlines()
    # run refuses it the same way, before anything starts or is fetched
    run = run_vmctl("run", "--backend", "qemu", str(path))
    assert run.returncode == 1 and message in run.stderr and not (cache / "guest").exists()


def test_a_machine_arch_without_a_guest_is_told_so(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "x86.toml"
    path.write_text('[machine]\nname = "x"\narch = "x86_64"\ntype = "q35"\ncpu = "qemu64"\naccel = "tcg"\n\n'
                    '[boot]\nkernel = "guest:ppc64le"\n')
    proc = run_vmctl("validate", str(path))
    assert proc.returncode == 1
    assert 'is a guest for arch "ppc64", but machine.arch = "x86_64"' in proc.stdout
    assert "hint: vmctl fetches no x86_64 guest (only guest:ppc64le, guest:s390x); use a kernel file" in proc.stdout


def test_a_missing_kernel_file_hints_at_the_guest(tmp_path: Path, cache: Path) -> None:
    proc = run_vmctl("validate", str(write(tmp_path, kernel="vmlinux")))
    assert proc.returncode == 1
    assert 'hint: paths are relative to the file that sets them; kernel = "guest:ppc64le" boots Debian\'s guest ' \
        "(vmctl guest list)" in proc.stdout


def test_ensure_fetches_once_with_one_progress_line(tmp_path: Path, cache: Path, vmctl_pm,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from vmctl.config import load_machine

    apt = FakeApt()
    monkeypatch.setattr(guest, "system_source", lambda: SRC)
    monkeypatch.setattr(guest.subprocess, "run", apt)
    m = load_machine(write(tmp_path), vmctl_pm)
    lines: list[str] = []
    (g,) = guest.ensure_for_machine(m, lines.append)
    assert lines == [f"fetching guest ppc64le (Debian's linux-image-powerpc64le and busybox-static) "
                     f"into {cache}/guest/ppc64le (once)"]
    assert m.resolve_path("boot.kernel").resolve() == g.kernel.path
    assert m.resolve_path("boot.initrd").resolve() == g.initrd.path
    calls, lines[:] = len(apt.calls), []
    guest.ensure_for_machine(m, lines.append)
    assert lines == [] and len(apt.calls) == calls            # cached: silent, and nothing written
    plain = load_machine(write(tmp_path, kernel="/boot/vmlinux", initrd="/boot/initrd"), vmctl_pm)
    assert guest.ensure_for_machine(plain, lines.append) == [] and lines == []


@pytest.mark.parametrize("backend, fetches", [("qemu", True), ("sim", False)])
def test_run_fetches_for_the_qemu_backend_only(tmp_path: Path, cache: Path, vmctl_pm, backend: str, fetches: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from vmctl.config import load_machine
    from vmctl.runtime.launch import Launch

    seen: list[str] = []

    def ensure(machine, notify):
        seen.append(machine.name)
        raise VmctlError("stop here")

    monkeypatch.setattr(guest, "ensure_for_machine", ensure)
    launch = Launch(load_machine(write(tmp_path), vmctl_pm), vmctl_pm, backend=backend, name="ref-run")
    if fetches:
        with pytest.raises(VmctlError, match="stop here"):
            launch.start()
        assert seen == ["p9-ref"] and not os.path.exists(launch.inst.dir)
    else:
        launch.start()
        try:
            assert seen == []
        finally:
            run_vmctl("stop", "ref-run")
