"""Network namespaces and veth pairs for test rigs (Linux, root / CAP_NET_ADMIN+CAP_SYS_ADMIN).

Small helpers around iproute2, ethtool and ``setns(2)`` so a test or a demo can
build a private two-namespace link, drive both ends from one process, and be
sure everything is removed afterwards::

    with veth_pair("off-mytest", mtu=1500) as vp:      # namespaces vp.ns_a, vp.ns_b
        ethtool_k(vp.ns_a, vp.dev_a, tx="off")          # make the kernel segment in software
        with in_netns(vp.ns_b):
            rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        ...                                             # rx stays in ns_b after the block

Facts these helpers rely on (measured on the project machine, see
``reference/afxdp-findings.md`` Q1/Q5):

* ``setns`` switches the *calling thread* only; a socket keeps the namespace
  it was created in, so create sockets inside :func:`in_netns` and use them
  anywhere afterwards.
* sysfs inside a namespace is only visible through ``ip netns exec`` (it is
  remounted there), hence :func:`sysfs_write` runs a shell in the namespace.
* IPv6 is disabled in the namespaces by default: otherwise DAD/MLD frames
  (``33:33:..``) appear in every capture.
* veth defaults to one queue per CPU; :func:`veth` asks for ``queues`` (1 by
  default) so frame order on the wire is deterministic.

Names are made unique with the pid and a counter (``<prefix>-<pid>-<n>``);
interface names must fit IFNAMSIZ (15 characters).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"

_counter = itertools.count()
_libc = None


class NetnsError(RuntimeError):
    """A namespace/veth/ethtool command failed; the message holds the command and its stderr."""


def available() -> tuple[bool, str]:
    """Whether this process can build namespaces here: ``(ok, reason if not)``."""
    if os.name != "posix" or not os.path.exists("/proc/self/ns/net"):
        return False, "not Linux"
    if os.geteuid() != 0:
        return False, "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    for tool in ("ip", "ethtool"):
        if shutil.which(tool) is None:
            return False, f"{tool} not installed (make sysdeps installs it)"
    return True, ""


def _run(argv, check=True, input=None) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, input=input)
    if check and p.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def unique_name(prefix: str) -> str:
    """``<prefix>-<pid>-<n>``: a namespace name no other process of ours uses."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


def create_netns(name: str | None = None, prefix: str = "off", disable_ipv6: bool = True) -> str:
    """Create a network namespace (a fresh unique name unless ``name`` is given), bring its
    loopback up, optionally disable IPv6 in it. Returns the name."""
    name = name or unique_name(prefix)
    _run(["ip", "netns", "add", name])
    try:
        _run(["ip", "-n", name, "link", "set", "lo", "up"])
        if disable_ipv6:
            sysctl(name, "net.ipv6.conf.all.disable_ipv6", 1)
            sysctl(name, "net.ipv6.conf.default.disable_ipv6", 1)
    except Exception:
        delete_netns(name)
        raise
    return name


def delete_netns(name: str) -> None:
    """Remove a namespace (its veth ends go with it). Missing namespaces are ignored."""
    _run(["ip", "netns", "del", name], check=False)


def ns_exec(name: str, argv, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` (list of str) inside namespace ``name`` (``ip netns exec``); text output."""
    return _run(["ip", "netns", "exec", name, *map(str, argv)], check=check, input=input)


def sysctl(name: str, key: str, value) -> None:
    """``sysctl -w key=value`` inside namespace ``name``."""
    path = "/proc/sys/" + key.replace(".", "/")
    ns_exec(name, ["sh", "-c", f"echo {value} > {path}"])


def sysfs_write(name: str, dev: str, attr: str, value) -> None:
    """Write ``/sys/class/net/<dev>/<attr>`` as seen inside namespace ``name``
    (e.g. ``gro_flush_timeout`` in ns, ``napi_defer_hard_irqs``)."""
    ns_exec(name, ["sh", "-c", f"echo {value} > /sys/class/net/{dev}/{attr}"])


def ethtool_k(name: str, dev: str, **features) -> None:
    """``ethtool -K dev feat on|off ...`` inside namespace ``name``. Feature names use
    ``_`` for ``-`` (``rx_udp_gro_forwarding="on"``); values are "on"/"off" or bools."""
    args = []
    for k, v in features.items():
        if isinstance(v, bool):
            v = "on" if v else "off"
        args += [k.replace("_", "-"), v]
    ns_exec(name, ["ethtool", "-K", dev, *args])


def ethtool_show(name: str, dev: str) -> dict[str, str]:
    """``ethtool -k`` as a dict ``feature -> "on"/"off"`` (suffixes like "[fixed]" dropped)."""
    out = ns_exec(name, ["ethtool", "-k", dev]).stdout
    feats = {}
    for line in out.splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            feats[k.strip()] = v.split()[0] if v.split() else ""
    return feats


def set_mtu(name: str, dev: str, mtu: int) -> None:
    _run(["ip", "-n", name, "link", "set", dev, "mtu", str(int(mtu))])


def ifindex(name: str, dev: str) -> int:
    """Interface index of ``dev`` inside namespace ``name``."""
    out = _run(["ip", "-n", name, "-o", "link", "show", dev]).stdout
    return int(out.split(":", 1)[0])


def veth(ns_a: str, dev_a: str, ns_b: str, dev_b: str, mtu: int = 1500, queues: int = 1) -> None:
    """A veth pair ``dev_a`` (in ``ns_a``) <-> ``dev_b`` (in ``ns_b``), both up, with the given
    MTU and ``queues`` TX/RX queues on each end."""
    q = str(int(queues))
    _run(["ip", "link", "add", dev_a, "netns", ns_a, "numtxqueues", q, "numrxqueues", q,
          "type", "veth", "peer", "name", dev_b, "netns", ns_b, "numtxqueues", q, "numrxqueues", q])
    for ns, dev in ((ns_a, dev_a), (ns_b, dev_b)):
        _run(["ip", "-n", ns, "link", "set", dev, "mtu", str(int(mtu)), "up"])


@dataclass
class VethPair:
    """Two namespaces joined by one veth pair (``dev_a`` in ``ns_a``, ``dev_b`` in ``ns_b``)."""

    ns_a: str
    ns_b: str
    dev_a: str = "offa0"
    dev_b: str = "offb0"
    mtu: int = 1500
    extra: list = field(default_factory=list)   # further (dev_a, dev_b) pairs added with add_veth

    def add_veth(self, dev_a: str, dev_b: str, mtu: int | None = None, queues: int = 1) -> None:
        """Another veth pair between the same two namespaces."""
        veth(self.ns_a, dev_a, self.ns_b, dev_b, mtu or self.mtu, queues)
        self.extra.append((dev_a, dev_b))

    def set_mtu(self, mtu: int, dev_a: str | None = None, dev_b: str | None = None) -> None:
        set_mtu(self.ns_a, dev_a or self.dev_a, mtu)
        set_mtu(self.ns_b, dev_b or self.dev_b, mtu)
        if dev_a is None:
            self.mtu = int(mtu)

    def close(self) -> None:
        delete_netns(self.ns_a)
        delete_netns(self.ns_b)


@contextmanager
def veth_pair(prefix: str = "off", mtu: int = 1500, queues: int = 1,
              dev_a: str = "offa0", dev_b: str = "offb0", disable_ipv6: bool = True):
    """Context manager: two fresh namespaces ``<prefix>-<pid>-<n>-a/-b`` joined by a veth pair.
    Both namespaces are deleted on exit, also when the body raises."""
    base = unique_name(prefix)
    vp = VethPair(base + "-a", base + "-b", dev_a, dev_b, mtu)
    try:
        create_netns(vp.ns_a, disable_ipv6=disable_ipv6)
        create_netns(vp.ns_b, disable_ipv6=disable_ipv6)
        veth(vp.ns_a, dev_a, vp.ns_b, dev_b, mtu, queues)
        yield vp
    finally:
        vp.close()


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


@contextmanager
def in_netns(name: str):
    """Switch the calling thread into namespace ``name`` for the block, then back.

    Sockets created inside the block belong to ``name`` for their whole life.
    Only this thread moves; other threads of the process stay where they are.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_RUN_DIR, name), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)
