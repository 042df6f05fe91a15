"""Namespace/veth helpers for the NIC shim tests.

Uses ``offload.netns`` (the shared helpers) when it is on this branch, with a
minimal stand-in of the same names otherwise, so the tests read the same either way.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

try:
    from offload.netns import create_netns, delete_netns, ethtool_k, in_netns, ns_exec, sysfs_write  # noqa: F401
except ImportError:  # pragma: no cover - until offload.netns lands
    from offload.nic_shim._linux import in_netns  # noqa: F401

    def _run(argv, check=True):
        p = subprocess.run(list(map(str, argv)), capture_output=True, text=True)
        if check and p.returncode:
            raise RuntimeError(f"{' '.join(map(str, argv))}: {p.stderr.strip()}")
        return p

    def create_netns(name, disable_ipv6=True, **_):
        _run(["ip", "netns", "add", name])
        _run(["ip", "-n", name, "link", "set", "lo", "up"])
        if disable_ipv6:
            for k in ("all", "default"):
                ns_exec(name, ["sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{k}/disable_ipv6"])
        return name

    def delete_netns(name):
        _run(["ip", "netns", "del", name], check=False)

    def ns_exec(name, argv, check=True, input=None):
        return _run(["ip", "netns", "exec", name, *argv], check=check)

    def ethtool_k(name, dev, **features):
        args = []
        for k, v in features.items():
            args += [k.replace("_", "-"), ("on" if v else "off") if isinstance(v, bool) else v]
        ns_exec(name, ["ethtool", "-K", dev, *args])

    def sysfs_write(name, dev, attr, value):
        ns_exec(name, ["sh", "-c", f"echo {value} > /sys/class/net/{dev}/{attr}"])


def require_kernel():
    """Skip (fail in CI) unless this process can build namespaces and load XDP programs."""
    why = None
    if os.geteuid() != 0:
        why = "needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)"
    elif shutil.which("ip") is None or shutil.which("ethtool") is None:
        why = "ip/ethtool missing (make sysdeps installs them)"
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def ip(*args, ns=None, check=True):
    argv = ["ip"] + (["-n", ns] if ns else []) + list(map(str, args))
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()}")
    return p.stdout


_n = [0]


def names(tag: str, k: int):
    """``k`` namespace names off-shim-<pid>-<n>-<tag><i>."""
    _n[0] += 1
    return [f"off-shim-{os.getpid()}-{_n[0]}-{tag}{i}" for i in range(k)]


class Topo:
    """Namespaces and veth pairs that are all removed by :meth:`close`."""

    def __init__(self):
        self.ns = []

    def netns(self, name):
        create_netns(name)
        self.ns.append(name)
        return name

    def veth(self, ns_a, dev_a, ns_b, dev_b, mtu=1500, queues=1):
        ip("link", "add", dev_a, "netns", ns_a, "numtxqueues", queues, "numrxqueues", queues, "type", "veth",
           "peer", "name", dev_b, "netns", ns_b, "numtxqueues", queues, "numrxqueues", queues)
        for ns, d in ((ns_a, dev_a), (ns_b, dev_b)):
            ip("link", "set", d, "mtu", mtu, "up", ns=ns)

    def close(self):
        for n in self.ns:
            delete_netns(n)
        self.ns = []


@pytest.fixture
def topo():
    """A :class:`Topo` for one test (requires the kernel capabilities; removed afterwards)."""
    require_kernel()
    t = Topo()
    try:
        yield t
    finally:
        t.close()
