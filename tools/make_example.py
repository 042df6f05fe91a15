#!/usr/bin/env python3
"""Build offload/examples/example.pcap: a capture as a sending host with TSO/USO takes it.

Run from the repository root: ``python tools/make_example.py [OUT]``. The output
is deterministic (fixed addresses, payloads and timestamps), so regenerating it
gives the same bytes.

What a sender-side capture of offloaded traffic looks like (and what the file
holds):

* TCP super-frames (TSO), IPv4 and IPv6, 14-30 KB of payload in one frame: the
  IP length fields cover the whole super-frame, the IPv4 header checksum is
  correct, and the TCP checksum field holds only the folded pseudo-header sum
  (CHECKSUM_PARTIAL: the NIC would finish it per segment);
* one IPv4 BIG TCP frame of more than 64 KB, whose IPv4 total length is 0;
* UDP super-frames (USO), IPv4 and IPv6: the UDP length covers the whole
  super-frame, the checksum field holds the partial pseudo-header sum;
* ordinary small traffic with full checksums: TCP handshakes (MSS options)
  and ACKs from the receivers, a DNS query and answer, ICMP and ICMPv6 echo,
  and an ARP exchange (not IP).
"""

from __future__ import annotations

import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402
from scapy.all import (ARP, DNS, DNSQR, DNSRR, ICMP, IP, TCP, UDP, Ether,  # noqa: E402
                       ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, raw)

from offload import pcap  # noqa: E402
from offload.batch import PacketBatch  # noqa: E402
from offload.csum import raw_sum  # noqa: E402

MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"
V4_A, V4_B, V4_C = "10.0.0.1", "10.0.0.2", "10.0.0.3"
V6_A, V6_B = "2001:db8::1", "2001:db8::2"
T0 = 1_700_000_000 * 10**9


def payload(n: int, seed: int) -> bytes:
    return bytes((seed + i * 7 + (i >> 8)) & 0xFF for i in range(n))


def partial_v4(frame: bytes, l4_off: int, proto: int, csum_field: int) -> bytes:
    """Write the folded IPv4 pseudo-header sum into the L4 checksum field (CHECKSUM_PARTIAL)."""
    l4_len = len(frame) - l4_off
    ph = frame[14 + 12:14 + 20] + struct.pack("!BBI", 0, proto, l4_len)
    s = raw_sum(ph)
    f = bytearray(frame)
    f[l4_off + csum_field:l4_off + csum_field + 2] = struct.pack("!H", s)
    return bytes(f)


def partial_v6(frame: bytes, l4_off: int, proto: int, csum_field: int) -> bytes:
    l4_len = len(frame) - l4_off
    ph = frame[14 + 8:14 + 40] + struct.pack("!I3xB", l4_len, proto)
    s = raw_sum(ph)
    f = bytearray(frame)
    f[l4_off + csum_field:l4_off + csum_field + 2] = struct.pack("!H", s)
    return bytes(f)


def tso_v4(sport, dport, seq, ack, n, seed, big=False):
    ip = IP(src=V4_A, dst=V4_B, id=0x1000 + seed, flags="DF", ttl=64)
    if big:
        ip.len = 0     # BIG TCP: a frame longer than 64 KB carries total length 0
    p = Ether(src=MAC_A, dst=MAC_B) / ip / TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags="PA",
                                                window=502, options=[("NOP", None), ("NOP", None),
                                                                     ("Timestamp", (1000 + seed, 2000))])
    p = p / payload(n, seed)
    f = raw(p)
    return partial_v4(f, 34, 6, 16)


def tso_v6(sport, dport, seq, ack, n, seed):
    p = (Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B, hlim=64)
         / TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags="PA", window=502) / payload(n, seed))
    return partial_v6(raw(p), 54, 6, 16)


def uso_v4(sport, dport, n, seed):
    p = (Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_C, id=0x2000 + seed, flags="DF")
         / UDP(sport=sport, dport=dport) / payload(n, seed))
    return partial_v4(raw(p), 34, 17, 6)


def uso_v6(sport, dport, n, seed):
    p = (Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B) / UDP(sport=sport, dport=dport)
         / payload(n, seed))
    return partial_v6(raw(p), 54, 17, 6)


def frames():
    out = []
    # ARP (not IP)
    out.append(raw(Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC_A, psrc=V4_A, pdst=V4_B)))
    out.append(raw(Ether(src=MAC_B, dst=MAC_A) / ARP(op=2, hwsrc=MAC_B, psrc=V4_B, hwdst=MAC_A, pdst=V4_A)))
    # DNS query and answer
    out.append(raw(Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B) / UDP(sport=53000, dport=53)
                   / DNS(id=7, rd=1, qd=DNSQR(qname="example.net"))))
    out.append(raw(Ether(src=MAC_B, dst=MAC_A) / IP(src=V4_B, dst=V4_A) / UDP(sport=53, dport=53000)
                   / DNS(id=7, qr=1, ra=1, qd=DNSQR(qname="example.net"),
                         an=DNSRR(rrname="example.net", rdata="10.0.0.2"))))
    # ICMP and ICMPv6 echo
    out.append(raw(Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B) / ICMP(id=1, seq=1) / payload(56, 1)))
    out.append(raw(Ether(src=MAC_B, dst=MAC_A) / IP(src=V4_B, dst=V4_A) / ICMP(type=0, id=1, seq=1)
                   / payload(56, 1)))
    out.append(raw(Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B) / ICMPv6EchoRequest(id=2, seq=1)))
    out.append(raw(Ether(src=MAC_B, dst=MAC_A) / IPv6(src=V6_B, dst=V6_A) / ICMPv6EchoReply(id=2, seq=1)))

    # TCP over IPv4: handshake, two TSO super-frames, ACKs, a BIG TCP frame, FIN
    isn_a, isn_b = 1_000_000, 5_000_000
    syn_opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1000, 0)), ("NOP", None), ("WScale", 7)]
    out.append(raw(Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B, flags="DF")
                   / TCP(sport=40000, dport=5201, seq=isn_a, flags="S", options=syn_opts)))
    out.append(raw(Ether(src=MAC_B, dst=MAC_A) / IP(src=V4_B, dst=V4_A, flags="DF")
                   / TCP(sport=5201, dport=40000, seq=isn_b, ack=isn_a + 1, flags="SA", options=syn_opts)))
    seq = isn_a + 1
    out.append(raw(Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B, flags="DF")
                   / TCP(sport=40000, dport=5201, seq=seq, ack=isn_b + 1, flags="A")))
    for n, seed in ((30 * 1448, 3), (10 * 1448, 4)):
        out.append(tso_v4(40000, 5201, seq, isn_b + 1, n, seed))
        seq += n
        out.append(raw(Ether(src=MAC_B, dst=MAC_A) / IP(src=V4_B, dst=V4_A, flags="DF")
                       / TCP(sport=5201, dport=40000, seq=isn_b + 1, ack=seq, flags="A", window=4000)))
    big = 46 * 1448       # 66608 bytes of payload: the IP packet exceeds 65535
    out.append(tso_v4(40000, 5201, seq, isn_b + 1, big, 5, big=True))
    seq += big
    out.append(raw(Ether(src=MAC_B, dst=MAC_A) / IP(src=V4_B, dst=V4_A, flags="DF")
                   / TCP(sport=5201, dport=40000, seq=isn_b + 1, ack=seq, flags="A", window=4000)))
    out.append(raw(Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B, flags="DF")
                   / TCP(sport=40000, dport=5201, seq=seq, ack=isn_b + 1, flags="FA")))

    # TCP over IPv6: handshake, one TSO super-frame, ACK
    syn6 = [("MSS", 1440), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]
    out.append(raw(Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B)
                   / TCP(sport=41000, dport=443, seq=isn_a, flags="S", options=syn6)))
    out.append(raw(Ether(src=MAC_B, dst=MAC_A) / IPv6(src=V6_B, dst=V6_A)
                   / TCP(sport=443, dport=41000, seq=isn_b, ack=isn_a + 1, flags="SA", options=syn6)))
    n6 = 14 * 1440
    out.append(tso_v6(41000, 443, isn_a + 1, isn_b + 1, n6, 6))
    out.append(raw(Ether(src=MAC_B, dst=MAC_A) / IPv6(src=V6_B, dst=V6_A)
                   / TCP(sport=443, dport=41000, seq=isn_b + 1, ack=isn_a + 1 + n6, flags="A")))

    # UDP super-frames (USO): 12 x 1200 bytes over IPv4, 8 x 1232 over IPv6 (QUIC-like)
    out.append(uso_v4(50000, 4433, 12 * 1200, 7))
    out.append(uso_v6(50001, 4433, 8 * 1232, 8))
    out.append(raw(Ether(src=MAC_B, dst=MAC_A) / IP(src=V4_C, dst=V4_A) / UDP(sport=4433, dport=50000)
                   / payload(40, 9)))
    return out


def main(out_path: str) -> None:
    fr = frames()
    b = PacketBatch.from_frames(fr)
    b.ts = T0 + np.arange(len(fr), dtype=np.int64) * 1_250_000   # 1.25 ms apart, whole µs
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    pcap.write(out_path, b, format="pcap", ts_resolution="us")
    print(f"{out_path}: {len(fr)} frames, {os.path.getsize(out_path)} bytes, largest frame {max(map(len, fr))}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "offload",
                                                              "examples", "example.pcap"))
