"""vmctl's guest initramfs: Debian's ``busybox-static``, a few kernel modules and an ``/init``.

:func:`build` packs, as a gzip-compressed ``newc`` cpio (:mod:`vmctl.cpio`)::

    /bin/busybox            Debian's static busybox for the guest architecture
    /bin/sh -> busybox      the rest of the applets are linked by ``busybox --install -s``
    /init                   INIT below: mounts, banner, modules, DHCP, /proc/interrupts, shell
    /etc/udhcpc.script      configures the address udhcpc leased (ifconfig, route, resolv.conf)
    /lib/modules/NAME.ko    network and disk drivers Debian builds as modules (virtio_net,
    /lib/modules/order      virtio_blk, ibmveth …: ``GuestArch.modules`` in :mod:`vmctl.guest`),
                            loaded by /init in the order listed
    /dev/console            so the kernel can open the console before devtmpfs is mounted
    /proc /sys /tmp /run /root /sbin /usr/bin /usr/sbin   empty folders

The console output is meant to be read by programs too: the banner starts with
``vmctl-guest:``, ``/proc/interrupts`` is printed once between ``--- /proc/interrupts ---``
and ``--- end /proc/interrupts ---``, and the shell's prompt is ``vmctl-guest# ``.

Modules' dependencies come from each ``.ko``'s ``.modinfo`` section (``depends=``): Debian's
package holds no ``modules.dep`` (``depmod`` runs at install). :func:`load_order` puts every
dependency before the module that needs it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping

from vmctl.cpio import Archive, gzip_bytes

#: Bump when INIT, the script or the layout change: cached initramfs files are rebuilt.
FORMAT = 1
PROMPT = "vmctl-guest# "
INTERRUPTS_BEGIN = "--- /proc/interrupts ---"
INTERRUPTS_END = "--- end /proc/interrupts ---"

INIT = r"""#!/bin/sh
# vmctl guest init (format @FORMAT@): Debian's busybox-static, packed by vmctl.
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root TERM=vt100
mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q " /dev " /proc/mounts || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
hostname vmctl-guest
echo
echo "vmctl-guest: busybox @BUSYBOX@ on Linux $(uname -r) $(uname -m), $(nproc) CPUs, console $(cat /sys/class/tty/console/active 2>/dev/null)"
for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m.ko" 2>/dev/null || echo "vmctl-guest: insmod $m failed"
done
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  udhcpc -i eth0 -s /etc/udhcpc.script -n -q -t 5 -T 1 >/dev/null 2>&1 \
    || echo "vmctl-guest: eth0: no DHCP lease"
fi
echo "@BEGIN@"
cat /proc/interrupts
echo "@END@"
export PS1='@PROMPT@'
while :; do
  setsid cttyhack sh
  echo "vmctl-guest: shell exited; starting another (poweroff -f stops the machine)"
done
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
# udhcpc hook (busybox): $1 is the event, the lease is in the environment.
case "$1" in
deconfig)
  ifconfig "$interface" 0.0.0.0 up
  ;;
bound|renew)
  ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
  if [ -n "$router" ]; then
    route del default 2>/dev/null
    route add default gw "${router%% *}" dev "$interface"
  fi
  : > /etc/resolv.conf
  for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
  echo "vmctl-guest: $interface $ip netmask ${subnet:-255.255.255.0} router ${router:-none} (DHCP)" > /dev/console
  ;;
esac
exit 0
"""

def init_script(busybox_version: str) -> str:
    """``/init`` with the busybox version in its banner."""
    return (INIT.replace("@FORMAT@", str(FORMAT)).replace("@BUSYBOX@", busybox_version)
            .replace("@BEGIN@", INTERRUPTS_BEGIN).replace("@END@", INTERRUPTS_END)
            .replace("@PROMPT@", PROMPT))


# -- kernel modules -------------------------------------------------------------------------
def modinfo(ko: bytes) -> dict[str, str]:
    """``key=value`` pairs of an ELF64 module's ``.modinfo`` section (either byte order)."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2:
        raise ValueError("not an ELF64 object")
    end = "<" if ko[5] == 1 else ">"
    shoff, = struct.unpack_from(end + "Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", ko, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _typ, _flags, _addr, off, size = struct.unpack_from(end + "IIQQQQ", ko, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        if ko[stroff + name:ko.index(b"\0", stroff + name)] == b".modinfo":
            out: dict[str, str] = {}
            for item in ko[off:off + size].split(b"\0"):
                key, eq, value = item.decode(errors="replace").partition("=")
                if eq:
                    out.setdefault(key, value)
            return out
    raise ValueError("no .modinfo section")


def load_order(wanted: Iterable[str], depends: Callable[[str], Iterable[str] | None]) -> list[str]:
    """``wanted`` and their dependencies, each after all it depends on.

    ``depends(name)`` gives the modules ``name`` needs (its ``.modinfo`` ``depends=``), or
    None when there is no such module file: built into the kernel (or absent), so skipped.
    """
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        deps = depends(name)
        if deps is None:
            return
        if name in visiting:
            raise ValueError(f"module dependency cycle through {name}")
        visiting.add(name)
        for dep in deps:
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name)
    return order


def depends_of(info: Mapping[str, str]) -> list[str]:
    return [d for d in info.get("depends", "").split(",") if d]


# -- the archive ----------------------------------------------------------------------------
def build(busybox: bytes, busybox_version: str, modules: Mapping[str, bytes] | None = None,
          order: Iterable[str] = ()) -> bytes:
    """The gzip-compressed initramfs (see the module docstring); reproducible bytes."""
    modules = modules or {}
    order = [m for m in order if m in modules]
    a = Archive()
    for d in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "root", "run", "sbin", "sys", "tmp",
              "usr", "usr/bin", "usr/sbin"):
        a.dir(d, 0o1777 if d == "tmp" else 0o700 if d == "root" else 0o755)
    a.chardev("dev/console", 5, 1)
    a.file("bin/busybox", busybox, 0o755)
    a.symlink("bin/sh", "busybox")
    a.file("init", init_script(busybox_version).encode(), 0o755)
    a.file("etc/udhcpc.script", UDHCPC_SCRIPT.encode(), 0o755)
    for name in order:
        a.file(f"lib/modules/{name}.ko", modules[name])
    a.file("lib/modules/order", "".join(f"{m}\n" for m in order).encode())
    return gzip_bytes(a.bytes())
