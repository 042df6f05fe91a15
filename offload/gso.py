"""GSO: cut TCP and UDP super-packets into wire-size frames exactly as Linux does.

Entry points (Python, one call per burst):

* :func:`segment` — TCP segmentation (TSO semantics) and UDP segmentation (USO,
  ``UDP_SEGMENT``) over IPv4/IPv6, behind any number of VLAN tags the parser
  accepts; UFO frames (virtio ``GSO_UDP``) are fragmented as :func:`fragment_udp` does.
* :func:`fragment_udp` — UDP fragmentation offload (UFO) as its own entry point:
  one UDP datagram becomes IP fragments.

Where the segment size comes from:

* **per frame, from the virtio_net_hdr in** ``meta`` (``use_vnet=True``, the default
  when neither ``mss`` nor ``mtu`` is given): ``gso_type`` / ``gso_size`` /
  ``NEEDS_CSUM`` / ``csum_start`` / ``csum_offset``, validated with the kernel's
  rules (:func:`offload.vnet.validate_one`); frames with ``gso_type`` NONE pass
  through (their NEEDS_CSUM checksum is completed in ``full`` mode, as the
  kernel's ``skb_checksum_help`` does: sum from csum_start to the end of the frame,
  a result of 0 written as 0xFFFF);
* **for the whole batch** (a capture has no header): ``mss`` = payload bytes per
  segment, or ``mtu`` = IP packet bytes per frame (the MSS is then the MTU minus
  that frame's IP and TCP/UDP header lengths, as a TCP sender's ``mss_cache``).
  Frames that fit pass through unchanged.

Linux rules followed (``net/ipv4/tcp_offload.c``, ``net/ipv4/af_inet.c``,
``net/ipv6/ip6_offload.c``, ``net/ipv4/udp_offload.c``; reference/offload-rules.md §2):

* headers (L2 + IP + extension headers + TCP/UDP incl. options) are replicated;
* TCP: sequence number of segment k = seq + k*MSS (mod 2^32); FIN and PSH only on
  the last segment; CWR only on the first unless ``accecn`` (SKB_GSO_TCP_ACCECN);
  every other field and option copied;
* IPv4: total length and header checksum per segment; ID = ID + k (mod 2^16), or the
  same ID on every TCP segment with ``fixedid`` (SKB_GSO_TCP_FIXEDID); total length 0
  on input (BIG TCP, captured TSO) is fine, segments get their real length;
* IPv6: payload length per segment; an RFC 2675 jumbo hop-by-hop header (the
  8-byte, jumbo-only form BIG TCP uses) is removed from the segments; hop-by-hop,
  routing and destination-options headers are replicated (routing headers with segments
  left: the pseudo-header takes the final destination); a super-packet behind AH, a
  fragment header or another jumbo form is not cut (GSO_NOT_SUPPORTED, passed through),
  as Linux GSO has no handler for them;
* USO: ``gso_size`` payload bytes per datagram (the last shorter), own UDP length
  and checksum, at most ``max_udp_segments`` (128, UDP_MAX_SEGMENTS) per super-packet;
* TCP: at most ``max_segments`` (65535, :data:`GSO_MAX_SEGS`) segments per super-packet,
  the most a Linux TCP sender builds (``gso_segs`` is 16-bit); more is refused
  (``GSO_TOO_MANY_SEGS``). Linux itself would cut such an skb in software
  (``gso_features_check`` only takes the device's GSO away), but none comes from its stack;
* UFO: the UDP checksum is computed once over the whole datagram, then the IP
  payload (UDP header + data) is cut into ``frag_size``-byte pieces (a multiple of
  8): IPv4 fragments keep the ID, carry offset/8 and MF on all but the last, and the
  DF bit is cleared (Linux writes the fragment-offset word whole); IPv6 gets a
  fragment header (Identification ``ipv6_frag_id`` + input index; Linux picks a
  hashed value instead) after the fixed header — IPv6 UFO with extension headers
  is refused (GSO_NOT_SUPPORTED).

Deliberate difference: Linux 6.18 decides "this virtio frame is GSO" with only 20
TCP header bytes counted, so a frame whose payload fits one segment but whose payload
+ TCP options exceed gso_size becomes a one-segment GSO skb the stack then drops
(AF_PACKET send fails with ENOMEM). Here such a frame passes through (GSO_PASS).

Checksum modes (``csum``):

* ``"full"``: every segment valid on the wire. The payload copy and its checksum
  are one pass (:func:`offload.vcopy.copy_sum_at`); the segment's checksum is the
  pseudo-header sum + the header sum (computed once per super-packet, with the
  changing fields added per segment) + the payload sum. The input's L4 checksum
  field is never trusted (captured super-frames carry a partial sum). A TCP result
  of 0 is stored as 0x0000, a UDP one as 0xFFFF (as Linux).
* ``"partial"``: segments keep CHECKSUM_PARTIAL: the L4 field holds the folded
  pseudo-header sum of the segment, ``meta`` gets NEEDS_CSUM with csum_start /
  csum_offset (for a consumer that offloads — virtio, tap, VALE). IPv4 header
  checksums are always computed.
* ``"none"``: the L4 checksum field is copied as it was.

Output goes into an :class:`~offload.batch.OutputArena` sized from the input by a
planning pass (no per-segment Python objects). Output frames are placed so each
payload keeps its source's alignment mod 8 (the vectorised copy-and-sum,
:func:`offload.vcopy.copy_sum_at`, then splits loads and stores across cache lines
alike).
Each input frame gets a status in ``meta['status']``: ``GSO_SEGMENTED``,
``GSO_FRAGMENTED``, ``GSO_PASS``, ``GSO_NOT_SUPPORTED`` (passed through), or a
refusal (a parse code, a ``VNET_*`` code, ``GSO_BAD_INPUT``, ``GSO_TOO_MANY_SEGS``,
``GSO_MSS_TOO_SMALL``, ``GSO_NO_ROOM``); ``meta['seg']`` of an input frame is the
number of frames emitted for it. Output ``meta``: the parsed layout of each
segment, ``src`` = input index, ``seg`` = segment number, ``status`` =
GSO_SEGMENTED / GSO_FRAGMENTED / GSO_PASS / GSO_NOT_SUPPORTED / the refusal code
(when ``refused="pass"``).

Timestamps of segments are the super-packet's.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core import config as _nb_config

from . import status as S
from .batch import META_DTYPE, OutputArena, PacketBatch, trusted_batch
from .csum import (_mk_ptr_store, _ref, _st8, acc_any, bswap16, csum_add, csum_sub, fold16, pseudo_sum_v4,
                   pseudo_sum_v6, sum_short)
from .parse import _borrow, parse_one
from .vcopy import copy_at, copy_sum_at
from .vnet import (F_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP, GSO_UDP_L4,
                   UDP_MAX_SEGMENTS, validate_one)

# actions decided by the planning pass
_A_REFUSE = 0
_A_PASS = 1          # copied unchanged
_A_PASS_CSUM = 2     # copied, NEEDS_CSUM checksum completed (full mode)
_A_TCP = 3
_A_USO = 4
_A_UFO4 = 5
_A_UFO6 = 6

CSUM_FULL = 0
CSUM_PARTIAL = 1
CSUM_NONE = 2
_CSUM_MODES = {"full": CSUM_FULL, "partial": CSUM_PARTIAL, "none": CSUM_NONE}

UDP_KEEP = 0
UDP_USO = 1
UDP_UFO = 2
_UDP_MODES = {"keep": UDP_KEEP, "uso": UDP_USO, "ufo": UDP_UFO}

# counters (indices into the int64 array the kernels fill)
C_FRAMES = 0        # input frames seen
C_SUPER = 1         # super-packets cut (segmented or fragmented)
C_SEGS = 2          # segments / fragments written
C_PASS = 3          # frames passed through (needed nothing, or not segmentable)
C_REFUSED = 4       # frames refused (status says why)
C_NO_ROOM = 5       # frames skipped because the arena was full
C_PAYLOAD = 6       # payload bytes of the super-packets cut
C_BYTES_OUT = 7     # bytes written to the arena (frames only)
C_NOT_SUPPORTED = 8  # passed through although over the MTU/MSS (not TCP/UDP, fragment, ...)
N_COUNTERS = 9
COUNTER_NAMES = ("frames", "super_frames", "segments", "passed", "refused", "no_room",
                 "payload_bytes", "bytes_out", "not_supported")

# Most TCP segments one super-packet may become (Linux GSO_MAX_SEGS, the default
# dev->gso_max_segs; skb_shared_info.gso_segs is a u16). Linux's TCP sender never builds a
# bigger one (tcp_tso_autosize caps at sk_gso_max_segs); only untrusted input (a virtio
# header or a capture with a tiny MSS) can ask for more, and is refused: GSO_TOO_MANY_SEGS.
GSO_MAX_SEGS = 65535

_TCP_FIN = 0x01
_TCP_PSH = 0x08
_TCP_CWR = 0x80


@njit(cache=True, nogil=True, inline="always")
def _be16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, nogil=True, inline="always")
def _put16(b, p, v):
    b[p] = (v >> 8) & 0xFF
    b[p + 1] = v & 0xFF


@njit(cache=True, nogil=True, inline="always")
def _put32(b, p, v):
    b[p] = (v >> 24) & 0xFF
    b[p + 1] = (v >> 16) & 0xFF
    b[p + 2] = (v >> 8) & 0xFF
    b[p + 3] = v & 0xFF


@njit(cache=True, nogil=True, inline="always")
def _i(x):
    return np.int64(x)


# Big-endian 16/32-bit stores into an output buffer through its data pointer (one store
# each instead of two or four byte stores, no index checks); bounds-checked runs
# (NUMBA_BOUNDSCHECK=1) get the array (csum._ref) and store byte by byte, checked.
if _nb_config.BOUNDSCHECK:
    _st16be = _put16
    _st32be = _put32
else:
    _st16_raw = _mk_ptr_store(16)
    _st32_raw = _mk_ptr_store(32)

    @njit(cache=True, nogil=True, inline="always")
    def _st16be(p, idx, v):
        _st16_raw(p, idx, bswap16(np.uint64(v & 0xFFFF)))

    @njit(cache=True, nogil=True, inline="always")
    def _st32be(p, idx, v):
        w = np.uint64(v & 0xFFFFFFFF)
        _st32_raw(p, idx, (bswap16(w >> np.uint64(16))) | (bswap16(w & np.uint64(0xFFFF)) << np.uint64(16)))


@njit(cache=True, nogil=True)
def _jumbo_removable(buf, s, l3):
    """True when the IPv6 header at ``s+l3`` is followed by exactly the 8-byte hop-by-hop
    header holding only the jumbo option (the form Linux BIG TCP builds and removes)."""
    return (buf[s + l3 + 6] == 0 and buf[s + l3 + 41] == 0 and buf[s + l3 + 42] == 0xC2
            and buf[s + l3 + 43] == 4)


@njit(cache=True, nogil=True)
def _need(meta, i, a, k, n, jcut):
    """Arena bytes frame ``i`` needs for action ``a`` with ``k`` output frames (7 bytes of
    alignment slack per frame). The planner and the writer must agree on it."""
    m = meta[i]
    if a == _A_TCP or a == _A_USO:
        return k * (_i(m.pay_off) - jcut + 7) + _i(m.pay_len)
    if a == _A_UFO4 or a == _A_UFO6:
        extra = 8 if a == _A_UFO6 else 0
        return k * (_i(m.l4_off) + extra + 7) + _i(m.l3_end) - _i(m.l4_off)
    return n + 7


@njit(cache=True, nogil=True)
def _jcut(buf, s, meta, i):
    """8 when frame ``i`` carries the removable IPv6 jumbo hop-by-hop header, else 0."""
    m = meta[i]
    if (_i(m.pflags) & S.PF_JUMBO) and _i(m.l3_proto) == 0x86DD and _i(m.ext_len) >= 8 \
            and _jumbo_removable(buf, s, _i(m.l3_off)):
        return 8
    return 0


@njit(cache=True, nogil=True)
def _ext_segmentable(buf, s, n, meta, i):
    """True when every IPv6 extension header before the L4 header is one Linux GSO walks
    through (hop-by-hop, routing, destination options: INET6_PROTO_GSO_EXTHDR). AH would
    need a new ICV per segment, a fragment header means it is not a whole packet."""
    m = meta[i]
    l3 = _i(m.l3_off)
    l4 = _i(m.l4_off)
    if l3 < 0 or l4 < l3 + 40 or l4 > n:
        return False
    nh = _i(buf[s + l3 + 6])
    p = l3 + 40
    while p < l4:
        if nh != 0 and nh != 43 and nh != 60:
            return False
        if p + 2 > n:
            return False
        nh_next = _i(buf[s + p])
        p += (_i(buf[s + p + 1]) + 1) * 8
        nh = nh_next
    return p == l4


@njit(cache=True, nogil=True)
def _plan(buf, off, length, meta, use_vnet, mss_arg, mtu_arg, udp_mode, tcp_on, csum_mode,
          max_udp_segs, max_tcp_segs, refused_pass, act, segsz, nseg, counters):
    """Parse and decide, per frame: action, segment size, segment count. Returns
    ``(frames_out, bytes_out)`` needed by :func:`_run` (bytes include alignment slack)."""
    nbuf = buf.shape[0]
    total_frames = 0
    total_bytes = 0
    for i in range(off.shape[0]):
        s = off[i]
        n = length[i]
        act[i] = _A_REFUSE
        segsz[i] = 0
        nseg[i] = 0
        if s < 0 or n < 0 or s + n > nbuf:
            meta[i].status = S.TRUNC_L2
            continue
        pst = parse_one(buf, s, n, meta, i)
        m = meta[i]
        st = S.OK
        kind = _A_PASS
        size = 0
        l3p = _i(m.l3_proto)
        l4p = _i(m.l4_proto)
        pf = _i(m.pflags)
        plen = _i(m.pay_len)
        pass_kind = _A_PASS
        if use_vnet:
            gt = _i(m.gso_type) & 0x7F
            needs = (_i(m.vnet_flags) & F_NEEDS_CSUM) != 0
            if needs and csum_mode == CSUM_FULL:
                pass_kind = _A_PASS_CSUM
            if gt == GSO_NONE:
                vs = validate_one(n, meta, i)
                if vs != S.OK:
                    st = vs
                elif needs and csum_mode == CSUM_FULL:
                    kind = _A_PASS_CSUM
            else:
                vs = validate_one(n, meta, i)      # the kernel's checks come first, as in Linux
                if vs != S.OK:
                    st = vs
                elif pst != S.OK:
                    st = pst
                elif (((gt == GSO_TCPV4 or gt == GSO_TCPV6) and l4p != 6)
                      or ((gt == GSO_UDP or gt == GSO_UDP_L4) and l4p != 17)
                      or (gt == GSO_TCPV4 and l3p != 0x0800) or (gt == GSO_TCPV6 and l3p != 0x86DD)):
                    # validate_one trusts NEEDS_CSUM offsets as Linux does; Linux then
                    # drops such a frame when it segments it
                    st = S.VNET_PROTO_MISMATCH
                elif needs and _i(m.csum_start) != _i(m.l4_off):
                    st = S.GSO_BAD_INPUT      # Linux: csum_start must be the transport header
                else:
                    size = _i(m.gso_size)
                    if gt == GSO_TCPV4 or gt == GSO_TCPV6:
                        kind = _A_TCP
                    elif gt == GSO_UDP_L4:
                        kind = _A_USO
                    elif gt == GSO_UDP:
                        kind = _A_UFO4 if l3p == 0x0800 else _A_UFO6
                    if kind == _A_TCP or kind == _A_USO:
                        if plen <= size:
                            kind = pass_kind
        else:
            if pst != S.OK:
                # headers unreadable: a frame that fits passes, a big one is refused
                big = False
                if m.l3_off >= 0 and m.l3_end > m.l3_off:
                    if mtu_arg > 0:
                        big = _i(m.l3_end) - _i(m.l3_off) > mtu_arg
                    elif m.pay_off > 0:
                        big = plen > mss_arg
                if big:
                    st = pst
            elif pf & S.PF_FRAG:
                kind = _A_PASS
            elif l4p == 6 and tcp_on:
                jcut = 8 if (pf & S.PF_JUMBO) else 0
                size = mss_arg if mss_arg > 0 else mtu_arg - (_i(m.l3_hdr_len) - jcut) - _i(m.l4_hdr_len)
                kind = _A_TCP if plen > size else _A_PASS
            elif l4p == 17 and udp_mode == UDP_USO:
                size = mss_arg if mss_arg > 0 else mtu_arg - _i(m.l3_hdr_len) - 8
                kind = _A_USO if plen > size else _A_PASS
            elif l4p == 17 and udp_mode == UDP_UFO:
                if mss_arg > 0:
                    size = mss_arg & ~7
                elif l3p == 0x0800:
                    size = (mtu_arg - _i(m.l3_hdr_len)) & ~7
                else:
                    size = (mtu_arg - _i(m.l3_hdr_len) - 8) & ~7
                kind = _A_UFO4 if l3p == 0x0800 else _A_UFO6
                if _i(m.l3_end) - _i(m.l4_off) <= size:
                    kind = _A_PASS
            if kind == _A_PASS and st == S.OK and pst == S.OK and m.l3_off >= 0:
                # not segmentable but too big: passed through, counted apart
                if mtu_arg > 0 and _i(m.l3_end) - _i(m.l3_off) > mtu_arg and not (l4p == 17 and udp_mode == UDP_KEEP):
                    st = S.GSO_NOT_SUPPORTED
        # checks common to the cutting actions
        if st == S.OK and kind >= _A_TCP:
            if kind == _A_TCP or kind == _A_USO:
                if size < 1:
                    st = S.GSO_MSS_TOO_SMALL
                elif pf & S.PF_FRAG:
                    st = S.GSO_BAD_INPUT
                elif (pf & S.PF_IPV6_EXT) and not _ext_segmentable(buf, s, n, meta, i):
                    st = S.GSO_NOT_SUPPORTED
                else:
                    jcut = _jcut(buf, s, meta, i)
                    if (pf & S.PF_JUMBO) and jcut == 0:
                        st = S.GSO_NOT_SUPPORTED
                    l3len = _i(m.l3_hdr_len) - jcut + _i(m.l4_hdr_len) + size
                    if l3p == 0x86DD:
                        l3len -= 40
                    if l3len > 0xFFFF:
                        st = S.GSO_BAD_INPUT          # a segment would not fit the IP length field
                    k = (plen + size - 1) // size
                    if kind == _A_USO and k > max_udp_segs:
                        st = S.GSO_TOO_MANY_SEGS
                    elif kind == _A_TCP and k > max_tcp_segs:
                        st = S.GSO_TOO_MANY_SEGS
                    if st == S.OK:
                        nseg[i] = k
                        segsz[i] = size
                        act[i] = kind
                        total_frames += k
                        total_bytes += _need(meta, i, kind, k, n, jcut)
            else:
                dlen = _i(m.l3_end) - _i(m.l4_off)
                if pf & (S.PF_FRAG | S.PF_UDP_SHORT):
                    st = S.GSO_BAD_INPUT
                elif size < 8:
                    st = S.GSO_MSS_TOO_SMALL
                elif size & 7:
                    st = S.GSO_BAD_INPUT            # offsets are in 8-byte units
                elif kind == _A_UFO6 and _i(m.ext_len) != 0:
                    st = S.GSO_NOT_SUPPORTED
                elif dlen <= size:
                    kind = pass_kind
                else:
                    k = (dlen + size - 1) // size
                    nseg[i] = k
                    segsz[i] = size
                    act[i] = kind
                    total_frames += k
                    total_bytes += _need(meta, i, kind, k, n, 0)
            if st == S.OK and act[i] >= _A_TCP:
                m.status = S.GSO_SEGMENTED if act[i] <= _A_USO else S.GSO_FRAGMENTED
                continue
        if st == S.GSO_NOT_SUPPORTED:
            kind = _A_PASS          # not ours to cut: passed through unchanged, counted apart
        if st == S.OK or st == S.GSO_NOT_SUPPORTED:
            act[i] = kind
            m.status = S.GSO_PASS if st == S.OK else st
            total_frames += 1
            total_bytes += _need(meta, i, _A_PASS, 1, n, 0)
        else:
            m.status = st
            if refused_pass:
                total_frames += 1
                total_bytes += _need(meta, i, _A_PASS, 1, n, 0)
    return total_frames, total_bytes


@njit(cache=True, nogil=True, inline="always")
def _copy_meta(meta, i, ometa, j):
    """Output record ``j`` starts as input record ``i`` (parsed layout, virtio fields, status)."""
    ometa[j] = meta[i]
    ometa[j].seg = 0
    ometa[j].src = i


@njit(cache=True, nogil=True, inline="always")
def _clear_vnet(o, hdr_len):
    """An output frame carries no GSO request and no checksum to complete."""
    o.vnet_flags = 0
    o.gso_type = 0
    o.gso_size = 0
    o.csum_start = 0
    o.csum_offset = 0
    o.hdr_len = hdr_len
    o.num_buffers = 0


@njit(cache=True, nogil=True, inline="always")
def _ipv4_base_sum(buf, s, l3, ihl, var_off):
    """Sum of the IPv4 header at ``s+l3`` without its total length, checksum and the
    16-bit field at ``var_off`` (ID for segments, fragment word for fragments): the part
    every output frame shares."""
    ipsum = sum_short(buf, s + l3, ihl)
    ipsum = csum_sub(ipsum, _be16(buf, s + l3 + 2))
    ipsum = csum_sub(ipsum, _be16(buf, s + l3 + var_off))
    return csum_sub(ipsum, _be16(buf, s + l3 + 10))


@njit(cache=True, nogil=True, inline="always")
def _place(cursor, src_abs, lead):
    """Output offset >= cursor such that ``out + lead`` has the alignment (mod 8) of ``src_abs``
    (then the payload copy-and-sum runs on whole 64-bit words)."""
    return cursor + ((src_abs - lead - cursor) & 7)


@njit(cache=True, nogil=True)
def _seg_tcp_udp(buf, s, meta, i, kind, mss, k_total, csum_mode, fixedid, accecn,
                 obuf, cursor, ooff, olen, ometa, j):
    """Write the segments of super-packet ``i`` (TCP or USO) starting at output frame ``j``
    and byte offset ``cursor``. Returns the new cursor.

    The arrays arrive borrowed (no reference count): the copies read and write through
    data pointers, the header fields are patched with one 16/32-bit store each, and the
    output records are written in a second, copy-free loop."""
    m = meta[i]
    l3 = _i(m.l3_off)
    l4 = _i(m.l4_off)
    po = _i(m.pay_off)
    plen = _i(m.pay_len)
    thl = _i(m.l4_hdr_len)
    v4 = _i(m.l3_proto) == 0x0800
    proto = _i(m.l4_proto)
    jcut = _jcut(buf, s, meta, i)
    hdr_out = po - jcut
    l4o = l4 - jcut                  # L4 offset in the segments
    head1 = po if jcut == 0 else l3 + 40   # first header piece copied as is
    is_tcp = kind == _A_TCP
    full = csum_mode == CSUM_FULL
    # -- per super-packet sums (the fields that change per segment are taken out) --
    if v4:
        ihl = _i(m.l3_hdr_len)
        ipsum = _ipv4_base_sum(buf, s, l3, ihl, 4)
        ip_id = _be16(buf, s + l3 + 4)
        psum = pseudo_sum_v4(buf, s + l3, proto, 0)
    else:
        ihl = 0
        ipsum = np.uint64(0)
        ip_id = 0
        psum = pseudo_sum_v6(buf, s + l3, s + _i(m.dst_off), proto, 0)
    hsum = sum_short(buf, s + l4, thl)
    hsum = csum_sub(hsum, _be16(buf, s + l4 + (16 if is_tcp else 6)))   # checksum field
    if is_tcp:
        seq0 = (_be16(buf, s + l4 + 4) << 16) | _be16(buf, s + l4 + 6)
        hsum = csum_sub(hsum, _be16(buf, s + l4 + 4))
        hsum = csum_sub(hsum, _be16(buf, s + l4 + 6))
        fword = _be16(buf, s + l4 + 12)
        hsum = csum_sub(hsum, fword)
    else:
        seq0 = 0
        fword = 0
        hsum = csum_sub(hsum, _be16(buf, s + l4 + 4))       # UDP length
    base = csum_add(psum, hsum)
    hbh_next = _i(buf[s + l3 + 40]) if jcut else 0
    # flags of the first, middle and last segments (FIN/PSH last only, CWR first only)
    fl_mid = fword & ~(_TCP_FIN | _TCP_PSH)
    if not accecn:
        fl_mid &= ~_TCP_CWR
    fl_first = fword & ~(_TCP_FIN | _TCP_PSH)
    fl_last = fword if (accecn or k_total == 1) else fword & ~_TCP_CWR
    id_step = 0 if (fixedid and is_tcp) else 1
    ext6 = _i(m.ext_len) - jcut
    pin = _ref(buf)
    pout = _ref(obuf)
    last_len = plen - mss * (k_total - 1)
    cpos_rel = l4o + (16 if is_tcp else 6)
    for k in range(k_total):
        last = k == k_total - 1
        seglen = mss if not last else last_len
        src_pay = s + po + k * mss
        d = _place(cursor, src_pay, hdr_out)
        copy_at(pin, s, pout, d, head1)
        if jcut:
            copy_at(pin, s + l3 + 48, pout, d + l3 + 40, po - (l3 + 48))
        if full:
            paysum = copy_sum_at(pin, src_pay, pout, d + hdr_out, seglen)
        else:
            copy_at(pin, src_pay, pout, d + hdr_out, seglen)
            paysum = np.uint64(0)
        l4len = thl + seglen
        # IP header
        if v4:
            tot = ihl + l4len
            idk = (ip_id + k * id_step) & 0xFFFF
            _st32be(pout, d + l3 + 2, (tot << 16) | idk)     # total length, ID
            c = fold16(ipsum + np.uint64(tot) + np.uint64(idk))
            _st16be(pout, d + l3 + 10, _i(~c & np.uint64(0xFFFF)))
        else:
            _st16be(pout, d + l3 + 4, ext6 + l4len)
            if jcut:
                _st8(pout, d + l3 + 6, np.uint64(hbh_next))
        # L4 header
        if is_tcp:
            seq = (seq0 + k * mss) & 0xFFFFFFFF
            _st32be(pout, d + l4o + 4, seq)
            fl = fl_mid if k > 0 else fl_first
            if last:
                fl = fl_last
            _st8(pout, d + l4o + 13, np.uint64(fl & 0xFF))
            var = np.uint64(seq >> 16) + np.uint64(seq & 0xFFFF) + np.uint64(fl)
        else:
            _st16be(pout, d + l4o + 4, l4len)
            var = np.uint64(l4len)
        if full:
            # one fold of the plain 64-bit sum: the same 1..0xFFFF representative as
            # folding after every addition (all terms are small)
            tsum = fold16(base + np.uint64(l4len) + var + paysum)
            c = _i(~tsum & np.uint64(0xFFFF))
            if c == 0 and not is_tcp:
                c = 0xFFFF
            _st16be(pout, d + cpos_rel, c)
        elif csum_mode == CSUM_PARTIAL:
            _st16be(pout, d + cpos_rel, _i(csum_add(psum, np.uint64(l4len))))
        ooff[j + k] = d
        cursor = d + hdr_out + seglen
    # -- output records: the first from the input's, the others copies of the first --
    _copy_meta(meta, i, ometa, j)
    o = ometa[j]
    o.status = S.GSO_SEGMENTED
    _clear_vnet(o, hdr_out)
    if csum_mode == CSUM_PARTIAL:
        o.vnet_flags = F_NEEDS_CSUM
        o.csum_start = l4o
        o.csum_offset = 16 if is_tcp else 6
    o.pay_off = hdr_out
    o.l4_off = l4o
    pfl = _i(m.pflags) & ~(S.PF_LEN0 | S.PF_JUMBO | S.PF_L2_PAD | S.PF_UDP_SHORT)
    if jcut:
        o.ext_len = _i(m.ext_len) - 8
        o.l3_hdr_len = _i(m.l3_hdr_len) - 8
        if _i(m.dst_off) > l3 + 40:
            o.dst_off = _i(m.dst_off) - 8
        if _i(m.ext_len) == 8:
            pfl &= ~S.PF_IPV6_EXT
    o.pflags = pfl
    o.pay_len = mss
    o.l3_end = hdr_out + mss
    for k in range(1, k_total):
        ometa[j + k] = ometa[j]
        ometa[j + k].seg = k
    ol = ometa[j + k_total - 1]
    ol.pay_len = last_len
    ol.l3_end = hdr_out + last_len
    for k in range(k_total - 1):
        olen[j + k] = hdr_out + mss
    olen[j + k_total - 1] = hdr_out + last_len
    return cursor


@njit(cache=True, nogil=True)
def _frag_udp(buf, s, meta, i, kind, fsz, k_total, csum_mode, frag_id,
              obuf, cursor, ooff, olen, ometa, j):
    """Write the IP fragments of UDP datagram ``i`` (UFO). Returns the new cursor."""
    m = meta[i]
    l3 = _i(m.l3_off)
    l4 = _i(m.l4_off)
    v4 = kind == _A_UFO4
    dlen = _i(m.l3_end) - l4              # UDP header + data: the fragmentable part
    extra = 0 if v4 else 8                # IPv6 fragment header
    hdr_out = l4 + extra
    if v4:
        ihl = _i(m.l3_hdr_len)
        ipsum = _ipv4_base_sum(buf, s, l3, ihl, 6)
        psum = pseudo_sum_v4(buf, s + l3, 17, dlen)
    else:
        ihl = 0
        ipsum = np.uint64(0)
        psum = pseudo_sum_v6(buf, s + l3, s + _i(m.dst_off), 17, dlen)
    total = np.uint64(0)
    first_d = 0
    for k in range(k_total):
        last = k == k_total - 1
        chunk = fsz if not last else dlen - fsz * (k_total - 1)
        src = s + l4 + k * fsz
        d = _place(cursor, src, hdr_out)
        copy_at(_ref(buf), s, _ref(obuf), d, l4)
        if csum_mode != CSUM_NONE:
            part = copy_sum_at(_ref(buf), src, _ref(obuf), d + hdr_out, chunk)
            total = csum_add(total, part)       # chunk offsets are multiples of 8: no swap
        else:
            copy_at(_ref(buf), src, _ref(obuf), d + hdr_out, chunk)
        fo = (k * fsz) >> 3
        if v4:
            tot = ihl + chunk
            fw = fo | (0 if last else 0x2000)
            _put16(obuf, d + l3 + 2, tot)
            _put16(obuf, d + l3 + 6, fw)
            c = csum_add(csum_add(ipsum, np.uint64(tot)), np.uint64(fw))
            _put16(obuf, d + l3 + 10, _i(~c & np.uint64(0xFFFF)))
        else:
            _put16(obuf, d + l3 + 4, 8 + chunk)
            obuf[d + l3 + 6] = 44
            fp = d + l4
            obuf[fp] = 17
            obuf[fp + 1] = 0
            _put16(obuf, fp + 2, (fo << 3) | (0 if last else 1))
            _put32(obuf, fp + 4, frag_id & 0xFFFFFFFF)
        if k == 0:
            first_d = d
        jj = j + k
        _copy_meta(meta, i, ometa, jj)
        o = ometa[jj]
        o.seg = k
        o.status = S.GSO_FRAGMENTED
        _clear_vnet(o, hdr_out)
        o.l3_end = hdr_out + chunk
        o.l4_off = hdr_out
        pfl = (_i(m.pflags) & ~(S.PF_LEN0 | S.PF_L2_PAD | S.PF_DF)) | S.PF_FRAG
        if k == 0:
            pfl |= S.PF_FRAG_FIRST
            o.l4_hdr_len = 8
            o.pay_off = hdr_out + 8
            o.pay_len = chunk - 8
        else:
            o.l4_hdr_len = 0
            o.pay_off = hdr_out
            o.pay_len = chunk
        if not v4:
            o.ext_len = 8
            o.l3_hdr_len = 48
            pfl |= S.PF_IPV6_EXT
        o.pflags = pfl
        ooff[jj] = d
        olen[jj] = hdr_out + chunk
        cursor = d + hdr_out + chunk
    if csum_mode != CSUM_NONE:
        # the datagram's checksum, computed once, lives in the first fragment
        cpos = first_d + hdr_out + 6
        total = csum_sub(total, _be16(obuf, cpos))    # the input's checksum bytes were summed
        c = _i(~csum_add(psum, total) & np.uint64(0xFFFF))
        if c == 0:
            c = 0xFFFF
        _put16(obuf, cpos, c)
    return cursor


@njit(cache=True, nogil=True)
def _run(buf, off, length, meta, its, act, segsz, nseg, csum_mode, fixedid, accecn,
         frag_id_base, refused_pass, obuf, ooff, olen, ometa, ots, counters):
    """Write every planned output frame. Returns ``(frames written, bytes used)``."""
    cap = obuf.shape[0]
    maxf = ooff.shape[0]
    cursor = 0
    j = 0
    has_ts = its.shape[0] == off.shape[0]
    for i in range(off.shape[0]):
        counters[C_FRAMES] += 1
        s = off[i]
        n = length[i]
        a = act[i]
        m = meta[i]
        st = _i(m.status)
        if a == _A_REFUSE and not (refused_pass and st != S.TRUNC_L2):
            counters[C_REFUSED] += 1
            m.seg = 0
            continue
        k = nseg[i] if a >= _A_TCP else 1
        need = _need(meta, i, a, k, n, _jcut(buf, s, meta, i) if a == _A_TCP or a == _A_USO else 0)
        if cursor + need > cap or j + k > maxf:
            m.status = S.GSO_NO_ROOM
            m.seg = 0
            counters[C_NO_ROOM] += 1
            continue
        start = cursor
        if a == _A_TCP or a == _A_USO:
            cursor = _seg_tcp_udp(buf, s, meta, i, a, segsz[i], k, csum_mode, fixedid, accecn,
                                  obuf, cursor, ooff, olen, ometa, j)
            counters[C_SUPER] += 1
            counters[C_SEGS] += k
            counters[C_PAYLOAD] += _i(m.pay_len)
        elif a == _A_UFO4 or a == _A_UFO6:
            cursor = _frag_udp(buf, s, meta, i, a, segsz[i], k, csum_mode, frag_id_base + i,
                               obuf, cursor, ooff, olen, ometa, j)
            counters[C_SUPER] += 1
            counters[C_SEGS] += k
            counters[C_PAYLOAD] += _i(m.l3_end) - _i(m.l4_off)
        else:
            d = _place(cursor, s, 0)
            copy_at(_ref(buf), s, _ref(obuf), d, n)
            _copy_meta(meta, i, ometa, j)
            if a == _A_PASS_CSUM:
                # skb_checksum_help: sum csum_start..end over the preloaded field, fold, invert
                cs = _i(m.csum_start)
                cpos = d + cs + _i(m.csum_offset)
                c = _i(~bswap16(fold16(acc_any(obuf, d + cs, n - cs))) & np.uint64(0xFFFF))
                if c == 0:
                    c = 0xFFFF
                _put16(obuf, cpos, c)
                ometa[j].vnet_flags = _i(m.vnet_flags) & ~F_NEEDS_CSUM
                ometa[j].csum_start = 0
                ometa[j].csum_offset = 0
            ooff[j] = d
            olen[j] = n
            cursor = d + n
            if a == _A_REFUSE:
                counters[C_REFUSED] += 1
            else:
                counters[C_PASS] += 1
                if st == S.GSO_NOT_SUPPORTED:
                    counters[C_NOT_SUPPORTED] += 1
        for q in range(j, j + k):
            ots[q] = its[i] if has_ts else 0
        counters[C_BYTES_OUT] += cursor - start
        m.seg = k
        j += k
    return j, cursor


# flag bits of the kernel's ``flags`` argument
_F_VNET = 1
_F_TCP = 2
_F_REFUSED_PASS = 4
_F_FIXEDID = 8
_F_ACCECN = 16


# the kernel's parameters: one int64 array per configuration (see _segment_config)
P_FLAGS = 0
P_MSS = 1
P_MTU = 2
P_UDP_MODE = 3
P_CSUM_MODE = 4
P_MAX_UDP = 5
P_MAX_TCP = 6
P_FRAG_ID = 7
P_N = 8

# what _kernel returns instead of a frame count when it did nothing
_NOT_CONTIG = -1     # the input bytes are not contiguous: the caller copies them and calls again
_BAD_SHAPE = -2      # len / meta shorter than off (a batch whose attributes were replaced)
_BAD_ARENA = -3      # the arena's bytes are not contiguous, or its len/meta/ts rows are shorter than off


@njit(cache=True, nogil=True, _nrt=False)
def _kernel(buf, off, length, meta, its, obuf, ooff, olen, ometa, ots, work, P, step):
    """The one entry point from Python (one dispatch per burst, no array returned: boxing
    an array costs more than a 16 KB super-packet's copy).

    ``P`` (int64, ``P_N``): the parameters, one array per configuration. ``work`` (int64,
    ``N_COUNTERS + 3 * n``): counters, then per input frame the action, the segment size
    and the segment count. ``step`` 1: plan only, returns the ``(frames, bytes)`` the
    output needs (the ``o*`` arrays are not touched); 2: write the planned frames; 3:
    both. Returns ``(frames, bytes)`` written for steps 2 and 3, or ``(code, 0)`` with a
    negative code (_NOT_CONTIG, _BAD_SHAPE, _BAD_ARENA) before touching anything.

    Compiled without NRT: unboxing an array argument then costs no meminfo allocation
    (~30 ns each, eleven arrays here), and every array inside has no reference count
    (the helpers' array arguments cost no atomic updates). The byte arenas are read and
    written through their data pointers (csum._ref), so their layout is checked here:
    numpy gives arrays of 0 or 1 elements any stride."""
    n = off.shape[0]
    if length.shape[0] < n or meta.shape[0] < n:
        return _BAD_SHAPE, 0
    if buf.shape[0] > 1 and buf.strides[0] != 1:
        return _NOT_CONTIG, 0
    if step & 2:
        if (obuf.shape[0] > 1 and obuf.strides[0] != 1) or olen.shape[0] < ooff.shape[0] \
                or ometa.shape[0] < ooff.shape[0] or ots.shape[0] < ooff.shape[0]:
            return _BAD_ARENA, 0
    buf = _borrow(buf)
    off = _borrow(off)
    length = _borrow(length)
    meta = _borrow(meta)
    its = _borrow(its)
    obuf = _borrow(obuf)
    ooff = _borrow(ooff)
    olen = _borrow(olen)
    ometa = _borrow(ometa)
    ots = _borrow(ots)
    work = _borrow(work)
    counters = work[:N_COUNTERS]
    act = work[N_COUNTERS:N_COUNTERS + n]
    segsz = work[N_COUNTERS + n:N_COUNTERS + 2 * n]
    nseg = work[N_COUNTERS + 2 * n:N_COUNTERS + 3 * n]
    flags = P[P_FLAGS]
    csum_mode = P[P_CSUM_MODE]
    refused_pass = (flags & _F_REFUSED_PASS) != 0
    if step & 1:
        for q in range(N_COUNTERS):
            counters[q] = 0
        nf, nb = _plan(buf, off, length, meta, (flags & _F_VNET) != 0, P[P_MSS], P[P_MTU], P[P_UDP_MODE],
                       (flags & _F_TCP) != 0, csum_mode, P[P_MAX_UDP], P[P_MAX_TCP], refused_pass, act, segsz,
                       nseg, counters)
        if step == 1:
            return nf, nb
    return _run(buf, off, length, meta, its, act, segsz, nseg, csum_mode, (flags & _F_FIXEDID) != 0,
                (flags & _F_ACCECN) != 0, P[P_FRAG_ID], refused_pass, obuf, ooff, olen, ometa, ots, counters)


_I64 = np.dtype(np.int64)      # np.empty with a dtype object: ~60 ns less than with np.int64
_U8 = np.dtype(np.uint8)
_empty = np.empty
_contig = np.ascontiguousarray


class GsoResult:
    """What :func:`segment` / :func:`fragment_udp` did to one burst.

    ``arena``: the :class:`OutputArena` written (``arena.n`` frames at
    ``arena.off``/``arena.len``, ``arena.meta``, ``arena.ts``); ``out``: the same as a
    :class:`PacketBatch` view (built on first access; valid until the arena is reused);
    ``status``: the per-input-frame status (a view of the input ``meta['status']``);
    ``counters``: :data:`COUNTER_NAMES` -> int; ``refused``: refusal reason
    (``status.describe``) -> count. Building ``out``/``counters``/``refused`` costs a few
    µs of Python each, so a datapath that only needs ``arena.off``/``arena.len`` skips them
    (everything here is built on first access).
    """

    __slots__ = ("arena", "_meta", "_work", "_with_ts", "_out")

    def __init__(self, arena, meta, work, with_ts):
        self.arena = arena
        self._meta = meta
        self._work = work
        self._with_ts = with_ts
        self._out = None

    @property
    def status(self) -> np.ndarray:
        return self._meta["status"]

    @property
    def out(self) -> PacketBatch:
        if self._out is None:
            self._out = _arena_view(self.arena, self._with_ts)
        return self._out

    @property
    def counters(self) -> dict:
        return dict(zip(COUNTER_NAMES, self._work[:N_COUNTERS].tolist()))

    @property
    def refused(self) -> dict:
        w = self._work
        # every refused frame counts in C_REFUSED, or in C_NO_ROOM when refused="pass" found
        # no room for it: both 0 is the common burst, answered without an array pass (~2 us)
        if w[C_REFUSED] == 0 and w[C_NO_ROOM] == 0:
            return {}
        bad = w[N_COUNTERS:N_COUNTERS + (w.shape[0] - N_COUNTERS) // 3] == _A_REFUSE
        if not bad.any():
            return {}
        codes, cnt = np.unique(self.status[bad], return_counts=True)
        return {S.describe(int(c)): int(k) for c, k in zip(codes, cnt)}


def _arena_view(arena: OutputArena, with_ts: bool) -> PacketBatch:
    """``arena.batch(with_ts)`` without the PacketBatch constructor's range checks (~4 us
    of reductions over off/len per burst): the kernel wrote every one of the first
    ``arena.n`` frames inside ``arena.buf``, and checked that len/meta/ts are at least as
    long as off. Arrays the constructor would convert or refuse take its path."""
    buf, meta = arena.buf, arena.meta
    if buf.dtype is not _U8 or buf.ndim != 1 or meta.dtype is not META_DTYPE:
        return arena.batch(with_ts=with_ts)
    n = arena.n
    return trusted_batch(buf, _contig(arena.off[:n], _I64), _contig(arena.len[:n], _I64), meta[:n],
                         _contig(arena.ts[:n], _I64) if with_ts else None, arena.w32)


def _check_modes(csum, udp):
    if csum not in _CSUM_MODES:
        raise ValueError(f"csum must be one of {sorted(_CSUM_MODES)}")
    if udp not in _UDP_MODES:
        raise ValueError(f"udp must be one of {sorted(_UDP_MODES)}")


_NO_TS = np.zeros(0, np.int64)


def _gso(batch, arena, P):
    # One kernel call per burst when the caller brings the arena; the Python around it is
    # kept to attribute reads (each µs here is ~40 ns per super-packet of a 32-frame burst)
    off = batch.off
    its = batch.ts
    with_ts = its is not None
    if not with_ts:
        its = _NO_TS
    work = _empty(N_COUNTERS + 3 * off.shape[0], _I64)
    buf, length, meta = batch.buf, batch.len, batch.meta
    if arena is None:
        # plan (the output arrays are not touched: the input's stand in), size, then write
        need_frames, need_bytes = _kernel(buf, off, length, meta, its, buf, off, length, meta, its, work, P, 1)
        if need_frames < 0:
            return _gso_odd(batch, arena, P, need_frames)
        arena = OutputArena(need_bytes + 64, max(need_frames, 1))
        step = 2
    else:
        step = 3
    nout, used = _kernel(buf, off, length, meta, its, arena.buf, arena.off, arena.len, arena.meta, arena.ts,
                         work, P, step)
    if nout < 0:
        return _gso_odd(batch, arena, P, nout)
    arena.n = nout
    arena.used = used
    return GsoResult(arena, meta, work, with_ts)


def _gso_odd(batch, arena, P, code):
    """_gso for what the kernel turned down: input bytes that are not contiguous are
    copied (the kernel reads them through their data pointer), anything else is an error."""
    if code == _NOT_CONTIG:
        b = trusted_batch(np.ascontiguousarray(batch.buf), batch.off, batch.len, batch.meta, batch.ts)
        return _gso(b, arena, P)
    if code == _BAD_SHAPE:
        raise ValueError("batch.len and batch.meta must have one entry per frame of batch.off")
    raise ValueError("arena.buf must be contiguous and arena.len/meta/ts at least as long as arena.off")


def segment(batch: PacketBatch, *, mss: int | None = None, mtu: int | None = None,
            use_vnet: bool | None = None, udp: str = "uso", csum: str = "full",
            fixedid: bool = False, accecn: bool = False,
            max_udp_segments: int = UDP_MAX_SEGMENTS, refused: str = "drop",
            arena: OutputArena | None = None, ipv6_frag_id: int = 1,
            max_segments: int = GSO_MAX_SEGS) -> GsoResult:
    """Segment the super-packets of ``batch`` (see the module docstring for the rules).

    Parameters
    ----------
    mss : payload bytes per segment for every frame of the batch (pcap case).
    mtu : IP packet bytes per output frame (pcap case); the MSS is derived per frame.
    use_vnet : take gso_type/gso_size from each frame's virtio_net_hdr in ``meta``;
        default: True when neither ``mss`` nor ``mtu`` is given.
    udp : what to do with UDP datagrams over the size in the pcap case: ``"uso"``
        (cut into datagrams), ``"ufo"`` (IP fragments), ``"keep"`` (pass through).
    csum : ``"full"``, ``"partial"`` or ``"none"`` (see module docstring).
    fixedid : keep the IPv4 ID of every TCP segment (SKB_GSO_TCP_FIXEDID).
    accecn : keep CWR on every TCP segment (SKB_GSO_TCP_ACCECN).
    max_udp_segments : USO limit per super-packet (Linux UDP_MAX_SEGMENTS, 128).
    max_segments : TCP segments per super-packet (default :data:`GSO_MAX_SEGS`, 65535, as
        Linux's gso_segs and gso_max_segs); a super-packet needing more is refused with
        ``GSO_TOO_MANY_SEGS`` (counted in ``refused``).
    refused : ``"drop"`` (refused frames are not emitted; their status says why) or
        ``"pass"`` (emitted unchanged with the refusal as their output status).
    arena : an :class:`OutputArena` to reuse; too small means ``GSO_NO_ROOM`` for the
        frames that did not fit (the default arena is sized from the input).
    ipv6_frag_id : base of the IPv6 fragment Identification (UFO): base + input index.

    Parses ``batch`` in place (``meta`` layout and ``status`` are rewritten).
    """
    key = (mss, mtu, use_vnet, udp, csum, fixedid, accecn, max_udp_segments, refused, ipv6_frag_id, max_segments)
    try:
        cfg = _SEGMENT_CONFIGS.get(key)
    except TypeError:            # an unhashable argument: validate it every time
        cfg, key = None, None
    if cfg is None:
        cfg = _segment_config(*key) if key is not None else _segment_config(
            mss, mtu, use_vnet, udp, csum, fixedid, accecn, max_udp_segments, refused, ipv6_frag_id, max_segments)
        if key is not None and len(_SEGMENT_CONFIGS) < 64:
            _SEGMENT_CONFIGS[key] = cfg
    return _gso(batch, arena, cfg)


# validated keyword sets of segment() -> the kernel's parameter array (read only): a
# burst-sized call pays a dict lookup instead of the checks (~0.4 us, ~12 ns per
# super-packet of a 32-frame burst)
_SEGMENT_CONFIGS: dict = {}


def _segment_config(mss, mtu, use_vnet, udp, csum, fixedid, accecn, max_udp_segments, refused, ipv6_frag_id,
                    max_segments):
    _check_modes(csum, udp)
    if refused not in ("drop", "pass"):
        raise ValueError("refused must be 'drop' or 'pass'")
    if use_vnet is None:
        use_vnet = mss is None and mtu is None
    if not use_vnet:
        if (mss is None) == (mtu is None):
            raise ValueError("give exactly one of mss= or mtu= (or use_vnet=True)")
        if (mss is not None and mss < 1) or (mtu is not None and mtu < 28):
            raise ValueError("mss must be >= 1 and mtu >= 28")
    flags = ((_F_VNET if use_vnet else 0) | _F_TCP | (_F_REFUSED_PASS if refused == "pass" else 0)
             | (_F_FIXEDID if fixedid else 0) | (_F_ACCECN if accecn else 0))
    return _params(flags, int(mss or 0), int(mtu or 0), _UDP_MODES[udp], _CSUM_MODES[csum], int(max_udp_segments),
                   int(max_segments), int(ipv6_frag_id))


def _params(flags, mss, mtu, udp_mode, csum_mode, max_udp_segments, max_segments, ipv6_frag_id) -> np.ndarray:
    """The kernel's parameter array (indices P_*, in this order)."""
    return np.array([flags, mss, mtu, udp_mode, csum_mode, max_udp_segments, max_segments, ipv6_frag_id], np.int64)


def fragment_udp(batch: PacketBatch, *, mtu: int | None = None, frag_size: int | None = None,
                 use_vnet: bool | None = None, csum: str = "full", refused: str = "drop",
                 arena: OutputArena | None = None, ipv6_frag_id: int = 1) -> GsoResult:
    """UFO: cut every UDP datagram larger than the MTU into IP fragments (TCP and
    everything else pass through).

    ``mtu``: IP packet bytes per fragment (fragment data = (mtu - IP header [- 8 for the
    IPv6 fragment header]) rounded down to a multiple of 8); or ``frag_size``: bytes of
    IP payload per fragment (a multiple of 8); or, with neither, the virtio header of
    each frame (gso_type UDP, gso_size = fragment payload bytes), as Linux UFO.
    The UDP checksum is computed over the whole datagram (``csum="none"`` leaves it).
    """
    key = (mtu, frag_size, use_vnet, csum, refused, ipv6_frag_id)
    try:
        P = _UFO_CONFIGS.get(key)
    except TypeError:            # an unhashable argument: validate it every time
        P, key = None, None
    if P is None:
        P = _ufo_config(mtu, frag_size, use_vnet, csum, refused, ipv6_frag_id)
        if key is not None and len(_UFO_CONFIGS) < 64:
            _UFO_CONFIGS[key] = P
    return _gso(batch, arena, P)


_UFO_CONFIGS: dict = {}


def _ufo_config(mtu, frag_size, use_vnet, csum, refused, ipv6_frag_id):
    _check_modes(csum, "ufo")
    if use_vnet is None:
        use_vnet = mtu is None and frag_size is None
    if not use_vnet and (mtu is None) == (frag_size is None):
        raise ValueError("give exactly one of mtu= or frag_size= (or use_vnet=True)")
    flags = (_F_VNET | _F_TCP if use_vnet else 0) | (_F_REFUSED_PASS if refused == "pass" else 0)
    return _params(flags, int(frag_size or 0), int(mtu or 0), UDP_UFO, _CSUM_MODES[csum], UDP_MAX_SEGMENTS,
                   GSO_MAX_SEGS, int(ipv6_frag_id))
