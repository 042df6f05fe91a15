"""Namespace/veth set-up for the NIC shim tests, on top of ``offload.netns``:
three-namespace topologies named off-shim-<pid>-..., all removed by ``Topo.close``."""

from __future__ import annotations

import os
import subprocess

import pytest

from offload.netns import available, create_netns, delete_netns, ethtool_k, in_netns, ns_exec, sysfs_write  # noqa: F401
from offload.netns import veth as _veth


def require_kernel():
    """Skip (fail in CI) unless this process can build namespaces and load XDP programs."""
    ok, why = available()
    if ok and not os.path.exists("/dev/net/tun"):
        ok, why = False, "no /dev/net/tun (tap ports)"
    if not ok:
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
        _veth(ns_a, dev_a, ns_b, dev_b, mtu=mtu, queues=queues)

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
