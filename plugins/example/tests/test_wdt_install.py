"""`pip install` makes the plugin appear everywhere; `pip uninstall` makes it disappear.

A throwaway virtual environment that sees this one's packages (vmctl, typer, …) gets the
plugin installed by pip, offline.  pip builds it from the project with setuptools when the
environment can build wheels (setuptools ≥ 70.1, or the ``wheel`` package); otherwise the
test packs the wheel itself from ``pyproject.toml`` (name, version, entry points, the
package under ``src/``) and pip installs that — the install and uninstall are pip's either way.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

MACHINE = """[machine]
name = "pip-guest"
arch = "x86_64"
type = "q35"
cpu = "max"
accel = "tcg"

[[device]]
kind = "i6300esb"
action = "pause"
"""


@pytest.fixture
def venv(tmp_path):
    """A venv whose site-packages chains to this interpreter's (no network needed)."""
    root = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "chain.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(python), *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300)

    def pip(*args: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check",
                               *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    run.pip = pip  # type: ignore[attr-defined]
    return run


def can_build_wheels() -> bool:
    import setuptools

    version = tuple(int(x) for x in setuptools.__version__.split(".")[:2])
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def pack_wheel(project: Path, out: Path) -> Path:
    """A pure-Python wheel from ``project``'s pyproject.toml and its ``src/`` package."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    dist = meta["name"].replace("-", "_")
    info = f"{dist}-{meta['version']}.dist-info"
    wheel = out / f"{dist}-{meta['version']}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path in sorted((project / "src").rglob("*.py")):
            zf.write(path, str(path.relative_to(project / "src")))
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {meta['name']}\n"
                                        f"Version: {meta['version']}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: vmctl-test\n"
                                     "Root-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/entry_points.txt", "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
            for group, eps in meta["entry-points"].items()))
        zf.writestr(f"{info}/RECORD", "")
    return wheel


def plugins(venv) -> dict[str, dict]:
    proc = venv("-m", "vmctl", "plugins", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return {r["name"]: r for r in json.loads(proc.stdout)["plugins"]}


def test_pip_install_and_uninstall(venv, project, tmp_path):
    src = tmp_path / "src-copy"
    shutil.copytree(project, src, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    (tmp_path / "m.toml").write_text(MACHINE)
    assert "i6300esb" not in plugins(venv)

    target = str(src) if can_build_wheels() else str(pack_wheel(src, tmp_path))
    venv.pip("install", "--no-build-isolation", "--no-deps", "--no-index", target)
    row = plugins(venv)["i6300esb"]
    assert (row["status"], row["distribution"], row["builtin"]) == ("loaded", "vmctl-i6300esb", False)
    assert venv("-m", "vmctl", "validate", "m.toml").returncode == 0
    argv = json.loads(venv("-m", "vmctl", "export", "m.toml", "--format", "argv").stdout)
    assert argv[-4:] == ["-device", "i6300esb", "-action", "watchdog=pause"]
    origin = venv("-c", "import vmctl_i6300esb; print(vmctl_i6300esb.__file__)").stdout
    assert str(tmp_path / "venv") in origin  # the installed copy, not the checkout

    venv.pip("uninstall", "-y", "vmctl-i6300esb")
    assert "i6300esb" not in plugins(venv)
    proc = venv("-m", "vmctl", "validate", "--format", "json", "m.toml")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["diagnostics"][0]["code"] == "unknown-device-kind"
