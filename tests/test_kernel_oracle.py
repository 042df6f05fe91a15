"""The kernel oracle and the netns helpers it is built on: they must do what they claim,
or every test comparing against the kernel compares against nothing."""

import os
import socket
import subprocess

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from offload import netns
from offload.csum import raw_sum

pytestmark = pytest.mark.kernel

MAC = dict(src="02:00:00:00:00:02", dst="02:00:00:00:00:03")


def _need_root():
    ok, why = netns.available()
    if not ok:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why)
        pytest.skip(why)


def _partial(frame: bytes, l3: int, proto: int, csum_at: int) -> bytes:
    """Put the folded IPv4 pseudo-header sum (CHECKSUM_PARTIAL convention) into the L4 field."""
    b = bytearray(frame)
    ihl = (b[l3] & 15) * 4
    l4len = len(b) - l3 - ihl
    ps = raw_sum(bytes(b[l3 + 12:l3 + 20]) + bytes([0, proto]) + l4len.to_bytes(2, "big"))
    b[l3 + ihl + csum_at:l3 + ihl + csum_at + 2] = ps.to_bytes(2, "big")
    return bytes(b)


def _valid(frame: bytes) -> bool:
    e = Ether(frame)
    ip = e[IP]
    l4 = e[TCP] if TCP in e else e[UDP]
    got = (ip.chksum, l4.chksum)
    del ip.chksum
    del l4.chksum
    e2 = Ether(bytes(e))
    return got == (e2[IP].chksum, (e2[TCP] if TCP in e2 else e2[UDP]).chksum)


def _netns_list():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_veth_pair_cleans_up_on_error_and_in_netns_restores():
    _need_root()
    own = os.stat("/proc/thread-self/ns/net").st_ino
    with pytest.raises(RuntimeError):
        with netns.veth_pair("off-gso-t", mtu=2000) as vp:
            assert vp.ns_a in _netns_list() and vp.ns_b in _netns_list()
            assert netns.ns_exec(vp.ns_a, ["cat", f"/sys/class/net/{vp.dev_a}/mtu"]).stdout.strip() == "2000"
            with netns.in_netns(vp.ns_b):
                assert os.stat("/proc/thread-self/ns/net").st_ino != own
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            assert os.stat("/proc/thread-self/ns/net").st_ino == own
            s.bind((vp.dev_b, 0))       # the socket stays in ns_b: dev_b resolves there only
            s.close()
            assert netns.ethtool_show(vp.ns_a, vp.dev_a)["generic-receive-offload"] == "off"
            raise RuntimeError("boom")
    assert vp.ns_a not in _netns_list() and vp.ns_b not in _netns_list()


def test_kernel_gso_tcp4_matches_findings(kernel_oracle):
    pay = bytes(range(256)) * 78 + b"x" * 32            # 20000 B
    p = Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF", id=7) / \
        TCP(sport=1, dport=2, seq=1000, flags="FPAC") / Raw(pay)
    f = _partial(bytes(p), 14, 6, 16)
    segs = kernel_oracle.gso(f, (1, 1, 54, 1448, 34, 16))
    assert [len(s) for s in segs] == [1502] * 13 + [54 + 20000 - 13 * 1448]
    assert all(_valid(s) for s in segs)
    e = [Ether(s) for s in segs]
    assert [x[TCP].seq for x in e] == [1000 + 1448 * i for i in range(14)]
    assert [x[IP].id for x in e] == list(range(7, 21))
    assert [int(x[TCP].flags) for x in e] == [0x90] + [0x10] * 12 + [0x19]
    assert b"".join(bytes(x[TCP].payload) for x in e) == pay


def test_kernel_gso_restores_vlan_tag_and_reports_refusal(kernel_oracle):
    pay = b"v" * 3000
    p = Ether(**MAC) / Dot1Q(vlan=5, prio=3) / IP(src="10.0.0.1", dst="10.0.0.2") / \
        UDP(sport=1, dport=2) / Raw(pay)
    f = _partial(bytes(p), 18, 17, 6)
    segs = kernel_oracle.gso(f, (1, 5, 46, 1400, 38, 6))
    assert [len(s) for s in segs] == [46 + 1400, 46 + 1400, 46 + 200]
    assert all(Ether(s)[Dot1Q].vlan == 5 and Ether(s)[Dot1Q].prio == 3 for s in segs)
    assert all(_valid(s) for s in segs)
    # gso_size 0 with a GSO type: the kernel refuses it (EINVAL), the oracle says so
    r = kernel_oracle.gso_many([(f, (1, 5, 46, 0, 38, 6))])[0]
    assert isinstance(r, OSError)


def test_kernel_gro_tcp_and_udp_recipe(kernel_oracle):
    tcp = [bytes(Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF", id=7 + i) /
                 TCP(sport=1, dport=2, seq=1000 + 1448 * i, flags="PA" if i == 9 else "A") / Raw(b"t" * 1448))
           for i in range(10)]
    r = kernel_oracle.gro(tcp)
    assert len(r) == 1
    (hdr, frame), = r
    assert hdr == (1, 1, 1502, 1448, 34, 16) and len(frame) == 14 + 20 + 20 + 14480
    udp = [bytes(Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF", id=7 + i) /
                 UDP(sport=1, dport=2) / Raw(b"u" * 1400)) for i in range(10)]
    r = kernel_oracle.gro(udp)
    assert [(h, len(f)) for h, f in r] == [((1, 5, 1442, 1400, 34, 6), 14042)]
