"""The ``[async-pf]`` section (semantics.md §3.6)."""

from vmctl.api import Option, Section

ASYNC_PF = Section("async-pf", "Asynchronous page faults: the guest runs another task while the host "
                   "swaps a page in.", (
    Option("mode", "str", "auto (the accelerator's default), on, or off (x86: kvm-asyncpf, "
           "kvm-asyncpf-int, no-kvmapf)", default="auto", choices=("auto", "on", "off")),
    Option("experimental", "bool", "allow the unmerged arm64 RFC protocol (simulator only)", default=False),
), arches=("x86_64", "aarch64"))


def sections() -> list[Section]:
    """The sections this plugin contributes (``vmctl_sections``)."""
    return [ASYNC_PF]
