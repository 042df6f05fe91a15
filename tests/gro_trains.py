"""Segment trains for GRO tests, built with scapy (its builder computes every length and
checksum, so the frames are an independent oracle's, not ours).

``tcp_train(n, pay=100, **kw)`` returns ``n`` frames of one TCP flow with contiguous
sequence numbers; ``mod(i, layers)`` may change packet ``i`` (its IP / TCP layers) before
it is built. ``udp_train`` likewise.
"""

from __future__ import annotations

from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, IPv6ExtHdrDestOpt, Raw, PadN

from offload import vnet as V

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"


def _l3(v6, i, df=True, ip_id=None, ttl=64, tos=0, fl=0, src=None, dst=None):
    if v6:
        return IPv6(src=src or "fd00::a", dst=dst or "fd00::b", hlim=ttl, tc=tos, fl=fl)
    return IP(src=src or "10.0.0.1", dst=dst or "10.0.0.2", ttl=ttl, tos=tos,
              id=(1000 + i) & 0xFFFF if ip_id is None else ip_id, flags="DF" if df else 0)


def tcp_train(n, pay=100, v6=False, vlan=None, seq0=1000, mod=None, sizes=None, sport=4000, dport=5000,
              options=None, flags="A", df=True, ip_ids=None, ext=None, src=None, dst=None):
    frames = []
    seq = seq0
    for i in range(n):
        plen = sizes[i] if sizes is not None else pay
        l3 = _l3(v6, i, df=df, ip_id=None if ip_ids is None else ip_ids[i], src=src, dst=dst)
        tcp = TCP(sport=sport, dport=dport, seq=seq & 0xFFFFFFFF, ack=777, flags=flags, window=1000,
                  options=list(options) if options else [])
        payload = bytes((i * 7 + k) & 0xFF for k in range(plen))
        layers = {"l3": l3, "tcp": tcp, "payload": payload, "ext": ext, "vlan": vlan}
        if mod:
            mod(i, layers)
        frames.append(_build(layers))
        seq += plen
    return frames


def _build(layers):
    eth = Ether(src=MAC_A, dst=MAC_B)
    pkt = eth
    if layers.get("vlan") is not None:
        for v in ([layers["vlan"]] if isinstance(layers["vlan"], int) else layers["vlan"]):
            pkt = pkt / Dot1Q(vlan=v)
    pkt = pkt / layers["l3"]
    if layers.get("ext") is not None:
        pkt = pkt / layers["ext"]
    l4 = layers.get("tcp") if layers.get("tcp") is not None else layers.get("udp")
    return bytes(pkt / l4 / Raw(layers["payload"])) if layers["payload"] else bytes(pkt / l4)


def udp_train(n, pay=100, v6=False, vlan=None, sizes=None, sport=4000, dport=5000, mod=None, df=True):
    frames = []
    for i in range(n):
        plen = sizes[i] if sizes is not None else pay
        layers = {"l3": _l3(v6, i, df=df), "udp": UDP(sport=sport, dport=dport),
                  "payload": bytes((i * 5 + k) & 0xFF for k in range(plen)), "vlan": vlan, "ext": None}
        if mod:
            mod(i, layers)
        frames.append(_build(layers))
    return frames


def dest_opts(pad=4):
    return IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * pad)])


def sum16(data: bytes) -> int:
    """Folded one's-complement sum of ``data`` as big-endian 16-bit words (not inverted)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def partialize(frame: bytes) -> bytes:
    """The frame as a CHECKSUM_PARTIAL sender hands it over (virtio NEEDS_CSUM): the TCP/UDP
    checksum field holds the folded pseudo-header sum, not inverted (Ethernet, no VLAN)."""
    p = Ether(frame)
    l4 = p[TCP] if TCP in p else p[UDP]
    l4_off = len(frame) - len(bytes(l4))
    seg = bytes(l4)
    if IP in p:
        ph = bytes(p[IP])[12:20] + bytes([0, 6 if TCP in p else 17]) + len(seg).to_bytes(2, "big")
    else:
        ph = bytes(p[IPv6])[8:40] + len(seg).to_bytes(4, "big") + bytes([0, 0, 0, 6 if TCP in p else 17])
    s = sum16(ph)
    fo = l4_off + (16 if TCP in p else 6)
    return frame[:fo] + s.to_bytes(2, "big") + frame[fo + 2:]


def partial_vnet(frame: bytes):
    p = Ether(frame)
    l4_off = len(frame) - len(bytes(p[TCP] if TCP in p else p[UDP]))
    return (V.F_NEEDS_CSUM, 0, 0, 0, l4_off, 16 if TCP in p else 6)
