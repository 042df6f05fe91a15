"""Builders of GSO super-packets the way a sender hands them to the kernel: full IP/L4
lengths, the L4 checksum field pre-loaded with the folded pseudo-header sum
(CHECKSUM_PARTIAL), and the matching virtio_net_hdr tuple.

Headers are built with scapy (the oracle for field layout); only the partial checksum
and the BIG TCP / jumbo length fields are patched by hand, because scapy does not
model them.
"""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from offload.csum import raw_sum

MAC = dict(src="02:00:00:00:00:02", dst="02:00:00:00:00:03")
GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_UDP_L4, GSO_ECN = 1, 3, 4, 5, 0x80


def _l2(vlans, ethertype):
    """Ethernet (+ 802.1ad outer / 802.1Q inner tags) ending in ``ethertype``."""
    tpids = [0x88A8 if (k == 0 and len(vlans) > 1) else 0x8100 for k in range(len(vlans))]
    types = tpids + [ethertype]
    b = bytes(Ether(**MAC, type=types[0]))
    for k, vid in enumerate(vlans):
        b += struct.pack("!HH", vid & 0xFFF, types[k + 1])
    return b


def _pseudo(v6: bool, l3: bytes, proto: int, l4len: int) -> int:
    if v6:
        ph = l3[8:40] + struct.pack("!IxxxB", l4len, proto)
    else:
        ph = l3[12:20] + struct.pack("!xBHH", proto, (l4len >> 16) & 0xFFFF, l4len & 0xFFFF)
    return raw_sum(ph)


def super_packet(payload: bytes, mss: int, *, v6=False, udp=False, vlans=(), ts=False,
                 flags="PA", seq=1000, ip_id=7, df=True, big=False, jumbo=False,
                 tos=0, flowlabel=0, hlim=64, options=None, needs_csum=True, ufo=False, sport=4000, ipopts=b""):
    """``(frame bytes, vnet tuple)`` for a TCP/UDP super-packet of ``payload`` at ``mss``.

    ``big``: IPv4 total length 0 (BIG TCP); ``jumbo``: IPv6 with the 8-byte jumbo
    hop-by-hop header and payload length 0 (RFC 2675, as BIG TCP over IPv6);
    ``ufo``: gso_type UDP (fragmentation) instead of UDP_L4; ``ipopts``: raw IPv4 option
    bytes (a multiple of 4).
    """
    if udp:
        l4 = UDP(sport=sport, dport=5000)
    else:
        opts = list(options or [])
        if ts:
            opts = [("NOP", None), ("NOP", None), ("Timestamp", (123456, 654321))] + opts
        l4 = TCP(sport=sport, dport=5000, seq=seq, ack=777, flags=flags, window=501, options=opts)
    if v6:
        l3 = IPv6(src="fd00::1", dst="fd00::2", tc=tos, fl=flowlabel, hlim=hlim)
    else:
        l3 = IP(src="10.0.0.1", dst="10.0.0.2", id=ip_id, flags="DF" if df else 0, tos=tos, ttl=hlim)
    l2b = _l2(vlans, 0x86DD if v6 else 0x0800)
    l4b = bytearray(bytes(l4 / payload) if not udp else bytes(UDP(sport=sport, dport=5000, len=0) / payload))
    proto = 17 if udp else 6
    l4len = len(l4b)
    if udp:
        l4b[4:6] = struct.pack("!H", l4len if l4len <= 0xFFFF else 0)
    if v6:
        if jumbo:
            hbh = bytes([proto, 0, 0xC2, 4]) + struct.pack("!I", l4len + 8)
            l3b = bytearray(bytes(IPv6(src="fd00::1", dst="fd00::2", tc=tos, fl=flowlabel, hlim=hlim, nh=0, plen=0)))
            l3b += hbh
        else:
            l3b = bytearray(bytes(IPv6(src="fd00::1", dst="fd00::2", tc=tos, fl=flowlabel, hlim=hlim,
                                       nh=proto, plen=l4len)))
        ip_hdr_len = len(l3b)
    else:
        l3b = bytearray(bytes(l3 / UDP() if udp else l3 / TCP())[:20]) + bytearray(ipopts)
        l3b[0] = 0x40 | (len(l3b) // 4)
        l3b[9] = proto
        tot = len(l3b) + l4len
        l3b[2:4] = struct.pack("!H", 0 if (big or tot > 0xFFFF) else tot)
        l3b[10:12] = b"\0\0"
        l3b[10:12] = struct.pack("!H", (~raw_sum(bytes(l3b))) & 0xFFFF)
        ip_hdr_len = len(l3b)
    csum_off = 6 if udp else 16
    ck = _pseudo(v6, bytes(l3b[:40] if v6 else l3b), proto, l4len)
    l4b[csum_off:csum_off + 2] = struct.pack("!H", ck)
    frame = l2b + bytes(l3b) + bytes(l4b)
    cs = len(l2b) + ip_hdr_len
    thl = 8 if udp else (l4b[12] >> 4) * 4
    if udp:
        gt = GSO_UDP if ufo else GSO_UDP_L4
    else:
        gt = GSO_TCPV6 if v6 else GSO_TCPV4
    vnet = (1 if needs_csum else 0, gt, cs + thl, mss, cs if needs_csum else 0, csum_off if needs_csum else 0)
    return frame, vnet
