"""Per-frame status codes and parse flags, shared by every stage.

Every kernel writes one ``uint16`` status per frame into ``meta['status']``
(the verdict of the most recent stage that looked at the frame). Codes are
plain module-level ints so Numba folds them as compile-time constants.

Ranges (so a code says which stage produced it):

======== ===========================================
0        OK
1-63     parser (``parse.py``)
64-95    virtio_net_hdr validation (``vnet.py``)
96-127   checksum engine (``csum.py``)
128-191  GSO (``gso.py``)
192-255  GRO (``gro.py``)
256-319  pcap / NIC shim
======== ===========================================

``describe(code)`` gives the human-readable reason; ``NAMES`` maps code to
its symbolic name.
"""

from __future__ import annotations

OK = 0

# --- parser (1-63) -------------------------------------------------------
TRUNC_L2 = 1            # frame shorter than its link-layer header (incl. VLAN tags)
UNKNOWN_LINK = 2        # link type the parser does not know
NOT_IP = 3              # parsed L2 fine; the payload is not IPv4/IPv6 (informational)
TRUNC_L3 = 4            # frame ends inside the IPv4/IPv6 header
BAD_IP_VERSION = 5      # IP version nibble disagrees with the ethertype / link type
BAD_IHL = 6             # IPv4 IHL < 5
BAD_IP_LEN = 7          # IPv4 total length < IHL*4, or IPv6 jumbo length inconsistent
TRUNC_EXT = 8           # frame ends inside an IPv6 extension header
EXT_OVERRUN = 9         # an IPv6 extension header runs past the IP packet
EXT_CHAIN = 10          # IPv6 extension-header chain too long (a loop, or a DoS)
BAD_EXT_ORDER = 11      # hop-by-hop options not directly after the IPv6 header
TRUNC_L4 = 12           # frame ends inside the TCP/UDP/ICMP header
BAD_TCP_DOFF = 13       # TCP data offset < 5
BAD_L4_LEN = 14         # L4 header (TCP doff*4, UDP length) exceeds the IP packet
TRUNC_PAYLOAD = 15      # headers fine, but the frame holds fewer bytes than IP says (snaplen)
TOO_MANY_VLANS = 16     # more VLAN tags than MAX_VLANS
BAD_JUMBO = 17          # RFC 2675 jumbo option malformed or inconsistent
BAD_OPTION = 18         # an IPv6 option TLV runs past its header

# --- virtio_net_hdr (64-95) -----------------------------------------------
VNET_BAD_GSO_TYPE = 64      # unknown gso_type
VNET_GSO_SIZE_ZERO = 65     # GSO type with gso_size 0 or 0xFFFF (GSO_BY_FRAGS)
VNET_CSUM_OUTSIDE = 66      # csum_start/csum_offset point outside the frame
VNET_CSUM_START_LOW = 67    # csum_start before the minimal transport offset
VNET_PROTO_MISMATCH = 68    # GSO without NEEDS_CSUM: no L4 header of the type's protocol
VNET_BAD_CSUM_OFFSET = 69   # csum_offset not 16 (TCP) / 6 (UDP) for a GSO frame
VNET_USO_NO_CSUM = 70       # UDP_L4 GSO without NEEDS_CSUM
VNET_USO_ECN = 71           # UDP_L4 GSO with the ECN bit
VNET_TOO_MANY_SEGS = 72     # USO payload > gso_size * UDP_MAX_SEGMENTS
VNET_SHORT = 73             # buffer shorter than the virtio header itself
VNET_HDR_LEN = 74           # hdr_len (or csum_start + csum_offset + 2) longer than the frame

# --- checksum (96-127) ---------------------------------------------------
CSUM_BAD_IP = 96          # IPv4 header checksum wrong
CSUM_BAD_L4 = 97          # TCP/UDP/ICMP checksum wrong
CSUM_PARTIAL = 98         # L4 field holds the pseudo-header sum (CHECKSUM_PARTIAL capture)
CSUM_SKIP_FRAG = 99       # not checked: IP fragment
CSUM_SKIP_PROTO = 100     # not checked: no checksum this engine knows
CSUM_SKIP_TRUNC = 101     # not checked: frame truncated or malformed
CSUM_UDP_ZERO_V6 = 102    # UDP over IPv6 with checksum 0 (an error, RFC 8200)
CSUM_NONE = 103           # UDP over IPv4 with checksum 0 ("no checksum"), nothing to verify
CSUM_BAD_START = 104      # NEEDS_CSUM with csum_start/offset outside the frame
CSUM_NA = 105             # no checksum at this layer (IPv6 header, non-IP frame)

# --- GSO (128-191) -------------------------------------------------------
GSO_PASS = 128            # needed no segmentation; copied through unchanged
GSO_SEGMENTED = 129       # cut into segments
GSO_NOT_SUPPORTED = 130   # a frame type GSO does not handle (passed through)
GSO_BAD_INPUT = 131       # malformed super-packet (refused)
GSO_TOO_MANY_SEGS = 132   # more segments than allowed (refused)
GSO_NO_ROOM = 133         # output arena full; frame not processed (retry with more room)
GSO_MSS_TOO_SMALL = 134   # gso_size / MSS below the minimum (refused)
GSO_FRAGMENTED = 135      # UFO: cut into IP fragments

# --- GRO (192-255) -------------------------------------------------------
GRO_MERGED = 192          # merged into an earlier frame's aggregate
GRO_HEAD = 193            # first frame of an emitted aggregate (the output frame)
GRO_NOT_TCP_UDP = 194     # not TCP/UDP over IP: passed through
GRO_FLUSH_FLAGS = 195     # SYN/RST/URG: passed alone
GRO_PURE_ACK = 196        # no payload: passed alone
GRO_BAD_CSUM = 197        # checksum wrong: passed alone, never merged
GRO_IP_OPTS = 198         # IPv4 options: not eligible
GRO_FRAGMENT = 199        # IP fragment: not eligible
GRO_MALFORMED = 200       # parse error: passed through untouched
GRO_NO_ROOM = 201         # output arena full
GRO_TABLE_FULL = 202      # flow table full: passed alone
GRO_SINGLE = 203          # eligible, but nothing to merge with: emitted alone
GRO_HELD = 204            # held in a GroTable, waiting for more segments (streaming)
GRO_HEAD_FIXEDID = 205    # aggregate head whose IPv4 IDs were all equal (Linux SKB_GSO_TCP_FIXEDID)
GRO_L2_PAD = 206          # bytes after the IP packet (Ethernet padding): passed alone
GRO_ALREADY_GSO = 207     # already a super-packet (gso_type set, IPv4 length 0, jumbo): passed alone
GRO_UDP_NO_CSUM = 208     # UDP with checksum 0 (UDP GRO needs one): passed alone
GRO_IPV6_EXT = 209        # IPv6 extension header GRO does not cross (fragment, AH): passed alone
GRO_TOO_BIG = 210         # frame larger than a GroTable slot: passed alone

# --- pcap / shim (256-319) -----------------------------------------------
PCAP_TRUNCATED = 256      # record cut short by end of file
SHIM_DROPPED = 257        # frame could not be queued

# Parse flags (meta['pflags'], bit set) -------------------------------------
PF_IPV4_OPTS = 1 << 0     # IPv4 header longer than 20 bytes
PF_FRAG = 1 << 1          # an IP fragment (IPv4 MF/offset, or an IPv6 fragment header)
PF_FRAG_FIRST = 1 << 2    # ...and it is the first fragment (offset 0)
PF_LEN0 = 1 << 3          # IP length field 0: length taken from the frame (BIG TCP / captured TSO)
PF_JUMBO = 1 << 4         # IPv6 RFC 2675 jumbo payload option present
PF_IPV6_EXT = 1 << 5      # IPv6 extension headers present
PF_L2_PAD = 1 << 6        # bytes after the IP packet (Ethernet padding)
PF_UDP_SHORT = 1 << 7     # UDP length shorter than the IP payload
PF_ROUTING = 1 << 8       # IPv6 routing header with segments left: dst_off is the final destination
PF_DF = 1 << 9            # IPv4 don't-fragment bit set

MAX_VLANS = 8
MAX_EXT_HEADERS = 16


NAMES: dict[int, str] = {
    v: k
    for k, v in dict(globals()).items()
    if isinstance(v, int) and k.isupper() and not k.startswith(("PF_", "MAX_"))
}

_DESCRIPTIONS = {
    OK: "ok",
    TRUNC_L2: "truncated link-layer header",
    UNKNOWN_LINK: "unknown link type",
    NOT_IP: "not IPv4/IPv6",
    TRUNC_L3: "truncated IP header",
    BAD_IP_VERSION: "IP version does not match the link-layer protocol",
    BAD_IHL: "IPv4 IHL below 5",
    BAD_IP_LEN: "IP length field inconsistent",
    TRUNC_EXT: "truncated IPv6 extension header",
    EXT_OVERRUN: "IPv6 extension header runs past the packet",
    EXT_CHAIN: "IPv6 extension-header chain too long",
    BAD_EXT_ORDER: "hop-by-hop header not first",
    TRUNC_L4: "truncated L4 header",
    BAD_TCP_DOFF: "TCP data offset below 5",
    BAD_L4_LEN: "L4 length exceeds the IP packet",
    TRUNC_PAYLOAD: "frame shorter than the IP length (snaplen)",
    TOO_MANY_VLANS: "too many VLAN tags",
    BAD_JUMBO: "bad IPv6 jumbo payload option",
    BAD_OPTION: "IPv6 option runs past its header",
    VNET_BAD_GSO_TYPE: "virtio_net_hdr: unknown gso_type",
    VNET_GSO_SIZE_ZERO: "virtio_net_hdr: gso_size 0 or 0xFFFF",
    VNET_CSUM_OUTSIDE: "virtio_net_hdr: csum_start/offset outside the frame",
    VNET_CSUM_START_LOW: "virtio_net_hdr: csum_start before the transport header",
    VNET_PROTO_MISMATCH: "virtio_net_hdr: gso_type does not match the headers",
    VNET_BAD_CSUM_OFFSET: "virtio_net_hdr: wrong csum_offset for the protocol",
    VNET_USO_NO_CSUM: "virtio_net_hdr: UDP_L4 without NEEDS_CSUM",
    VNET_USO_ECN: "virtio_net_hdr: UDP_L4 with ECN",
    VNET_TOO_MANY_SEGS: "virtio_net_hdr: too many UDP segments",
    VNET_SHORT: "buffer shorter than the virtio_net_hdr",
    VNET_HDR_LEN: "virtio_net_hdr: hdr_len longer than the frame",
    CSUM_BAD_IP: "bad IPv4 header checksum",
    CSUM_BAD_L4: "bad L4 checksum",
    CSUM_PARTIAL: "partial checksum (CHECKSUM_PARTIAL, captured on the sender)",
    CSUM_SKIP_FRAG: "not checked: fragment",
    CSUM_SKIP_PROTO: "not checked: protocol without a known checksum",
    CSUM_SKIP_TRUNC: "not checked: truncated or malformed",
    CSUM_UDP_ZERO_V6: "UDP checksum 0 over IPv6",
    CSUM_NONE: "UDP over IPv4 without checksum",
    CSUM_BAD_START: "csum_start/csum_offset outside the frame",
    CSUM_NA: "no checksum at this layer",
    GSO_PASS: "no segmentation needed",
    GSO_SEGMENTED: "segmented",
    GSO_NOT_SUPPORTED: "not a TCP/UDP super-packet this engine segments",
    GSO_BAD_INPUT: "malformed super-packet",
    GSO_TOO_MANY_SEGS: "too many segments",
    GSO_NO_ROOM: "output arena full",
    GSO_MSS_TOO_SMALL: "segment size too small",
    GSO_FRAGMENTED: "fragmented (UFO)",
    GRO_MERGED: "merged",
    GRO_HEAD: "aggregate head",
    GRO_NOT_TCP_UDP: "not TCP/UDP over IP",
    GRO_FLUSH_FLAGS: "SYN/RST/URG",
    GRO_PURE_ACK: "no payload",
    GRO_BAD_CSUM: "bad checksum",
    GRO_IP_OPTS: "IPv4 options",
    GRO_FRAGMENT: "IP fragment",
    GRO_MALFORMED: "malformed",
    GRO_NO_ROOM: "output arena full",
    GRO_TABLE_FULL: "flow table full",
    GRO_SINGLE: "nothing to merge with",
    GRO_HELD: "held for merging",
    GRO_HEAD_FIXEDID: "aggregate head (fixed IPv4 ID)",
    GRO_L2_PAD: "padding after the IP packet",
    GRO_ALREADY_GSO: "already a super-packet",
    GRO_UDP_NO_CSUM: "UDP without checksum",
    GRO_IPV6_EXT: "IPv6 extension header not coalesced",
    GRO_TOO_BIG: "frame larger than a table slot",
    PCAP_TRUNCATED: "record truncated by end of file",
    SHIM_DROPPED: "dropped by the port",
}


def describe(code: int) -> str:
    """Human-readable reason for a status code."""
    return _DESCRIPTIONS.get(int(code), f"status {int(code)}")


def is_parse_error(code: int) -> bool:
    """True for parser codes that mean the frame's headers cannot be trusted."""
    return 0 < int(code) < 64 and int(code) != NOT_IP
