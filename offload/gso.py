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
  are one pass (:func:`offload.csum.copy_sum_words`); the segment's checksum is the
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
:func:`offload.csum.copy_sum_words`, then splits loads and stores across cache lines
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

from . import status as S
from .batch import OutputArena, PacketBatch
from .csum import copy_sum_words, copy_words, csum_add, csum_sub, fold16, pseudo_sum_v4, pseudo_sum_v6, sum_span
from .parse import parse_one
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
          max_udp_segs, refused_pass, act, segsz, nseg, counters):
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
def _ipv4_base_sum(buf, w32, s, l3, ihl, var_off):
    """Sum of the IPv4 header at ``s+l3`` without its total length, checksum and the
    16-bit field at ``var_off`` (ID for segments, fragment word for fragments): the part
    every output frame shares."""
    ipsum = sum_span(buf, w32, s + l3, ihl)
    ipsum = csum_sub(ipsum, _be16(buf, s + l3 + 2))
    ipsum = csum_sub(ipsum, _be16(buf, s + l3 + var_off))
    return csum_sub(ipsum, _be16(buf, s + l3 + 10))


@njit(cache=True, nogil=True, inline="always")
def _place(cursor, src_abs, lead):
    """Output offset >= cursor such that ``out + lead`` has the alignment (mod 8) of ``src_abs``
    (then the payload copy-and-sum runs on whole 64-bit words)."""
    return cursor + ((src_abs - lead - cursor) & 7)


@njit(cache=True, nogil=True)
def _seg_tcp_udp(buf, w32, s, meta, i, kind, mss, k_total, csum_mode, fixedid, accecn,
                 obuf, ow32, cursor, ooff, olen, ometa, j):
    """Write the segments of super-packet ``i`` (TCP or USO) starting at output frame ``j``
    and byte offset ``cursor``. Returns the new cursor."""
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
    # -- per super-packet sums (the fields that change per segment are taken out) --
    if v4:
        ihl = _i(m.l3_hdr_len)
        ipsum = _ipv4_base_sum(buf, w32, s, l3, ihl, 4)
        ip_id = _be16(buf, s + l3 + 4)
        psum = pseudo_sum_v4(buf, s + l3, proto, 0)
    else:
        ihl = 0
        ipsum = np.uint64(0)
        ip_id = 0
        psum = pseudo_sum_v6(buf, s + l3, s + _i(m.dst_off), proto, 0)
    hsum = sum_span(buf, w32, s + l4, thl)
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
    for k in range(k_total):
        last = k == k_total - 1
        seglen = mss if not last else plen - mss * (k_total - 1)
        src_pay = s + po + k * mss
        d = _place(cursor, src_pay, hdr_out)
        copy_words(buf, s, obuf, d, head1)
        if jcut:
            copy_words(buf, s + l3 + 48, obuf, d + l3 + 40, po - (l3 + 48))
        if csum_mode == CSUM_FULL:
            paysum = copy_sum_words(buf, src_pay, obuf, d + hdr_out, seglen)
        else:
            copy_words(buf, src_pay, obuf, d + hdr_out, seglen)
            paysum = np.uint64(0)
        l4len = thl + seglen
        # IP header
        if v4:
            tot = ihl + l4len
            _put16(obuf, d + l3 + 2, tot)
            idk = ip_id if (fixedid and is_tcp) else (ip_id + k) & 0xFFFF
            _put16(obuf, d + l3 + 4, idk)
            c = fold16(ipsum + np.uint64(tot) + np.uint64(idk))
            _put16(obuf, d + l3 + 10, _i(~c & np.uint64(0xFFFF)))
        else:
            _put16(obuf, d + l3 + 4, _i(m.ext_len) - jcut + l4len)
            if jcut:
                obuf[d + l3 + 6] = hbh_next
        # L4 header
        if is_tcp:
            seq = (seq0 + k * mss) & 0xFFFFFFFF
            _put32(obuf, d + l4o + 4, seq)
            fl = fword
            if not last:
                fl &= ~(_TCP_FIN | _TCP_PSH)
            if k > 0 and not accecn:
                fl &= ~_TCP_CWR
            obuf[d + l4o + 13] = fl & 0xFF
            cpos = d + l4o + 16
            var = np.uint64(seq >> 16) + np.uint64(seq & 0xFFFF) + np.uint64(fl)
        else:
            _put16(obuf, d + l4o + 4, l4len)
            cpos = d + l4o + 6
            var = np.uint64(l4len)
        if csum_mode == CSUM_FULL:
            # one fold of the plain 64-bit sum: the same 1..0xFFFF representative as
            # folding after every addition (all terms are small), a third of the work
            tsum = fold16(base + np.uint64(l4len) + var + paysum)
            c = _i(~tsum & np.uint64(0xFFFF))
            if c == 0 and not is_tcp:
                c = 0xFFFF
            _put16(obuf, cpos, c)
        elif csum_mode == CSUM_PARTIAL:
            _put16(obuf, cpos, _i(csum_add(psum, np.uint64(l4len))))
        # meta of the segment
        jj = j + k
        if k == 0:
            _copy_meta(meta, i, ometa, jj)
        else:
            ometa[jj] = ometa[j]          # one record copy; the per-segment fields follow
        o = ometa[jj]
        o.seg = k
        o.pay_len = seglen
        o.l3_end = hdr_out + seglen
        ooff[jj] = d
        olen[jj] = hdr_out + seglen
        cursor = d + hdr_out + seglen
        if k > 0:
            continue
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
    return cursor


@njit(cache=True, nogil=True)
def _frag_udp(buf, w32, s, meta, i, kind, fsz, k_total, csum_mode, frag_id,
              obuf, ow32, cursor, ooff, olen, ometa, j):
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
        ipsum = _ipv4_base_sum(buf, w32, s, l3, ihl, 6)
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
        copy_words(buf, s, obuf, d, l4)
        if csum_mode != CSUM_NONE:
            part = copy_sum_words(buf, src, obuf, d + hdr_out, chunk)
            total = csum_add(total, part)       # chunk offsets are multiples of 8: no swap
        else:
            copy_words(buf, src, obuf, d + hdr_out, chunk)
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
def _run(buf, w32, off, length, meta, its, act, segsz, nseg, csum_mode, fixedid, accecn,
         frag_id_base, refused_pass, obuf, ow32, ooff, olen, ometa, ots, counters):
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
            cursor = _seg_tcp_udp(buf, w32, s, meta, i, a, segsz[i], k, csum_mode, fixedid, accecn,
                                  obuf, ow32, cursor, ooff, olen, ometa, j)
            counters[C_SUPER] += 1
            counters[C_SEGS] += k
            counters[C_PAYLOAD] += _i(m.pay_len)
        elif a == _A_UFO4 or a == _A_UFO6:
            cursor = _frag_udp(buf, w32, s, meta, i, a, segsz[i], k, csum_mode, frag_id_base + i,
                               obuf, ow32, cursor, ooff, olen, ometa, j)
            counters[C_SUPER] += 1
            counters[C_SEGS] += k
            counters[C_PAYLOAD] += _i(m.l3_end) - _i(m.l4_off)
        else:
            d = _place(cursor, s, 0)
            copy_words(buf, s, obuf, d, n)
            _copy_meta(meta, i, ometa, j)
            if a == _A_PASS_CSUM:
                # skb_checksum_help: sum csum_start..end over the preloaded field, fold, invert
                cs = _i(m.csum_start)
                cpos = d + cs + _i(m.csum_offset)
                c = _i(~sum_span(obuf, ow32, d + cs, n - cs) & np.uint64(0xFFFF))
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


@njit(cache=True, nogil=True)
def _plan_run(buf, w32, off, length, meta, its, use_vnet, mss_arg, mtu_arg, udp_mode, tcp_on, csum_mode,
              max_udp_segs, refused_pass, fixedid, accecn, frag_id_base, obuf, ow32, ooff, olen, ometa, ots):
    """Plan and write in one call (one dispatch per burst) when the caller brings the arena."""
    n = off.shape[0]
    act = np.empty(n, np.int8)
    segsz = np.empty(n, np.int64)
    nseg = np.empty(n, np.int64)
    counters = np.zeros(N_COUNTERS, np.int64)
    _plan(buf, off, length, meta, use_vnet, mss_arg, mtu_arg, udp_mode, tcp_on, csum_mode, max_udp_segs,
          refused_pass, act, segsz, nseg, counters)
    nout, used = _run(buf, w32, off, length, meta, its, act, segsz, nseg, csum_mode, fixedid, accecn,
                      frag_id_base, refused_pass, obuf, ow32, ooff, olen, ometa, ots, counters)
    return nout, used, act, counters


class GsoResult:
    """What :func:`segment` / :func:`fragment_udp` did to one burst.

    ``arena``: the :class:`OutputArena` written (``arena.n`` frames at
    ``arena.off``/``arena.len``, ``arena.meta``, ``arena.ts``); ``out``: the same as a
    :class:`PacketBatch` view (built on first access; valid until the arena is reused);
    ``status``: the per-input-frame status (a view of the input ``meta['status']``);
    ``counters``: :data:`COUNTER_NAMES` -> int; ``refused``: refusal reason
    (``status.describe``) -> count. Building ``out``/``counters``/``refused`` costs a few
    µs of Python each, so a datapath that only needs ``arena.off``/``arena.len`` skips them.
    """

    __slots__ = ("arena", "status", "_act", "_counters", "_with_ts", "_out")

    def __init__(self, arena, status, act, counters, with_ts):
        self.arena = arena
        self.status = status
        self._act = act
        self._counters = counters
        self._with_ts = with_ts
        self._out = None

    @property
    def out(self) -> PacketBatch:
        if self._out is None:
            self._out = self.arena.batch(with_ts=self._with_ts)
        return self._out

    @property
    def counters(self) -> dict:
        return dict(zip(COUNTER_NAMES, self._counters.tolist()))

    @property
    def refused(self) -> dict:
        bad = self._act == _A_REFUSE
        if not bad.any():
            return {}
        codes, cnt = np.unique(self.status[bad], return_counts=True)
        return {S.describe(int(c)): int(k) for c, k in zip(codes, cnt)}


def _check_modes(csum, udp):
    if csum not in _CSUM_MODES:
        raise ValueError(f"csum must be one of {sorted(_CSUM_MODES)}")
    if udp not in _UDP_MODES:
        raise ValueError(f"udp must be one of {sorted(_UDP_MODES)}")


_NO_TS = np.zeros(0, np.int64)


def _gso(batch, use_vnet, mss, mtu, udp_mode, tcp_on, csum_mode, fixedid, accecn, max_udp_segments,
         refused_pass, arena, ipv6_frag_id):
    n = len(batch)
    its = batch.ts if batch.ts is not None else _NO_TS
    args = (use_vnet, int(mss), int(mtu), udp_mode, tcp_on, csum_mode, int(max_udp_segments), refused_pass)
    if arena is not None:
        arena.reset()
        if n:
            nout, used, act, counters = _plan_run(
                batch.buf, batch.w32, batch.off, batch.len, batch.meta, its, *args,
                bool(fixedid), bool(accecn), int(ipv6_frag_id),
                arena.buf, arena.w32, arena.off, arena.len, arena.meta, arena.ts)
        else:
            nout, used, act, counters = 0, 0, np.zeros(0, np.int8), np.zeros(N_COUNTERS, np.int64)
    else:
        act = np.zeros(n, np.int8)
        segsz = np.zeros(n, np.int64)
        nseg = np.zeros(n, np.int64)
        counters = np.zeros(N_COUNTERS, np.int64)
        need_frames, need_bytes = (_plan(batch.buf, batch.off, batch.len, batch.meta, *args, act, segsz, nseg,
                                         counters) if n else (0, 0))
        arena = OutputArena(int(need_bytes) + 64, max(int(need_frames), 1))
        nout, used = 0, 0
        if n:
            nout, used = _run(batch.buf, batch.w32, batch.off, batch.len, batch.meta, its, act,
                              segsz, nseg, csum_mode, bool(fixedid), bool(accecn), int(ipv6_frag_id), refused_pass,
                              arena.buf, arena.w32, arena.off, arena.len, arena.meta, arena.ts,
                              counters)
    arena.commit(nout, used)
    return GsoResult(arena, batch.meta["status"], act, counters, batch.ts is not None)


def segment(batch: PacketBatch, *, mss: int | None = None, mtu: int | None = None,
            use_vnet: bool | None = None, udp: str = "uso", csum: str = "full",
            fixedid: bool = False, accecn: bool = False,
            max_udp_segments: int = UDP_MAX_SEGMENTS, refused: str = "drop",
            arena: OutputArena | None = None, ipv6_frag_id: int = 1) -> GsoResult:
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
    refused : ``"drop"`` (refused frames are not emitted; their status says why) or
        ``"pass"`` (emitted unchanged with the refusal as their output status).
    arena : an :class:`OutputArena` to reuse; too small means ``GSO_NO_ROOM`` for the
        frames that did not fit (the default arena is sized from the input).
    ipv6_frag_id : base of the IPv6 fragment Identification (UFO): base + input index.

    Parses ``batch`` in place (``meta`` layout and ``status`` are rewritten).
    """
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
    return _gso(batch, bool(use_vnet), mss or 0, mtu or 0, _UDP_MODES[udp], True, _CSUM_MODES[csum],
                fixedid, accecn, max_udp_segments, refused == "pass", arena, ipv6_frag_id)


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
    _check_modes(csum, "ufo")
    if use_vnet is None:
        use_vnet = mtu is None and frag_size is None
    if not use_vnet and (mtu is None) == (frag_size is None):
        raise ValueError("give exactly one of mtu= or frag_size= (or use_vnet=True)")
    return _gso(batch, bool(use_vnet), frag_size or 0, mtu or 0, UDP_UFO, bool(use_vnet),
                _CSUM_MODES[csum], False, False, UDP_MAX_SEGMENTS, refused == "pass", arena, ipv6_frag_id)
