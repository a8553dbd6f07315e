"""TAB in real shells: bash (the function driven by COMP_WORDS/COMP_CWORD, and interactively),
fish (``complete -C``) and zsh (interactively, under tmux)."""

from __future__ import annotations

import pytest

from tests.completion.conftest import COMPLETIONS, FIXTURES


@pytest.fixture
def machines(shells):
    (shells.cwd / "machines" / "base").mkdir(parents=True)
    (shells.cwd / "machines" / "p9.toml").write_text("")
    (shells.cwd / "machines" / "notes.txt").write_text("")
    (shells.cwd / "mine.toml").write_text("")
    return shells


# -- bash ---------------------------------------------------------------------------------
def test_bash_registers_the_function(shells):
    assert shells.bash_spec() == "complete -F _vmctl vmctl"


def test_bash_commands_options_and_choices(shells):
    assert shells.bash("vmctl", "va") == ["validate"]
    assert shells.bash("vmctl", "host", "") == ["check", "apply", "undo"]
    assert shells.bash("vmctl", "validate", "--b") == ["--backend"]
    assert shells.bash("vmctl", "validate", "--backend", "") == ["sim", "qemu"]
    # bash splits --backend=q at "=": only the part after it is replaced
    assert shells.bash("vmctl", "validate", "--backend", "=", "q") == ["qemu"]
    assert shells.bash("vmctl", "export", "m.toml", "-f", "libv") == ["libvirt-xml"]


def test_bash_machine_files_and_folders(machines):
    assert sorted(machines.bash("vmctl", "plan", "m")) == ["machines", "mine.toml"]
    assert sorted(machines.bash("vmctl", "validate", "machines/")) == ["machines/base", "machines/p9.toml"]
    assert machines.bash("vmctl", "host", "apply", "--sysfs-root", "machines/") == ["machines/base"]


def test_bash_instances_and_plugin_facts(shells):
    shells.with_plugin()
    shells.instance("web-1")
    shells.instance("web-2", backend="qemu", exit_code=1)
    assert shells.bash("vmctl", "demo", "connect", "web") == ["web-1", "web-2"]
    assert shells.bash("vmctl", "demo", "describe", "") == ["shell-demo", "vfio-ap", "vfio-pci"]
    assert "shellplug" in shells.bash("vmctl", "demo", "about", "")


def test_bash_pci_addresses_from_the_host_tree(shells, fake_sysfs):
    fake_sysfs.pci("viable")
    shells.with_plugin()
    root = str(fake_sysfs.root)
    # COMP_WORDS as bash splits "0000:0" at the colon
    got = shells.bash("vmctl", "demo", "attach", "--sysfs-root", root, "0000", ":", "0")
    assert got == ["00:1f.3", "01:00.0", "01:00.1", "03:00.0"]  # bridges are not offered


def test_bash_built_in_plugin_groups_complete_from_the_plugins_not_the_table(shells, fake_sysfs):
    """``ap``/``vfio`` are not in vmctl's own table; their words and host kinds still complete."""
    fake_sysfs.pci("viable")
    root = str(fake_sysfs.root)
    assert {"ap", "vfio"} <= set(shells.bash("vmctl", ""))
    assert shells.bash("vmctl", "vfio", "") == ["show"]
    got = shells.bash("vmctl", "vfio", "show", "--sysfs-root", root, "0000", ":", "0")
    assert got == ["00:1f.3", "01:00.0", "01:00.1", "03:00.0"]


def test_bash_interactive_tab(machines, tmux):
    sh = tmux(["env", "PS1=bash$ ", "bash", "--norc", "--noprofile", "-i"], ready="bash$")
    sh.type(f"source {COMPLETIONS / 'vmctl.bash'}", "Enter", "clear", "Enter")
    sh.type("vmctl valid", "Tab")
    sh.wait_for("vmctl validate ")
    sh.type("--backend=q", "Tab")
    sh.wait_for("vmctl validate --backend=qemu ")
    sh.type("machines/p", "Tab")
    sh.wait_for("--backend=qemu machines/p9.toml")


# -- fish ---------------------------------------------------------------------------------
def test_fish_commands_with_descriptions(shells):
    got = dict(shells.fish("vmctl "))
    assert got["validate"].startswith("Check machines alone and together")
    assert {"show", "plan", "export", "plugins", "host"} <= set(got)
    assert "unpause" not in got  # OpenBSD's vmctl completion is shadowed, not merged
    assert got["console"].startswith("Attach to the machine's console")  # ours, not OpenBSD's


def test_fish_options_values_and_files(machines):
    assert [c for c, _ in machines.fish("vmctl validate --for")] == ["--format"]
    assert sorted(c for c, _ in machines.fish("vmctl validate --format=")) == [
        "--format=json", "--format=text"]
    assert dict(machines.fish("vmctl export m.toml --format l"))["libvirt-xml"].startswith("a libvirt")
    assert sorted(c for c, _ in machines.fish("vmctl show machines/")) == [
        "machines/base/", "machines/p9.toml"]


def test_fish_instances_and_host_resources(shells, fake_sysfs):
    fake_sysfs.pci("non-viable")
    shells.with_plugin()
    shells.instance("db-1")
    assert shells.fish("vmctl demo connect ") == [("db-1", "sim, running")]
    got = dict(shells.fish(f"vmctl demo attach --sysfs-root {fake_sysfs.root} 0000:01"))
    assert set(got) == {"0000:01:00.0", "0000:01:00.1"}
    assert "group 1" in got["0000:01:00.0"]


def test_fish_broken_completer_gives_nothing_and_prints_nothing(shells, fake_sysfs):
    fake_sysfs.write("/sys/bus/ap/shellplug-apqns", "05.0004 05.00ab 06.0004")
    shells.with_plugin()
    root = fake_sysfs.root
    assert sorted(c for c, _ in shells.fish(f"vmctl demo queue --sysfs-root {root} 05.")) == [
        "05.0004", "05.00ab"]
    assert shells.fish(f"vmctl demo queue --sysfs-root {root} --domain ") == []


# -- zsh ----------------------------------------------------------------------------------
@pytest.fixture
def zsh(shells, tmux):
    zdot = shells.tmp / "zdot"
    zdot.mkdir()
    functions = shells.tmp / "zfunc"
    functions.mkdir()
    (functions / "_vmctl").write_text((COMPLETIONS / "_vmctl").read_text())
    (zdot / ".zshrc").write_text(
        f"fpath=({functions} $fpath)\nautoload -Uz compinit && compinit -u -D\n"
        "zstyle ':completion:*' list-rows-first true\nPS1='zsh%% '\n")
    shells.env["ZDOTDIR"] = str(zdot)
    return lambda: tmux(["zsh", "-i"], ready="zsh%")


def test_zsh_completes_commands_options_and_values(machines, zsh):
    sh = zsh()
    sh.type("vmctl exp", "Tab")
    sh.wait_for("zsh% vmctl export ")
    sh.type("machines/p", "Tab")
    sh.wait_for("vmctl export machines/p9.toml ")
    sh.type("--format ", "Tab")
    screen = sh.wait_for("libvirt-xml")
    assert "argv" in screen and "sh" in screen and "a libvirt domain definition" in screen


def test_zsh_completes_instances_and_pci_addresses(shells, fake_sysfs, zsh):
    fake_sysfs.pci("viable")
    shells.with_plugin(FIXTURES)
    shells.instance("only-one")
    sh = zsh()
    sh.type("vmctl demo connect ", "Tab")
    sh.wait_for("vmctl demo connect only-one ")
    sh.type("C-u")
    sh.type(f"vmctl demo attach --sysfs-root {fake_sysfs.root} 0000:03", "Tab")
    sh.wait_for("0000:03:00.0 ")
