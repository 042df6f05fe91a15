"""Hypothesis strategies for frames: structurally valid ones built with scapy, and mutators
that break them. Reusable by every stage's tests (parser, checksum, GSO, GRO, fuzzing).

Valid frames
------------
:func:`frames` draws a :class:`Built` ``(frame, link, pkt)``: the wire bytes, the pcap
LINKTYPE the parser should be told, and the scapy packet they were built from. Link
types: Ethernet with 0-3 VLAN tags (802.1Q / 802.1ad), Linux cooked v1/v2 (with 0-2
tags), raw IP (LINKTYPE_RAW 101, DLT_RAW 12/14, LINKTYPE_IPV4 228 / IPV6 229), BSD NULL
(either byte order) and OpenBSD LOOP. L3: IPv4 with options, DF and fragments; IPv6 with
hop-by-hop / routing (type 0, 2 and 4 with segments left) / destination options /
fragment / AH chains; the RFC 2675 jumbogram (rare: it needs > 64 KB). L4: TCP with random
options, UDP, ICMP, ICMPv6 echo, or another protocol's bytes.

Narrower strategies for engines: :func:`tcp_frames`, :func:`udp_frames` (valid checksums,
no fragments, Ethernet by default) and :func:`frames` with keyword filters.

:func:`expected_layout` is the scapy oracle: it dissects the bytes again with scapy and
returns every field the parser writes to ``meta`` (byte offsets from the frame start).

Mutators
--------
:func:`truncated` (cut at any byte), :func:`mutated` (one targeted lie: lengths, IHL, data
offset, UDP length, extension-header length 0/255, option length 0/255, extension chains
that loop or overrun, version nibble, stacked VLANs, random byte flips and splices) and
:func:`mutated_frames` (a valid frame, then 1-3 mutations). Mutated frames come with a
short description of the damage (``Mutated.what``) so a failure message says what broke.
"""

from __future__ import annotations

import logging
import socket
import struct
from typing import NamedTuple

from hypothesis import strategies as st

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
logging.getLogger("scapy").setLevel(logging.ERROR)

from scapy.all import (ICMP, IP, TCP, UDP, CookedLinux, CookedLinuxV2, Dot1AD,  # noqa: E402
                       Dot1Q, Ether, IPOption_NOP, IPOption_Router_Alert, IPOption_RR,
                       Loopback, LoopbackOpenBSD, Raw, conf, raw)
from scapy.layers.inet6 import (HBHOptUnknown, ICMPv6EchoRequest, IPv6,  # noqa: E402
                                IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                                IPv6ExtHdrSegmentRouting, Jumbo, PadN, RouterAlert,
                                ipv6nhcls)
from scapy.layers.ipsec import AH  # noqa: E402

from offload import batch as B  # noqa: E402

LINKS_ETH = (B.LINK_ETHERNET,)
LINKS_ALL = (B.LINK_ETHERNET, B.LINK_LINUX_SLL, B.LINK_LINUX_SLL2, B.LINK_RAW, B.LINK_DLT_RAW_12,
             B.LINK_DLT_RAW_14, B.LINK_IPV4, B.LINK_IPV6, B.LINK_NULL, B.LINK_LOOP)

ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD


class Built(NamedTuple):
    """A frame as bytes, its pcap LINKTYPE and the scapy packet it was built from."""
    frame: bytes
    link: int
    pkt: object


class Mutated(NamedTuple):
    """A damaged frame, its link type, and what was done to it."""
    frame: bytes
    link: int
    what: str


# --------------------------------------------------------------------------- L2
def _l2(draw, link, v6, max_vlans=3):
    """Scapy link-layer header (or None for raw links) and its ethertype chain."""
    et = ETH_P_IPV6 if v6 else ETH_P_IP
    if link == B.LINK_ETHERNET:
        hdr = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        nv = draw(st.integers(0, max_vlans))
        for _ in range(nv):
            tag = draw(st.sampled_from([Dot1Q, Dot1AD]))
            hdr = hdr / tag(vlan=draw(st.integers(0, 4095)), prio=draw(st.integers(0, 7)))
        return hdr
    if link in (B.LINK_LINUX_SLL, B.LINK_LINUX_SLL2):
        nv = draw(st.integers(0, min(2, max_vlans)))
        cls = CookedLinux if link == B.LINK_LINUX_SLL else CookedLinuxV2
        hdr = cls(pkttype=draw(st.sampled_from([0, 4])), lladdrtype=1, lladdrlen=6,
                  src=b"\x02\x00\x00\x00\x00\x01\x00\x00")
        # scapy binds the ethertype from the next layer only for plain IP: set it ourselves
        hdr.proto = 0x8100 if nv else et
        for k in range(nv):
            hdr = hdr / Dot1Q(vlan=draw(st.integers(0, 4095)),
                              type=(0x8100 if k + 1 < nv else et))
        return hdr
    if link == B.LINK_NULL:
        af = 2 if not v6 else draw(st.sampled_from([10, 24, 28, 30]))
        if draw(st.booleans()):
            return Loopback(type=af)          # little-endian host (scapy's default)
        return LoopbackOpenBSD(type=af)       # big-endian host: the parser takes either
    if link == B.LINK_LOOP:
        return LoopbackOpenBSD(type=2 if not v6 else draw(st.sampled_from([24, 28, 30])))
    return None


def _link_v6_choice(link):
    if link == B.LINK_IPV4:
        return (False,)
    if link == B.LINK_IPV6:
        return (True,)
    return (False, True)


# --------------------------------------------------------------------------- L3
_IPV4_OPT_MENU = ("nop", "rr", "ra")


def _ipv4(draw, proto, frag, allow_opts=True, ttl=None):
    opts = []
    if allow_opts and draw(st.integers(0, 3)) == 0:
        for kind in draw(st.lists(st.sampled_from(_IPV4_OPT_MENU), min_size=1, max_size=4)):
            if kind == "nop":
                opts.append(IPOption_NOP())
            elif kind == "ra":
                opts.append(IPOption_Router_Alert())
            else:
                k = draw(st.integers(1, 4))
                opts.append(IPOption_RR(routers=["10.9.%d.%d" % (j, j) for j in range(k)]))
        # IPv4 options are at most 40 bytes
        while sum(len(raw(o)) for o in opts) > 40:
            opts.pop()
    flags = 0
    off = 0
    if draw(st.booleans()):
        flags |= 2  # DF
    if frag and draw(st.integers(0, 5)) == 0:
        flags &= ~2
        if draw(st.booleans()):
            flags |= 1  # MF
        off = draw(st.sampled_from([0, 0, 1, 185, 8191]))
        if off == 0:
            flags |= 1  # a first fragment always has MF
    return IP(src="10.0.%d.1" % draw(st.integers(0, 255)), dst="10.1.0.%d" % draw(st.integers(1, 254)),
              id=draw(st.integers(0, 0xFFFF)), ttl=ttl or draw(st.integers(1, 255)),
              tos=draw(st.integers(0, 255)), flags=flags, frag=off, proto=proto, options=opts)


def _addr6(draw, tag):
    return "2001:db8:%x::%x" % (tag, draw(st.integers(1, 0xFFFF)))


def _hbh_options(draw):
    menu = draw(st.lists(st.sampled_from(["padn", "ra", "unk"]), max_size=3))
    opts = []
    for k in menu:
        if k == "padn":
            opts.append(PadN(optdata=b"\0" * draw(st.integers(0, 5))))
        elif k == "ra":
            opts.append(RouterAlert())
        else:
            # type 0x1e: high bits 00 = "skip if unknown"
            opts.append(HBHOptUnknown(otype=0x1E, optdata=draw(st.binary(max_size=12))))
    return opts


def _ext_chain(draw, frag):
    """A list of scapy IPv6 extension headers (hop-by-hop first if present)."""
    chain = []
    if draw(st.integers(0, 2)) == 0:
        chain.append(IPv6ExtHdrHopByHop(options=_hbh_options(draw)))
    for kind in draw(st.lists(st.sampled_from(["rt0", "rt2", "srh", "dst", "frag", "ah"]), max_size=3)):
        if kind == "rt0":
            k = draw(st.integers(0, 3))
            chain.append(IPv6ExtHdrRouting(type=0, addresses=[_addr6(draw, 0x10 + j) for j in range(k)],
                                           segleft=draw(st.integers(0, k))))
        elif kind == "rt2":
            chain.append(IPv6ExtHdrRouting(type=2, addresses=[_addr6(draw, 0x20)],
                                           segleft=draw(st.integers(0, 1))))
        elif kind == "srh":
            k = draw(st.integers(1, 3))
            chain.append(IPv6ExtHdrSegmentRouting(addresses=[_addr6(draw, 0x30 + j) for j in range(k)],
                                                  segleft=draw(st.integers(0, k - 1)), lastentry=k - 1))
        elif kind == "dst":
            chain.append(IPv6ExtHdrDestOpt(options=_hbh_options(draw)))
        elif kind == "frag":
            if not frag or any(isinstance(h, IPv6ExtHdrFragment) for h in chain):
                continue
            chain.append(IPv6ExtHdrFragment(offset=draw(st.sampled_from([0, 0, 1, 185, 8191])),
                                            m=draw(st.integers(0, 1)), id=draw(st.integers(0, 2**32 - 1))))
        elif kind == "ah":
            icv = draw(st.sampled_from([4, 12, 20]))   # AH length (payloadlen+2)*4 must be 8-aligned in v6
            chain.append(AH(spi=draw(st.integers(1, 2**32 - 1)), seq=1, icv=b"\xaa" * icv,
                            payloadlen=(12 + icv) // 4 - 2))
    return chain


def _chain_nh(chain, final):
    """Set every next-header field explicitly (scapy does not know AH's successors)."""
    for k, h in enumerate(chain):
        h.nh = _nh_of(chain[k + 1]) if k + 1 < len(chain) else final


def _nh_of(h):
    return {IPv6ExtHdrHopByHop: 0, IPv6ExtHdrRouting: 43, IPv6ExtHdrSegmentRouting: 43,
            IPv6ExtHdrDestOpt: 60, IPv6ExtHdrFragment: 44, AH: 51}[type(h)]


# --------------------------------------------------------------------------- L4
_TCP_OPT_MENU = ("MSS", "NOP", "WScale", "SAckOK", "Timestamp", "SAck", "EOL")
_TCP_OPT_LEN = {"MSS": 4, "NOP": 1, "WScale": 3, "SAckOK": 2, "Timestamp": 10, "EOL": 1}


def _tcp(draw, sport=None, dport=None, flags=None, seq=None):
    opts, used = [], 0
    for name in draw(st.lists(st.sampled_from(_TCP_OPT_MENU), max_size=6)):
        if name == "SAck":
            k = draw(st.integers(1, 3))
            val, ln = tuple(draw(st.integers(0, 2**32 - 1)) for _ in range(2 * k)), 2 + 8 * k
        else:
            ln = _TCP_OPT_LEN[name]
            val = {"MSS": draw(st.integers(0, 0xFFFF)), "WScale": draw(st.integers(0, 14)),
                   "SAckOK": b"", "Timestamp": (draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)))}.get(name)
        if used + ln > 40:
            break
        opts.append((name, val))
        used += ln
        if name == "EOL":
            break
    return TCP(sport=sport or draw(st.integers(20000, 60000)), dport=dport or draw(st.integers(20000, 60000)),
               seq=draw(st.integers(0, 2**32 - 1)) if seq is None else seq, ack=draw(st.integers(0, 2**32 - 1)),
               flags=draw(st.sampled_from(["A", "PA", "S", "SA", "FA", "R", "PAU", "AE", "AC"])) if flags is None else flags,
               window=draw(st.integers(0, 0xFFFF)), options=opts)


def _l4(draw, kind, v6):
    if kind == "tcp":
        return _tcp(draw), 6
    if kind == "udp":
        return UDP(sport=draw(st.integers(20000, 60000)), dport=draw(st.integers(20000, 60000))), 17
    if kind == "icmp":
        return ICMP(type=8, id=draw(st.integers(0, 0xFFFF)), seq=draw(st.integers(0, 0xFFFF))), 1
    if kind == "icmp6":
        return ICMPv6EchoRequest(id=draw(st.integers(0, 0xFFFF)), seq=draw(st.integers(0, 0xFFFF))), 58
    # a protocol the parser does not look into (GRE, SCTP, OSPF, "no next header")
    return None, draw(st.sampled_from([47, 132, 89] + ([59] if v6 else [])))


def _payload(draw, max_payload):
    n = draw(st.one_of(st.integers(0, 64), st.integers(0, max_payload)))
    if n <= 64:
        return draw(st.binary(min_size=n, max_size=n))
    return bytes((i * 131 + n) & 0xFF for i in range(n))


# --------------------------------------------------------------------------- frames
@st.composite
def frames(draw, links=LINKS_ALL, l4=("tcp", "udp", "icmp", "icmp6", "other"), v6=None,
           max_vlans=3, frag=True, ipv4_opts=True, ext=True, max_payload=1500,
           jumbo=True, pad=True) -> Built:
    """A structurally valid frame (see the module docstring). Keyword arguments narrow it:
    ``links`` the link types, ``l4`` the transport kinds, ``v6`` True/False/None (either),
    ``frag`` allow IP fragments, ``ext`` allow IPv6 extension headers, ``jumbo`` allow
    (rare) RFC 2675 jumbograms, ``pad`` allow Ethernet trailer padding."""
    link = draw(st.sampled_from(links))
    choices = _link_v6_choice(link)
    if v6 is not None:
        choices = tuple(c for c in choices if c == v6) or choices
    is6 = draw(st.sampled_from(choices))
    kinds = [k for k in l4 if not (k == "icmp6" and not is6) and not (k == "icmp" and is6)]
    kind = draw(st.sampled_from(kinds))
    l4hdr, proto = _l4(draw, kind, is6)
    pay = _payload(draw, max_payload)
    big = is6 and jumbo and kind in ("tcp", "udp") and draw(st.integers(0, 40)) == 0
    if big:
        pay = bytes((i * 7) & 0xFF for i in range(65536 + draw(st.integers(0, 3000))))
    if not is6:
        l3 = _ipv4(draw, proto, frag, ipv4_opts)
        inner = l3
    else:
        l3 = IPv6(src=_addr6(draw, 1), dst=_addr6(draw, 2), hlim=draw(st.integers(1, 255)),
                  tc=draw(st.integers(0, 255)), fl=draw(st.integers(0, 0xFFFFF)))
        chain = _ext_chain(draw, frag) if ext else []
        if big:
            chain = [h for h in chain if not isinstance(h, (IPv6ExtHdrHopByHop, IPv6ExtHdrFragment))]
            chain.insert(0, IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=0)]))
            l3.plen = 0
        _chain_nh(chain, proto)
        l3.nh = _nh_of(chain[0]) if chain else proto
        inner = l3
        for h in chain:
            inner = inner / h
    if big and kind == "udp":
        l4hdr.len = 0      # RFC 2675: UDP length 0 in a jumbogram
    pkt = inner / l4hdr if l4hdr is not None else inner
    pkt = pkt / Raw(pay) if pay else pkt
    if big:
        # jumbo payload length = everything after the IPv6 header
        jl = len(raw(pkt)) - 40
        pkt[Jumbo].jumboplen = jl
    l2 = _l2(draw, link, is6, max_vlans)
    full = l2 / pkt if l2 is not None else pkt
    frame = raw(full)
    if pad and link == B.LINK_ETHERNET and draw(st.integers(0, 4)) == 0:
        frame += draw(st.binary(min_size=1, max_size=24))
    return Built(frame, link, full)


def tcp_frames(links=LINKS_ETH, v6=None, **kw):
    """Valid TCP frames (no fragments) with correct checksums (scapy's)."""
    return frames(links=links, l4=("tcp",), v6=v6, frag=False, **kw)


def udp_frames(links=LINKS_ETH, v6=None, **kw):
    """Valid UDP frames (no fragments) with correct checksums (scapy's)."""
    return frames(links=links, l4=("udp",), v6=v6, frag=False, **kw)


# --------------------------------------------------------------------------- the oracle
_DISSECT = {B.LINK_ETHERNET: Ether, B.LINK_LINUX_SLL: CookedLinux, B.LINK_LINUX_SLL2: CookedLinuxV2,
            B.LINK_IPV4: IP, B.LINK_IPV6: IPv6}
_EXT = (IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrSegmentRouting, IPv6ExtHdrDestOpt,
        IPv6ExtHdrFragment, AH)


def dissect(frame: bytes, link: int):
    """The frame dissected by scapy (the oracle's view)."""
    if link in (B.LINK_RAW, B.LINK_DLT_RAW_12, B.LINK_DLT_RAW_14):
        return IPv6(frame) if frame and frame[0] >> 4 == 6 else IP(frame)
    if link in (B.LINK_NULL, B.LINK_LOOP):
        # scapy binds only some address families to IPv6: dissect the 4 bytes apart
        body = frame[4:]
        return Raw(frame[:4]) / (IPv6(body) if body and body[0] >> 4 == 6 else IP(body))
    return _DISSECT[link](frame)


def _first(p, cls):
    for layer in p.iterpayloads():
        if isinstance(layer, cls):
            return layer
    return None


def _off(frame, layer):
    return len(frame) - len(raw(layer))


def _hdr_len(layer):
    return len(raw(layer)) - len(raw(layer.payload))


def expected_layout(frame: bytes, link: int) -> dict:
    """Every field the parser writes, computed from scapy's dissection of ``frame``.

    Valid for frames built by :func:`frames` (status OK expected)."""
    from offload import status as S
    p = dissect(frame, link)
    n = len(frame)
    exp = {"vlan_count": sum(1 for l in p.iterpayloads() if isinstance(l, (Dot1Q, Dot1AD)))}
    ip = _first(p, IP)
    ip6 = _first(p, IPv6) if ip is None else None
    flags = 0
    if ip is not None:
        l3 = _off(frame, ip)
        ihl = ip.ihl * 4
        end = l3 + ip.len if ip.len else n
        if not ip.len:
            flags |= S.PF_LEN0
        if ihl > 20:
            flags |= S.PF_IPV4_OPTS
        if ip.flags.DF:
            flags |= S.PF_DF
        exp.update(l3_off=l3, l3_proto=ETH_P_IP, l3_hdr_len=ihl, ext_len=0, l3_end=end,
                   dst_off=l3 + 16, l4_proto=ip.proto)
        l4 = l3 + ihl
        nonfirst = ip.frag != 0
        if ip.frag or ip.flags.MF:
            flags |= S.PF_FRAG | (0 if nonfirst else S.PF_FRAG_FIRST)
        upper = ip.payload
        proto = ip.proto
    else:
        l3 = _off(frame, ip6)
        q = l3 + 40
        dst_off = l3 + 24
        routing = False
        jumbo = None
        nonfirst = False
        isfrag = False
        layer = ip6.payload
        nh = ip6.nh
        while nh in (0, 43, 44, 51, 60):
            if isinstance(layer, AH):
                hl = (layer.payloadlen + 2) * 4
                nxt = layer.nh
                rest = frame[q + hl:]
                cls = ipv6nhcls.get(nxt, Raw)
                if isinstance(cls, str):
                    cls = conf.raw_layer
                nxt_layer = cls(rest) if rest else Raw(b"")
                if nxt == 51:
                    nxt_layer = AH(rest)
            else:
                assert isinstance(layer, _EXT), (type(layer), nh)
                hl = _hdr_len(layer)
                nxt = layer.nh
                nxt_layer = layer.payload
                if isinstance(layer, IPv6ExtHdrRouting) and layer.segleft and layer.addresses \
                        and layer.type in (0, 2):
                    dst_off = q + 8 + 16 * (len(layer.addresses) - 1)
                    routing = True
                elif isinstance(layer, IPv6ExtHdrSegmentRouting) and layer.segleft and layer.addresses:
                    dst_off = q + 8
                    routing = True
                elif isinstance(layer, IPv6ExtHdrRouting) and layer.type == 4 and layer.segleft and hl >= 24:
                    # an SRH re-dissected behind AH comes back as the generic routing class:
                    # its segment list (final destination first) still starts 8 bytes in
                    dst_off = q + 8
                    routing = True
                elif isinstance(layer, IPv6ExtHdrFragment):
                    isfrag = True
                    nonfirst = layer.offset != 0
                elif isinstance(layer, IPv6ExtHdrHopByHop):
                    for o in layer.options:
                        if isinstance(o, Jumbo):
                            jumbo = o.jumboplen
            q += hl
            nh = nxt
            layer = nxt_layer
            if nonfirst:
                break       # what follows a non-first fragment header is fragment data
        ext = q - (l3 + 40)
        if ext:
            flags |= S.PF_IPV6_EXT
        if routing:
            flags |= S.PF_ROUTING
        if ip6.plen:
            end = l3 + 40 + ip6.plen
        elif jumbo is not None:
            end = l3 + 40 + jumbo
            flags |= S.PF_JUMBO
        elif n - (l3 + 40) > 0 and not (nh == 59 and ext == 0):
            end = n
            flags |= S.PF_LEN0
        else:
            end = l3 + 40
        if isfrag:
            flags |= S.PF_FRAG | (0 if nonfirst else S.PF_FRAG_FIRST)
        exp.update(l3_off=l3, l3_proto=ETH_P_IPV6, l3_hdr_len=40 + ext, ext_len=ext, l3_end=end,
                   dst_off=dst_off, l4_proto=nh)
        l4 = q
        upper = layer
        proto = nh
    if end < n:
        flags |= S.PF_L2_PAD
    if nonfirst:
        hl = 0
    elif proto == 6:
        hl = upper.dataofs * 4
    elif proto == 17:
        hl = 8
        if upper.len and upper.len < end - l4:
            flags |= S.PF_UDP_SHORT
    elif proto == 1:
        hl = 8
    elif proto == 58:
        hl = 4
    else:
        hl = 0
    exp.update(l4_off=l4, l4_hdr_len=hl, pay_off=l4 + hl, pay_len=end - (l4 + hl), pflags=flags)
    return exp


def final_destination(frame: bytes, link: int) -> bytes | None:
    """The 4/16 address bytes scapy puts in the pseudo-header (IPv6: the final
    destination of a routing header with segments left); None where scapy cannot tell
    (a chain with AH, which scapy does not dissect past)."""
    from scapy.layers.inet6 import in6_pseudoheader
    p = dissect(frame, link)
    if p.haslayer(IP):
        return socket.inet_pton(socket.AF_INET, p[IP].dst)
    if _first(p, AH) is not None:
        return None     # scapy does not dissect past AH: it cannot see a routing header there
    u = p[IPv6]
    while not isinstance(u.payload, (Raw, conf.padding_layer)) and u.payload and isinstance(u.payload, _EXT):
        u = u.payload
    ph = in6_pseudoheader(6, u.payload if u.payload else u, 0)
    return socket.inet_pton(socket.AF_INET6, ph.dst)


# --------------------------------------------------------------------------- mutators
@st.composite
def truncated(draw, built_st=None) -> Mutated:
    """A valid frame cut short at a random byte (``what`` = ``"cut@K"``)."""
    b = draw(built_st if built_st is not None else frames(jumbo=False))
    k = draw(st.integers(0, len(b.frame)))
    return Mutated(b.frame[:k], b.link, f"cut@{k}")


def _set(frame: bytearray, off: int, fmt: str, value) -> None:
    if 0 <= off and off + struct.calcsize(fmt) <= len(frame):
        struct.pack_into(fmt, frame, off, value)


def mutate_once(draw, frame: bytes, link: int) -> tuple[bytes, str]:
    """Apply one damage to ``frame`` and describe it. Offsets come from the scapy oracle
    when the frame is still valid, else from raw positions."""
    f = bytearray(frame)
    try:
        lay = expected_layout(bytes(f), link)
    except Exception:
        lay = None
    ops = ["flip", "splice", "cut", "byte"]
    if lay:
        ops += ["ip_len", "ihl", "tcp_doff", "udp_len", "ext_len", "opt_len", "ext_loop",
                "hbh_late", "version", "vlans", "plen0"]
    op = draw(st.sampled_from(ops))
    if op == "flip":
        i = draw(st.integers(0, max(0, len(f) - 1)))
        if f:
            f[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(f), f"flip@{i}"
    if op == "byte":
        i = draw(st.integers(0, max(0, len(f) - 1)))
        v = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        if f:
            f[i] = v
        return bytes(f), f"byte@{i}={v}"
    if op == "splice":
        i = draw(st.integers(0, len(f)))
        ins = draw(st.binary(max_size=16))
        return bytes(f[:i] + ins + f[i:]), f"splice@{i}+{len(ins)}"
    if op == "cut":
        k = draw(st.integers(0, len(f)))
        return bytes(f[:k]), f"cut@{k}"
    l3 = lay["l3_off"]
    v6 = lay["l3_proto"] == ETH_P_IPV6
    if op == "ip_len":
        v = draw(st.sampled_from([0, 1, 19, 20, 39, 40, 0xFFFF, len(f) - l3 + 1, len(f) - l3 - 1]))
        _set(f, l3 + (4 if v6 else 2), "!H", v & 0xFFFF)
        return bytes(f), f"ip_len={v & 0xFFFF}"
    if op == "ihl" and not v6:
        v = draw(st.integers(0, 15))
        f[l3] = 0x40 | v
        return bytes(f), f"ihl={v}"
    if op == "tcp_doff" and lay["l4_proto"] == 6 and lay["l4_hdr_len"]:
        v = draw(st.integers(0, 15))
        o = lay["l4_off"] + 12
        f[o] = (v << 4) | (f[o] & 15)
        return bytes(f), f"doff={v}"
    if op == "udp_len" and lay["l4_proto"] == 17 and lay["l4_hdr_len"]:
        v = draw(st.sampled_from([0, 1, 7, 8, 9, 0xFFFF]))
        _set(f, lay["l4_off"] + 4, "!H", v)
        return bytes(f), f"udp_len={v}"
    if op in ("ext_len", "opt_len") and v6 and lay["ext_len"]:
        q = l3 + 40
        if op == "ext_len":
            v = draw(st.sampled_from([0, 1, 255]))
            f[q + 1] = v
            return bytes(f), f"ext_len={v}"
        if f[l3 + 6] in (0, 60):   # options header first: its first option's length
            v = draw(st.sampled_from([0, 255]))
            if q + 3 < len(f):
                f[q + 2] = 0x1E
                f[q + 3] = v
            return bytes(f), f"opt_len={v}"
    if op == "ext_loop" and v6:
        # a chain of destination-options headers each naming another one, longer than the cap
        k = draw(st.integers(2, 24))
        hdrs = b"".join(bytes([60, 0, 1, 4, 0, 0, 0, 0]) for _ in range(k))
        body = bytes(f[l3 + 40:])
        f[l3 + 6] = 60
        new = bytes(f[:l3 + 40]) + hdrs + body
        nf = bytearray(new)
        plen = struct.unpack_from("!H", nf, l3 + 4)[0]
        if plen:
            _set(nf, l3 + 4, "!H", min(0xFFFF, plen + len(hdrs)))
        return bytes(nf), f"ext_loop x{k}"
    if op == "hbh_late" and v6:
        hdr = bytes([0, 0, 1, 4, 0, 0, 0, 0])   # a destination-options header naming hop-by-hop
        dst = bytes([f[l3 + 6], 0, 1, 4, 0, 0, 0, 0])
        f[l3 + 6] = 60
        nf = bytearray(bytes(f[:l3 + 40]) + hdr + dst + bytes(f[l3 + 40:]))
        plen = struct.unpack_from("!H", nf, l3 + 4)[0]
        if plen:
            _set(nf, l3 + 4, "!H", min(0xFFFF, plen + 16))
        return bytes(nf), "hbh_late"
    if op == "version":
        v = draw(st.sampled_from([0, 4, 5, 6, 15]))
        f[l3] = (v << 4) | (f[l3] & 15)
        return bytes(f), f"version={v}"
    if op == "vlans" and link == B.LINK_ETHERNET:
        # k more 802.1Q tags in front of whatever the frame had
        k = draw(st.integers(1, 12))
        tags = b"".join(struct.pack("!HH", 0x8100, j) for j in range(k))
        return bytes(f[:12]) + tags + bytes(f[12:]), f"vlans+{k}"
    if op == "plen0":
        _set(f, l3 + (4 if v6 else 2), "!H", 0)
        return bytes(f), "ip_len=0"
    i = draw(st.integers(0, max(0, len(f) - 1)))
    if f:
        f[i] ^= 0xFF
    return bytes(f), f"invert@{i}"


@st.composite
def mutated(draw, built_st=None) -> Mutated:
    """A valid frame with exactly one targeted damage."""
    b = draw(built_st if built_st is not None else frames(jumbo=False, max_payload=300))
    f, what = mutate_once(draw, b.frame, b.link)
    return Mutated(f, b.link, what)


@st.composite
def mutated_frames(draw, built_st=None, max_mutations=3) -> Mutated:
    """A valid frame, then 1..max_mutations damages of any kind (bytes may also be
    read with the wrong link type)."""
    b = draw(built_st if built_st is not None else frames(jumbo=False, max_payload=300))
    f, link, whats = b.frame, b.link, []
    for _ in range(draw(st.integers(1, max_mutations))):
        f, w = mutate_once(draw, f, link)
        whats.append(w)
    if draw(st.integers(0, 15)) == 0:
        link = draw(st.sampled_from(LINKS_ALL + (2, 0xFFFF)))
        whats.append(f"link={link}")
    return Mutated(f, link, ",".join(whats))


def vnet_headers(gso_types=(0, 1, 3, 4, 5, 2, 6, 0x7F, 0x80, 0x81, 0x84, 0x85, 0x83)):
    """virtio_net_hdr tuples ``(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)``
    spanning valid and invalid values (unknown types, ECN, gso_size 0/1/0xFFFF, offsets
    inside and past the frame)."""
    small = st.sampled_from([0, 1, 6, 8, 14, 16, 18, 20, 33, 34, 38, 40, 53, 54, 58, 62, 74])
    return st.tuples(
        st.sampled_from([0, 1, 2, 3, 4, 1 | 4]),
        st.sampled_from(gso_types),
        st.one_of(small, st.integers(0, 0xFFFF)),
        st.one_of(st.sampled_from([0, 1, 8, 536, 1400, 1448, 9000, 0xFFFE, 0xFFFF]), st.integers(0, 0xFFFF)),
        st.one_of(small, st.integers(0, 0xFFFF)),
        st.one_of(st.sampled_from([0, 6, 16, 2, 18]), st.integers(0, 0xFFFF)),
    )
