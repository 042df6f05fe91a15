"""GRO: coalesce TCP and UDP segment trains into super-packets with Linux's rules.

Two ways in:

* :func:`coalesce` (burst): parse, merge, then flush everything; the output is
  one flat frame per aggregate (or per frame passed alone) in an
  :class:`~offload.batch.OutputArena`.
* :class:`GroTable` (streaming): push bursts with a time; aggregates wait in the
  table (bounded flows, bounded memory) until a rule flushes them, they grow
  older than ``timeout_ns`` (like ``gro_flush_timeout``), or :meth:`GroTable.flush`
  is called.

Rules (Linux 6.18, ``net/core/gro.c``, ``net/ipv4/tcp_offload.c``,
``net/ipv4/af_inet.c``, ``net/ipv6/ip6_offload.c``, ``net/ipv4/udp_offload.c``;
see reference/offload-rules.md §3):

* flow key: the whole link-layer header (VLAN tags included), IP addresses,
  protocol, ports, and for IPv6 the flow label and byte-identical extension
  headers;
* TCP merges when ACK, the data-offset/flags/window word (FIN and PSH aside),
  every option byte, TTL/TOS/DF (IPv4) or traffic class/hop limit (IPv6) are
  equal, the sequence number is contiguous, the payload is not larger than the
  first segment's, and the IPv4 ID increments by one per segment or stays fixed
  (decided at the second segment, recorded as FIXEDID);
* PSH and FIN are merged, then flush; a shorter segment is merged and flushes;
  SYN, RST, URG and pure ACKs flush what the flow holds and pass alone; any
  other refusal flushes the held aggregate and starts a new one;
* CWR: ``cwr="6.18"`` (default, the rule of the kernel this project tests on:
  CWR takes part in the flags comparison and a CWR segment flushes, so it
  passes alone), ``cwr="legacy"`` (6.17 and earlier: a CWR segment starts a new
  aggregate, later segments without CWR join it; the aggregate gets the ECN
  gso_type bit) or ``cwr="accecn"`` (newest: CWR must match, no flush);
* UDP (the USO inverse): non-zero checksum, UDP length equal to the received
  length, equal datagram sizes with a shorter last one closing the aggregate, a
  larger one starting a new aggregate, at most ``udp_max_segs`` (64) per
  aggregate;
* checksums (IPv4 header, TCP/UDP) are verified before a frame counts as
  merged; a bad one is passed alone with ``GRO_BAD_CSUM``. Frames whose
  virtio_net_hdr carries DATA_VALID have their L4 checksum trusted, like
  CHECKSUM_UNNECESSARY (their IPv4 header checksum is still checked, as Linux does), and so
  are NEEDS_CSUM frames with csum_start at the L4 header (CHECKSUM_PARTIAL: Linux
  skips their validation and merges them; the aggregate's checksum is computed anew);
* size: the aggregate's IP packet stays below ``max_size`` (65536 by default,
  Linux's ``gro_max_size``); larger values allow BIG TCP: IPv4 total length 0,
  IPv6 with a hop-by-hop jumbo option inserted in front of the TCP header.

Where this engine departs from Linux (on purpose, documented):

* a frame that cannot be merged at all (bad checksum, IPv4 options, padding,
  ...) flushes the aggregate its flow holds before it is passed up, so frames
  keep their order within a flow (Linux passes it up at once and flushes the
  aggregate later, on the next segment);
* the fixed-ID decision follows the 2025 rework (no DF needed) unless
  ``fixedid_needs_df=True`` (kernels before it).

Output per aggregate: IP total length / payload length and IPv4 header
checksum rewritten, the first segment's IP ID, FIN/PSH of all segments OR-ed
into the TCP flags, and in ``meta``: ``gso_type`` (TCPV4/TCPV6/UDP_L4, plus ECN
when the first segment carries CWR), ``gso_size`` (first segment's payload,
bytes), ``hdr_len`` (L2+L3+L4 header bytes; ``hdr_len="linux"`` gives the
length of the first segment, what Linux's veth GRO reports), and either
``csum="partial"`` (Linux: NEEDS_CSUM, csum_start/csum_offset, the L4 field
holds the folded pseudo-header sum, not inverted) or ``csum="full"`` (a valid
checksum, DATA_VALID). ``status`` is GRO_HEAD (GRO_HEAD_FIXEDID when the IPv4
IDs were fixed), ``seg`` the number of frames merged, ``src`` the input index
of the first one. Frames passed alone are byte-for-byte copies with a status
saying why; their virtio_net_hdr is the one they came with (a super-packet keeps its
gso_type/gso_size, a CHECKSUM_PARTIAL frame its NEEDS_CSUM and csum_start/offset, as
Linux delivers an skb GRO did not merge), except that a frame whose L4 checksum GRO
verified gets DATA_VALID (CHECKSUM_UNNECESSARY) and a bad one none.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import numpy as np
from llvmlite import ir as _ir
from numba import from_dtype, njit
from numba.core import config as _nb_config
from numba.core import types as _nbt
from numba.core.extending import intrinsic

from . import status as S
from . import vnet as V
from .batch import META_DTYPE, OutputArena, PacketBatch, new_meta, trusted_batch
from .csum import (copy_sum_words, copy_words, csum_add, csum_add_at, fold16, load64,
                   pseudo_sum_v4, pseudo_sum_v6, sum_short)
from .parse import _borrow, parse_frames, parse_one

# --- parameters (P[...]) -----------------------------------------------------
P_MAX_SIZE = 0      # aggregate IP packet length must stay below this (bytes)
P_CSUM_FULL = 1     # 1: write a full L4 checksum; 0: Linux's partial one
P_CWR = 2           # CWR_618 / CWR_LEGACY / CWR_ACCECN
P_FIXEDID_DF = 3    # 1: fixed IPv4 IDs only merge with DF set (pre-2025 kernels)
P_UDP = 4           # 1: UDP GRO on
P_VERIFY = 5        # 1: verify checksums before merging
P_HDRLEN_LINUX = 6  # 1: hdr_len = first segment's length (Linux veth); 0: header bytes
P_UDP_MAX = 7       # max datagrams per UDP aggregate
P_TIMEOUT = 8       # streaming: flush aggregates whose first frame is older (ns); <0 never
P_SLOT = 9          # streaming: the longest frame held (bytes); 0 in burst mode
P_TCP = 10          # 1: TCP GRO on
P_MAXFLOWS = 11     # open aggregates at most (the oldest is flushed to open one more)
P_MAXHELD = 12      # streaming: frames held at most
P_N = 13

CWR_618 = 0
CWR_LEGACY = 1
CWR_ACCECN = 2
_CWR_NAMES = {"6.18": CWR_618, "legacy": CWR_LEGACY, "6.17": CWR_LEGACY, "accecn": CWR_ACCECN}

# --- table state (st[...]) ---------------------------------------------------
ST_LRU_H = 0
ST_LRU_T = 1
ST_NLIVE = 2
ST_AFREE = 3        # number of free aggregate ids on the afree stack
ST_PEND = 4         # streaming: regions on the pend stack (flushed by this call, in the output)
ST_OUT_N = 5
ST_OUT_USED = 6
ST_HELD = 7         # streaming: frames held in open aggregates
ST_HELDB = 8        # streaming: bytes held in open aggregates
ST_N = 9

# --- aggregate fields (agg[field, id]) -----------------------------------------
AG_HEAD = 0
AG_TAIL = 1
AG_COUNT = 2
AG_L3LEN = 3        # IP packet length of the aggregate so far
AG_GSO = 4          # first segment's payload
AG_NSEQ = 5         # next expected TCP sequence number
AG_ID0 = 6          # first IPv4 ID
AG_IDFIX = 7        # 1 once the IDs are known to be fixed
AG_TS = 8
AG_PREV = 9
AG_NEXT = 10
AG_HPOS = 11
AG_HASH = 12
AG_TSUM = 13        # streaming: sum of the payload copied so far (relative to its start)
AG_FLOR = 14        # streaming: FIN | PSH of the frames merged so far
AG_OUTK = 15        # streaming, once flushed: the output index of the aggregate's frame
AG_N = 16

# --- counters (C[...]) ----------------------------------------------------------
C_STATUS = 0        # C[C_STATUS + code - 192]: input frames by final GRO_* status
C_FLUSH = 64        # C[C_FLUSH + FR_*]: aggregates flushed by reason
C_REFUSE = 80       # C[C_REFUSE + R_*]: merges refused (the frame started a new aggregate)
C_MERGES = 112      # frames merged into an earlier frame's aggregate
C_OUT = 113         # frames written
C_IN = 114          # frames pushed
C_AGGS = 115        # aggregates written (2 frames or more)
C_N = 116

FR_END = 0          # end of burst / flush on demand
FR_TIMEOUT = 1
FR_FLAGS = 2        # PSH or FIN merged
FR_SHORT = 3        # a shorter segment ended the train
FR_MISMATCH = 4     # the next frame of the flow could not be merged
FR_SIZE = 5         # the next frame would pass max_size
FR_EVICT = 6        # table or store full: oldest aggregate flushed
FR_COUNT = 7        # UDP segment limit reached
FR_OTHER = 8        # a frame of the flow that never merges (flags, pure ACK, bad checksum...)
FLUSH_REASONS = ("end", "timeout", "psh_fin", "short", "mismatch", "size", "evict", "count", "other")

R_CWR = 0
R_FLAGS = 1
R_ACK = 2
R_OPTS = 3
R_TTL = 4
R_TOS = 5
R_DF = 6
R_IPID = 7
R_HOPLIMIT = 8
R_TCLASS = 9
R_LARGER = 10
R_SEQ = 11
R_SIZE = 12
R_COUNT = 13
REFUSE_REASONS = ("cwr", "flags", "ack", "options", "ttl", "tos", "df", "ip_id", "hop_limit",
                  "traffic_class", "larger", "seq", "size", "count")

TCP_FIN = 0x00010000
TCP_SYN = 0x00020000
TCP_RST = 0x00040000
TCP_PSH = 0x00080000
TCP_URG = 0x00200000
TCP_CWR = 0x00800000

GRO_MAX_SIZE = 8 * 65535          # Linux GRO_MAX_SIZE
GRO_LEGACY_MAX_SIZE = 65536
UDP_GRO_CNT_MAX = 64
_JUMBO_ROOM = 8                   # headroom kept in front of an output frame for the IPv6 jumbo option

_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)
_M32 = np.uint64(0xFFFFFFFF)

# --- engine state (one int64 array, see _State): where each part starts, and the
# addresses of the arrays of other types (store bytes and records, output arena) --------
H_P = 0
H_C = 1
H_ST = 2
H_AGG = 3
H_NAGG = 4
H_HTAB = 5
H_HSIZE = 6
H_AFREE = 7
H_PEND = 8          # streaming: the pend stack (regions flushed by this call)
H_SX = 9
H_NSX = 10          # streaming: = nagg (per region); burst mode: the largest burst
H_SOFF = 11         # streaming: per region, where its aggregate's frame starts in the arena
H_SLEN = 12         # streaming: per region, the bytes of that frame so far
H_REG = 13          # streaming: bytes per region
H_RAW0 = 14         # streaming: where the arena's area for frames passed alone starts
H_SMETA = 15        # streaming: per region, the head frame's parsed record
H_OBUF = 16         # address and length of the output arena's bytes
H_OBUF_N = 17
H_OMETA = 18
H_O2 = 19           # address of the arena's (3, max_frames) off/len/ts rows
H_O2_N = 20         # max_frames
H_N = 24

_NOT_CONTIG = -(1 << 62)
_META_ITEMSIZE = META_DTYPE.itemsize
_REC = from_dtype(META_DTYPE)


def _mk_at(ty, ndim):
    """An intrinsic ``at(addr, n)`` (``ndim`` 1) or ``at(addr, rows, n)`` (2): a C-contiguous
    array of ``ty`` over memory at ``addr`` that the caller keeps alive, without a meminfo
    (no reference count), built directly (``numba.carray`` is not available in kernels
    compiled without NRT)."""
    arrty = _nbt.Array(ty, ndim, "C")

    def codegen(context, builder, signature, args):
        from numba.np.arrayobj import populate_array
        ary = context.make_array(arrty)(context, builder)
        itemsize = context.get_abi_sizeof(context.get_data_type(ty))
        data = builder.inttoptr(args[0], context.get_value_type(_nbt.CPointer(ty)))
        i64 = _ir.IntType(64)
        if ndim == 1:
            shape = [args[1]]
            strides = [i64(itemsize)]
        else:
            shape = [args[1], args[2]]
            strides = [builder.mul(args[2], i64(itemsize)), i64(itemsize)]
        populate_array(ary, data=data, shape=shape, strides=strides, itemsize=i64(itemsize), meminfo=None)
        return ary._getvalue()

    if ndim == 1:
        @intrinsic
        def at(typingctx, addr, n):
            return arrty(_nbt.int64, _nbt.int64), codegen
    else:
        @intrinsic
        def at(typingctx, addr, rows, n):
            return arrty(_nbt.int64, _nbt.int64, _nbt.int64), codegen
    return at


_at_u8 = _mk_at(_nbt.uint8, 1)
_at_i64 = _mk_at(_nbt.int64, 1)
_at_i64_2d = _mk_at(_nbt.int64, 2)
_at_rec = _mk_at(_REC, 1)


@intrinsic
def _addr(typingctx, arr):
    """The data address of an array, as int64."""
    sig = _nbt.int64(arr)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.ptrtoint(a.data, _ir.IntType(64))
    return sig, codegen


def _mk_load(bits, swap):
    """An intrinsic ``ld(arr, i)``: the ``bits``-bit word at ``arr[i:]`` (one unaligned load,
    no index check and no negative-index wraparound: the caller guarantees the bytes lie
    inside ``arr``), byte-swapped when ``swap`` (network order), as int64."""
    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        ity = _ir.IntType(bits)
        v = builder.load(builder.bitcast(builder.gep(a.data, [args[1]]), ity.as_pointer()), align=1)
        if swap:
            v = builder.bswap(v)
        return builder.zext(v, _ir.IntType(64))

    @intrinsic
    def ld(typingctx, arr, idx):
        return _nbt.int64(arr, idx), codegen
    return ld


@njit(cache=True, nogil=True, inline="always")
def _be16_indexed(b, i):
    return (np.int64(b[i]) << 8) | np.int64(b[i + 1])


@njit(cache=True, nogil=True, inline="always")
def _be32_indexed(b, i):
    return ((np.int64(b[i]) << 24) | (np.int64(b[i + 1]) << 16)
            | (np.int64(b[i + 2]) << 8) | np.int64(b[i + 3]))


@njit(cache=True, nogil=True, inline="always")
def _le32_indexed(b, i):
    return ((np.int64(b[i + 3]) << 24) | (np.int64(b[i + 2]) << 16)
            | (np.int64(b[i + 1]) << 8) | np.int64(b[i]))


# Header words are read with one load each: the byte-by-byte reads cost a negative-index
# check per byte (and LLVM could not merge them), ~40% of the per-frame match loop.
# Bounds-checked runs (NUMBA_BOUNDSCHECK=1) index byte by byte, so every byte is checked.
if _nb_config.BOUNDSCHECK:
    _be16, _be32, _le32 = _be16_indexed, _be32_indexed, _le32_indexed
else:
    _be16, _be32, _le32 = _mk_load(16, True), _mk_load(32, True), _mk_load(32, False)


@njit(cache=True, nogil=True, inline="always")
def _put16(b, i, v):
    b[i] = (v >> 8) & 0xFF
    b[i + 1] = v & 0xFF


@njit(cache=True, nogil=True, inline="always")
def _mix(h, v):
    h = (h ^ np.uint64(v)) * _HASH_MUL
    return h ^ (h >> np.uint64(31))


@njit(cache=True, nogil=True, inline="always")
def _eq_range(a, ia, b, ib, n):
    """``a[ia:ia+n] == b[ib:ib+n]`` in whole-word loads: the last word overlaps the one
    before it (no byte tail), nothing outside the spans is read."""
    if n >= 8:
        k = 0
        while k + 8 < n:
            if load64(a, ia + k) != load64(b, ib + k):
                return False
            k += 8
        return load64(a, ia + n - 8) == load64(b, ib + n - 8)
    if n >= 4:
        return _le32(a, ia) == _le32(b, ib) and _le32(a, ia + n - 4) == _le32(b, ib + n - 4)
    k = 0
    while k < n:
        if a[ia + k] != b[ib + k]:
            return False
        k += 1
    return True


@njit(cache=True, nogil=True, inline="always")
def _partial(m):
    """NEEDS_CSUM with csum_start at or after the L4 header (CHECKSUM_PARTIAL): GRO trusts
    its checksum (:func:`_trusted`), and if it merges with nothing it keeps its
    virtio_net_hdr as it came (Linux delivers the skb untouched)."""
    return (np.int64(m.vnet_flags) & V.F_NEEDS_CSUM) != 0 and np.int64(m.csum_start) >= np.int64(m.l4_off) >= 0


@njit(cache=True, nogil=True, inline="always")
def _trusted(m):
    """The frame's L4 checksum needs no verification: DATA_VALID (CHECKSUM_UNNECESSARY), or
    NEEDS_CSUM with csum_start at or after the L4 header (CHECKSUM_PARTIAL: the sender
    has not computed it yet; Linux's skb_gro_checksum_validate skips such a frame and
    merges it -- checked against the kernel in test_gro_kernel.py)."""
    return (np.int64(m.vnet_flags) & V.F_DATA_VALID) != 0 or _partial(m)


@njit(cache=True, nogil=True, inline="always")
def _fast_match(buf, s, m, sbuf, hs, hm, cwr_ign):
    """True when frame (buf, s, m) and the aggregate head agree on every header byte Linux
    requires equal (flow key, TTL/TOS/DF or traffic class/hop limit, ACK, data offset, flags
    but FIN/PSH, window, options): the common case, checked a word at a time. False means
    "look closer" (another flow, or a refusal whose reason the slow path finds)."""
    l3 = np.int64(m.l3_off)
    l4 = np.int64(m.l4_off)
    po = np.int64(m.pay_off)
    if l3 != np.int64(hm.l3_off) or l4 != np.int64(hm.l4_off) or po != np.int64(hm.pay_off) \
            or m.l4_proto != hm.l4_proto or m.l3_proto != hm.l3_proto:
        return False
    if np.int64(m.l3_proto) == 0x0800:
        if not _eq_range(buf, s, sbuf, hs, l3 + 2):
            return False
        # bytes 6..9 as one little-endian word: DF (0x40 of byte 6), TTL, protocol
        if (_le32(buf, s + l3 + 6) ^ _le32(sbuf, hs + l3 + 6)) & 0xFFFF0040:
            return False
        if not _eq_range(buf, s + l3 + 12, sbuf, hs + l3 + 12, 8):
            return False
    else:
        if not _eq_range(buf, s, sbuf, hs, l3 + 4):
            return False
        if not _eq_range(buf, s + l3 + 6, sbuf, hs + l3 + 6, l4 - l3 - 6):
            return False
    if not _eq_range(buf, s + l4, sbuf, hs + l4, 4):
        return False
    if np.int64(m.l4_proto) == 6:
        if not _eq_range(buf, s + l4 + 8, sbuf, hs + l4 + 8, 4):
            return False
        if (_be32(buf, s + l4 + 12) ^ _be32(sbuf, hs + l4 + 12)) & ~(TCP_FIN | TCP_PSH | cwr_ign):
            return False
        if not _eq_range(buf, s + l4 + 20, sbuf, hs + l4 + 20, po - l4 - 20):
            return False
    return True


# --------------------------------------------------------------------------------
# per-frame classification
# --------------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _classify(buf, s, meta, i, P):
    """Returns (status, keyed): 0 when the frame may merge, else the GRO_* reason it passes
    alone; ``keyed`` says whether its flow key (addresses and ports) can be read."""
    m = meta[i]
    ps = np.int64(m.status)
    if ps != S.OK:
        if ps == S.NOT_IP:
            return S.GRO_NOT_TCP_UDP, False
        return S.GRO_MALFORMED, False
    l3p = np.int64(m.l3_proto)
    proto = np.int64(m.l4_proto)
    if (l3p != 0x0800 and l3p != 0x86DD) or (proto != 6 and proto != 17):
        return S.GRO_NOT_TCP_UDP, False
    pf = np.int64(m.pflags)
    if pf & S.PF_FRAG:
        return S.GRO_FRAGMENT, False
    if (proto == 6 and P[P_TCP] == 0) or (proto == 17 and P[P_UDP] == 0):
        return S.GRO_NOT_TCP_UDP, True
    if np.int64(m.gso_type) != 0 or (pf & (S.PF_LEN0 | S.PF_JUMBO)):
        return S.GRO_ALREADY_GSO, True
    if pf & S.PF_IPV4_OPTS:
        return S.GRO_IP_OPTS, True
    if pf & (S.PF_L2_PAD | S.PF_UDP_SHORT):
        return S.GRO_L2_PAD, True
    l3 = s + np.int64(m.l3_off)
    # The IPv4 header checksum is checked even for DATA_VALID frames: DATA_VALID
    # (CHECKSUM_UNNECESSARY) vouches for the L4 checksum only, and Linux's
    # inet_gro_receive always runs ip_fast_csum over the header.
    if l3p == 0x0800 and P[P_VERIFY] != 0:
        # sum_short(buf, l3, 20) == 0xFFFF, in three loads
        w0 = load64(buf, l3)
        w1 = load64(buf, l3 + 8)
        acc = (w0 & _M32) + (w0 >> np.uint64(32)) + (w1 & _M32) + (w1 >> np.uint64(32)) \
            + np.uint64(_le32(buf, l3 + 16))
        if fold16(acc) != 0xFFFF:
            return S.GRO_BAD_CSUM, True
    l4 = s + np.int64(m.l4_off)
    pay = np.int64(m.pay_len)
    if proto == 17:
        if buf[l4 + 6] == 0 and buf[l4 + 7] == 0:
            return S.GRO_UDP_NO_CSUM, True
        if pay <= 0:
            return S.GRO_PURE_ACK, True
        return S.OK, True
    if pay <= 0:
        return S.GRO_PURE_ACK, True
    fw = _be32(buf, l4 + 12)
    bad = TCP_SYN | TCP_RST | TCP_URG
    if P[P_CWR] == CWR_618:
        bad |= TCP_CWR
    if fw & bad:
        return S.GRO_FLUSH_FLAGS, True
    return S.OK, True


@njit(cache=True, nogil=True, inline="always")
def _flow_hash(buf, s, m):
    h = np.uint64(np.int64(m.l3_proto) * 256 + np.int64(m.l4_proto))
    l3 = s + np.int64(m.l3_off)
    nv = np.int64(m.vlan_count)
    for k in range(nv):
        h = _mix(h, _be32(buf, l3 - 4 * (k + 1)))
    if np.int64(m.l3_proto) == 0x0800:
        h = _mix(h, _be32(buf, l3 + 12))
        h = _mix(h, _be32(buf, l3 + 16))
    else:
        h = _mix(h, _be32(buf, l3) & 0xFFFFF)
        for k in range(8, 40, 4):
            h = _mix(h, _be32(buf, l3 + k))
    h = _mix(h, _be32(buf, s + np.int64(m.l4_off)))
    return np.int64(h & np.uint64(0x3FFFFFFFFFFFFFFF))


@njit(cache=True, nogil=True, inline="always")
def _same_flow(buf, s, m, sbuf, hs, hm):
    l3 = np.int64(m.l3_off)
    if l3 != np.int64(hm.l3_off) or m.l3_proto != hm.l3_proto or m.l4_proto != hm.l4_proto:
        return False
    l4 = np.int64(m.l4_off)
    hl4 = np.int64(hm.l4_off)
    if buf[s + l4] != sbuf[hs + hl4] or buf[s + l4 + 1] != sbuf[hs + hl4 + 1] \
            or buf[s + l4 + 2] != sbuf[hs + hl4 + 2] or buf[s + l4 + 3] != sbuf[hs + hl4 + 3]:
        return False
    if np.int64(m.l3_proto) == 0x0800:
        if not _eq_range(buf, s + l3 + 12, sbuf, hs + l3 + 12, 8):
            return False
    else:
        if (_be32(buf, s + l3) & 0xF00FFFFF) != (_be32(sbuf, hs + l3) & 0xF00FFFFF):
            return False
        if not _eq_range(buf, s + l3 + 8, sbuf, hs + l3 + 8, 32):
            return False
        ext = np.int64(m.ext_len)
        if ext != np.int64(hm.ext_len) or not _eq_range(buf, s + l3 + 40, sbuf, hs + l3 + 40, ext):
            return False
    return _eq_range(buf, s, sbuf, hs, l3)


@njit(cache=True, nogil=True, inline="always")
def _refuse(buf, s, m, sbuf, hs, hm, agg, a, P, checked):
    """-1 when frame (buf, s, m) may join aggregate ``a`` (head at sbuf[hs:], meta hm),
    else the R_* reason. ``checked``: :func:`_fast_match` already found the compared header
    bytes equal. Linux's order of checks does not matter: any refusal has the same effect
    (flush the aggregate, start a new one)."""
    pay = np.int64(m.pay_len)
    l3 = s + np.int64(m.l3_off)
    hl3 = hs + np.int64(hm.l3_off)
    count = agg[a, AG_COUNT]
    v4 = np.int64(m.l3_proto) == 0x0800
    if not checked:
        if v4:
            if buf[l3 + 8] != sbuf[hl3 + 8]:
                return R_TTL
            if buf[l3 + 1] != sbuf[hl3 + 1]:
                return R_TOS
            if (buf[l3 + 6] ^ sbuf[hl3 + 6]) & 0x40:
                return R_DF
        else:
            if buf[l3 + 7] != sbuf[hl3 + 7]:
                return R_HOPLIMIT
            if (_be32(buf, l3) ^ _be32(sbuf, hl3)) & 0x0FF00000:
                return R_TCLASS
    if v4:
        idoff = (_be16(buf, l3 + 4) - agg[a, AG_ID0]) & 0xFFFF
        if count == 1 and idoff == 0 and (P[P_FIXEDID_DF] == 0 or (buf[l3 + 6] & 0x40)):
            agg[a, AG_IDFIX] = 1
        want = 0 if agg[a, AG_IDFIX] else (count & 0xFFFF)
        if idoff != want:
            return R_IPID
    l4 = s + np.int64(m.l4_off)
    hl4 = hs + np.int64(hm.l4_off)
    gso = agg[a, AG_GSO]
    if np.int64(m.l4_proto) == 6:
        fw = _be32(buf, l4 + 12)
        if P[P_CWR] == CWR_LEGACY and (fw & TCP_CWR):
            return R_CWR
        if not checked:
            ign = TCP_FIN | TCP_PSH
            if P[P_CWR] == CWR_LEGACY:
                ign |= TCP_CWR
            if (fw ^ _be32(sbuf, hl4 + 12)) & ~ign:
                return R_FLAGS
            if not _eq_range(buf, l4 + 8, sbuf, hl4 + 8, 4):
                return R_ACK
            thl = np.int64(m.l4_hdr_len)
            if thl != np.int64(hm.l4_hdr_len) or not _eq_range(buf, l4 + 20, sbuf, hl4 + 20, thl - 20):
                return R_OPTS
        if pay > gso:
            return R_LARGER
        if _be32(buf, l4 + 4) != agg[a, AG_NSEQ]:
            return R_SEQ
        if count >= 65535:
            return R_COUNT
        limit = P[P_MAX_SIZE]
    else:
        if pay > gso:
            return R_LARGER
        if count >= P[P_UDP_MAX]:
            return R_COUNT
        limit = min(P[P_MAX_SIZE], GRO_LEGACY_MAX_SIZE)
    if not v4 and np.int64(m.ext_len) > 0:
        # a jumbo option is only added in front of a bare IPv6 header (as Linux does)
        limit = min(limit, 65535 + 40 + 1)
    if agg[a, AG_L3LEN] + pay >= limit:
        return R_SIZE
    return -1


# --------------------------------------------------------------------------------
# flow table: open addressing (linear probing, backward-shift deletion) over agg ids
# --------------------------------------------------------------------------------
@njit(cache=True, nogil=True, _nrt=False)
def _lookup(buf, s, m, h, htab, agg, sbuf, soff, smeta):
    mask = htab.shape[0] - 1
    j = h & mask
    while True:
        a = htab[j]
        if a < 0:
            return -1, j
        if agg[a, AG_HASH] == h:
            hd = agg[a, AG_HEAD]
            if _same_flow(buf, s, m, sbuf, soff[hd], smeta[hd]):
                return a, j
        j = (j + 1) & mask


@njit(cache=True, nogil=True, inline="always")
def _lookup_fast(buf, s, m, h, htab, agg, sbuf, soff, smeta, cwr_ign):
    """Like :func:`_lookup`, plus whether the headers already passed :func:`_fast_match`."""
    mask = htab.shape[0] - 1
    j = h & mask
    while True:
        a = htab[j]
        if a < 0:
            return -1, j, False
        if agg[a, AG_HASH] == h:
            hd = agg[a, AG_HEAD]
            if _fast_match(buf, s, m, sbuf, soff[hd], smeta[hd], cwr_ign):
                return a, j, True
            if _same_flow(buf, s, m, sbuf, soff[hd], smeta[hd]):
                return a, j, False
        j = (j + 1) & mask


@njit(cache=True, nogil=True, inline="always")
def _hdel(htab, agg, pos):
    mask = htab.shape[0] - 1
    i = pos
    htab[i] = -1
    j = i
    while True:
        j = (j + 1) & mask
        a = htab[j]
        if a < 0:
            return
        k = agg[a, AG_HASH] & mask
        if i <= j:
            stay = i < k <= j
        else:
            stay = k > i or k <= j
        if not stay:
            htab[i] = a
            agg[a, AG_HPOS] = i
            htab[j] = -1
            i = j


# --------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _count(C, code):
    if code >= 192 and code < 256:
        C[C_STATUS + code - 192] += 1


@njit(cache=True, nogil=True, inline="always")
def _out_slot(obuf, o2, st, need):
    """Reserve room for one output frame of up to ``need`` bytes; returns its start or -1."""
    k = st[ST_OUT_N]
    if k >= o2.shape[1]:
        return -1
    start = (st[ST_OUT_USED] + 63) & ~63
    if start + need > obuf.shape[0]:
        return -1
    return start


@njit(cache=True, nogil=True, inline="always")
def _emit_raw(sbuf, s, n, smeta, j, src, ts, code, verify, keep, obuf, o2, ometa, st, C):
    """Copy frame j unchanged; ``verify``: check its L4 checksum on the way (DATA_VALID if good,
    GRO_BAD_CSUM if not). ``keep``: GRO did not look at the frame (not TCP/UDP, fragment,
    already a super-packet...): its virtio_net_hdr fields stay as they came, as do those of
    a CHECKSUM_PARTIAL frame (:func:`_partial`). Returns the status written."""
    start = _out_slot(obuf, o2, st, n + 8)
    if start >= 0:
        start += s & 7          # same alignment mod 8 as the source: whole-word copies
    if start < 0:
        smeta[j].status = S.GRO_NO_ROOM
        _count(C, S.GRO_NO_ROOM)
        return S.GRO_NO_ROOM
    m = smeta[j]
    good = False
    keep = keep or _partial(m)
    if verify and not _trusted(m):
        l4 = np.int64(m.l4_off)
        end = np.int64(m.l3_end)
        copy_words(sbuf, s, obuf, start, l4)
        ssum = copy_sum_words(sbuf, s + l4, obuf, start + l4, end - l4)
        copy_words(sbuf, s + end, obuf, start + end, n - end)
        l3 = s + np.int64(m.l3_off)
        proto = np.int64(m.l4_proto)
        if np.int64(m.l3_proto) == 0x0800:
            ps = pseudo_sum_v4(sbuf, l3, proto, end - l4)
        else:
            ps = pseudo_sum_v6(sbuf, l3, s + np.int64(m.dst_off), proto, end - l4)
        good = csum_add(ps, ssum) == 0xFFFF
        if not good:
            code = S.GRO_BAD_CSUM
    else:
        copy_words(sbuf, s, obuf, start, n)
        good = verify
    k = st[ST_OUT_N]
    o2[0, k] = start
    o2[1, k] = n
    o2[2, k] = ts
    ometa[k] = smeta[j]
    om = ometa[k]
    if not keep:
        om.vnet_flags = V.F_DATA_VALID if good else 0
        om.gso_type = 0
        om.hdr_len = 0
        om.gso_size = 0
        om.csum_start = 0
        om.csum_offset = 0
    om.status = code
    om.seg = 1
    om.src = src
    st[ST_OUT_N] = k + 1
    st[ST_OUT_USED] = start + n
    smeta[j].status = code
    _count(C, code)
    C[C_OUT] += 1
    return code


@njit(cache=True, nogil=True, _nrt=False)
def _finish(sbuf, smeta, hd, start, hdr, pay, cnt, fl_or, idfix, tsum, src, ts,
            obuf, o2, ometa, st, P, C, inplace):
    """Complete the output frame at ``start``: headers copied from head slot ``hd`` and
    ``pay`` payload bytes from ``cnt`` segments. ``tsum``: sum of the payload.
    ``inplace``: the frame was built in its region of the arena (streaming), not at the
    end of the output written so far."""
    hm = smeta[hd]
    k = st[ST_OUT_N]
    ometa[k] = hm
    om = ometa[k]
    om.src = src
    om.seg = cnt
    n = hdr + pay
    if cnt == 1:
        # one frame after all (held alone, or its neighbours had bad checksums): a plain copy
        if not _partial(hm):
            om.vnet_flags = V.F_DATA_VALID if (P[P_VERIFY] != 0 or (np.int64(hm.vnet_flags) & V.F_DATA_VALID)) else 0
            om.gso_type = 0
            om.hdr_len = 0
            om.gso_size = 0
            om.csum_start = 0
            om.csum_offset = 0
        om.status = S.GRO_SINGLE
        smeta[hd].status = S.GRO_SINGLE
        _count(C, S.GRO_SINGLE)
    else:
        l3 = np.int64(hm.l3_off)
        l4 = np.int64(hm.l4_off)
        thl = np.int64(hm.l4_hdr_len)
        proto = np.int64(hm.l4_proto)
        v4 = np.int64(hm.l3_proto) == 0x0800
        l4len = n - l4
        gso = np.int64(hm.pay_len)
        first_len = np.int64(hm.pay_off) + gso
        o = start
        relen = False       # True: the jumbo option was inserted, the layout changed
        if v4:
            iplen = n - l3
            _put16(obuf, o + l3 + 2, iplen if iplen <= 0xFFFF else 0)
            relen = iplen > 0xFFFF
            obuf[o + l3 + 10] = 0
            obuf[o + l3 + 11] = 0
            c = 0xFFFF ^ np.int64(sum_short(obuf, o + l3, 20))
            _put16(obuf, o + l3 + 10, c)
        else:
            plen = n - l3 - 40
            if plen <= 0xFFFF:
                _put16(obuf, o + l3 + 4, plen)
            else:
                # BIG TCP over IPv6: move L2 + IPv6 header 8 bytes to the front (the room was
                # kept), then a hop-by-hop header with the jumbo payload option (RFC 2675).
                for q in range(l3 + 40):
                    obuf[o - 8 + q] = obuf[o + q]
                o -= 8
                hb = o + l3 + 40
                obuf[hb] = obuf[o + l3 + 6]
                obuf[hb + 1] = 0
                obuf[hb + 2] = 0xC2
                obuf[hb + 3] = 4
                jl = plen + 8
                obuf[hb + 4] = (jl >> 24) & 0xFF
                obuf[hb + 5] = (jl >> 16) & 0xFF
                obuf[hb + 6] = (jl >> 8) & 0xFF
                obuf[hb + 7] = jl & 0xFF
                obuf[o + l3 + 6] = 0
                _put16(obuf, o + l3 + 4, 0)
                n += 8
                l4 += 8
                first_len += 8
                relen = True
        if proto == 6:
            obuf[o + l4 + 13] |= np.uint8(fl_or)
            ck = o + l4 + 16
        else:
            _put16(obuf, o + l4 + 4, l4len)
            ck = o + l4 + 6
        obuf[ck] = 0
        obuf[ck + 1] = 0
        if v4:
            ps = pseudo_sum_v4(obuf, o + l3, proto, l4len)
        else:
            ps = pseudo_sum_v6(obuf, o + l3, o + np.int64(hm.dst_off), proto, l4len)
        if P[P_CSUM_FULL]:
            hsum = sum_short(obuf, o + l4, thl)
            c = 0xFFFF ^ np.int64(csum_add(csum_add(ps, hsum), tsum))
            if proto == 17 and c == 0:
                c = 0xFFFF
            _put16(obuf, ck, c)
            om.vnet_flags = V.F_DATA_VALID
            om.csum_start = 0
            om.csum_offset = 0
        else:
            _put16(obuf, ck, np.int64(ps))
            om.vnet_flags = V.F_NEEDS_CSUM
            om.csum_start = l4
            om.csum_offset = 16 if proto == 6 else 6
        if proto == 6:
            gt = V.GSO_TCPV4 if v4 else V.GSO_TCPV6
            if obuf[o + l4 + 13] & 0x80:
                gt |= V.GSO_ECN
        else:
            gt = V.GSO_UDP_L4
        om.gso_type = gt
        om.gso_size = gso
        om.hdr_len = first_len if P[P_HDRLEN_LINUX] else l4 + thl
        code = S.GRO_HEAD_FIXEDID if (v4 and idfix) else S.GRO_HEAD
        smeta[hd].status = code
        _count(C, code)
        C[C_AGGS] += 1
        start = o
        if not relen:
            # lengths rewritten in place, nothing moved: the layout is the head's (which had
            # no padding, options or jumbo) with the new lengths -- what the parser would
            # find, without parsing each output again (~30 ns an aggregate)
            om.l3_end = n
            om.pay_len = n - np.int64(hm.pay_off)
        else:
            # the one parser fills in the new layout (BIG TCP: IPv4 length 0, IPv6 jumbo)
            parse_one(obuf, start, n, ometa, k)
        om.status = code
    o2[0, k] = start
    o2[1, k] = n
    o2[2, k] = ts
    st[ST_OUT_N] = k + 1
    if not inplace:
        st[ST_OUT_USED] = start + n
    C[C_OUT] += 1


@njit(cache=True, nogil=True, inline="always")
def _put_payload(buf, s, m, dst, d, verify):
    """Copy frame (buf, s)'s payload to ``dst[d:]`` summing it; verify the frame's L4
    checksum on the way (unless its header vouches for it). Returns (sum, good)."""
    po = np.int64(m.pay_off)
    psum = copy_sum_words(buf, s + po, dst, d, np.int64(m.pay_len))
    good = True
    if verify and not _trusted(m):
        l3 = s + np.int64(m.l3_off)
        l4len = np.int64(m.l3_end) - np.int64(m.l4_off)
        proto = np.int64(m.l4_proto)
        if np.int64(m.l3_proto) == 0x0800:
            ps = pseudo_sum_v4(buf, l3, proto, l4len)
        else:
            ps = pseudo_sum_v6(buf, l3, s + np.int64(m.dst_off), proto, l4len)
        hs = sum_short(buf, s + np.int64(m.l4_off), np.int64(m.l4_hdr_len))
        good = csum_add(csum_add(ps, hs), psum) == 0xFFFF
    return psum, good


@njit(cache=True, nogil=True, _nrt=False)
def _pass_alone(sbuf, s, n, smeta, j, src, ts, code, verify, keep, obuf, o2, ometa, st, C):
    """:func:`_emit_raw` out of line, for the engine's paths other than its hottest: each
    inlined copy of it (copies and a checksum loop) added seconds of compile time, a
    minute under NUMBA_BOUNDSCHECK, for a call that costs a few ns."""
    return _emit_raw(sbuf, s, n, smeta, j, src, ts, code, verify, keep, obuf, o2, ometa, st, C)


@njit(cache=True, nogil=True, _nrt=False)
def _put_payload_ool(buf, s, m, dst, d, verify):
    """:func:`_put_payload` out of line (a new aggregate's first frame: once per aggregate)."""
    return _put_payload(buf, s, m, dst, d, verify)


@njit(cache=True, nogil=True, _nrt=False)
def _write_agg(a, agg, sbuf, soff, slen, smeta, sx, obuf, o2, ometa, st, P, C):
    """Write aggregate ``a``: walk its frames, copy payloads with their sums, verify each
    frame's checksum on the way; a bad one closes what came before and passes alone, the
    rest continue as a new aggregate (what Linux would have built)."""
    snext = sx[0]
    ssrc = sx[1]
    sts = sx[2]
    j = agg[a, AG_HEAD]
    idfix = agg[a, AG_IDFIX]
    verify = P[P_VERIFY] != 0
    total = agg[a, AG_L3LEN] + np.int64(smeta[j].l3_off) + _JUMBO_ROOM + 8
    cur = -1            # head slot of the output being built
    done_pay = 0        # payload bytes of the frames already written: a new output after a bad
                        # frame needs room for the rest only, not for the whole aggregate again
    start = 0
    hdr = 0
    pay = 0
    cnt = 0
    fl_or = 0
    tsum = np.uint64(0)
    while j >= 0:
        nxt = snext[j]
        s = soff[j]
        m = smeta[j]
        po = np.int64(m.pay_off)
        pl = np.int64(m.pay_len)
        if cur < 0:
            start = _out_slot(obuf, o2, st, total - done_pay)
            if start < 0:
                smeta[j].status = S.GRO_NO_ROOM
                _count(C, S.GRO_NO_ROOM)
                j = nxt
                continue
            start += _JUMBO_ROOM + (s & 7)
            copy_words(sbuf, s, obuf, start, po)
            hdr = po
            pay = 0
            cnt = 0
            fl_or = 0
            tsum = np.uint64(0)
            cur = j
        psum, good = _put_payload(sbuf, s, m, obuf, start + hdr + pay, verify)
        if not good:
            if cnt > 0:
                _finish(sbuf, smeta, cur, start, hdr, pay, cnt, fl_or, idfix, tsum, ssrc[cur], sts[cur],
                        obuf, o2, ometa, st, P, C, False)
            _pass_alone(sbuf, s, slen[j], smeta, j, ssrc[j], sts[j], S.GRO_BAD_CSUM, False, False,
                      obuf, o2, ometa, st, C)
            cur = -1
            done_pay += pl
            j = nxt
            continue
        if cnt > 0:
            smeta[j].status = S.GRO_MERGED
            _count(C, S.GRO_MERGED)
            C[C_MERGES] += 1
        if np.int64(m.l4_proto) == 6:
            fl_or |= np.int64(sbuf[s + np.int64(m.l4_off) + 13]) & 0x09
        tsum = csum_add_at(tsum, psum, pay)
        pay += pl
        done_pay += pl
        cnt += 1
        j = nxt
    if cur >= 0 and cnt > 0:
        _finish(sbuf, smeta, cur, start, hdr, pay, cnt, fl_or, idfix, tsum, ssrc[cur], sts[cur],
                obuf, o2, ometa, st, P, C, False)


@njit(cache=True, nogil=True, _nrt=False)
def _flush(a, reason, agg, htab, afree, pend, sbuf, soff, slen, smeta, sx,
           obuf, o2, ometa, st, P, C):
    """Write aggregate ``a`` to the output and close it. Burst mode: its frames are
    copied out of the input (:func:`_write_agg`) and ``a`` is free again. Streaming: the
    frame was built in region ``a`` of the arena as the segments came; its headers are
    completed where it lies, and the region goes on the ``pend`` stack: it is part of this
    call's output, so it is reused by the next call (or now, once its frame is moved to
    the end of the output: :func:`_reclaim`)."""
    if P[P_SLOT] > 0:
        k = st[ST_OUT_N]
        hdr = np.int64(smeta[a].pay_off)
        cnt = agg[a, AG_COUNT]
        if k < o2.shape[1]:
            _finish(sbuf, smeta, a, soff[a], hdr, slen[a] - hdr, cnt, agg[a, AG_FLOR], agg[a, AG_IDFIX],
                    np.uint64(agg[a, AG_TSUM]), sx[1, a], sx[2, a], obuf, o2, ometa, st, P, C, True)
            agg[a, AG_OUTK] = k
            pend[st[ST_PEND]] = a
            st[ST_PEND] += 1
        else:       # (the room check before the burst makes this unreachable)
            C[C_STATUS + S.GRO_NO_ROOM - 192] += cnt
            afree[st[ST_AFREE]] = a
            st[ST_AFREE] += 1
        st[ST_HELD] -= cnt
        st[ST_HELDB] -= slen[a]
    else:
        _write_agg(a, agg, sbuf, soff, slen, smeta, sx, obuf, o2, ometa, st, P, C)
        afree[st[ST_AFREE]] = a
        st[ST_AFREE] += 1
    C[C_FLUSH + reason] += 1
    _hdel(htab, agg, agg[a, AG_HPOS])
    p = agg[a, AG_PREV]
    q = agg[a, AG_NEXT]
    if p >= 0:
        agg[p, AG_NEXT] = q
    else:
        st[ST_LRU_H] = q
    if q >= 0:
        agg[q, AG_PREV] = p
    else:
        st[ST_LRU_T] = p
    agg[a, AG_HEAD] = -1
    st[ST_NLIVE] -= 1


@njit(cache=True, nogil=True, _nrt=False)
def _reclaim(agg, afree, pend, obuf, o2, st):
    """Streaming, every region taken: move the frame of the aggregate flushed last (by this
    call) from its region to the end of the output, and free the region. The room was
    reserved before the burst. Returns False if it was not there after all."""
    if st[ST_PEND] == 0:
        return False
    p = pend[st[ST_PEND] - 1]
    k = agg[p, AG_OUTK]
    src = o2[0, k]
    n = o2[1, k]
    dst = ((st[ST_OUT_USED] + 63) & ~63) + (src & 7)
    if dst + n > obuf.shape[0]:
        return False
    copy_words(obuf, src, obuf, dst, n)
    o2[0, k] = dst
    st[ST_OUT_USED] = dst + n
    st[ST_PEND] -= 1
    afree[st[ST_AFREE]] = p
    st[ST_AFREE] += 1
    return True


# --------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------
@njit(cache=True, nogil=True, _nrt=False)
def _run(buf_in, off_in, len_in, meta_in, ts_in, I, src0, now, flush_all):
    """Process frames [0, n) of the input (the arrays of a PacketBatch, and ``ts``); ``I``
    is the engine's state (:class:`_State`): parameters, counters, flow table and the
    addresses of the output arena and of the per-region records. The store (sbuf, soff,
    slen, smeta, sx) holds the frames of open aggregates. Burst mode (P_SLOT == 0): it
    *is* the input, and an aggregate is a chain of input frames, copied out when it is
    flushed. Streaming: each open aggregate owns a region of the arena (H_REG bytes) and
    is built there in place as its segments come -- one copy of each byte, and a flush
    only completes the headers (copying held frames into slots, then out again, cost 2.4x
    as much with 1024 flows as with one, since the second copy reads 6 MB that had left
    the caches). Frames passed alone go to the arena's area after the regions (H_RAW0).
    ``flush_all``: 1 flush everything at the end; 0 flush by timeout (``now``, ns); -1
    flush nothing. Returns the number of output frames, -need when the arena is too
    small, or _NOT_CONTIG when an input array is not contiguous (the caller copies).

    Why one state array: the kernel used to take 22 arrays, and unboxing an array
    argument costs ~0.1 us (a meminfo allocated and freed): 2-3 us per call, as much as
    the work of a 32-frame burst. Every array inside is a view without a reference count
    (``carray`` over an address, or a slice of ``I`` borrowed), so the helpers' array
    arguments cost no atomic updates either."""
    n = off_in.shape[0]
    # (numpy gives arrays of 0 or 1 elements any stride: only longer ones are checked)
    if (buf_in.shape[0] > 1 and buf_in.strides[0] != 1) or (n > 1 and (
            off_in.strides[0] != 8 or len_in.strides[0] != 8 or ts_in.strides[0] != 8
            or meta_in.strides[0] != _META_ITEMSIZE)):
        return _NOT_CONTIG
    buf = _at_u8(_addr(buf_in), buf_in.shape[0])
    off = _at_i64(_addr(off_in), n)
    length = _at_i64(_addr(len_in), n)
    ts = _at_i64(_addr(ts_in), n)
    meta = _at_rec(_addr(meta_in), n)
    I = _borrow(I)
    P = I[I[H_P]:I[H_P] + P_N]
    C = I[I[H_C]:I[H_C] + C_N]
    st = I[I[H_ST]:I[H_ST] + ST_N]
    # every call starts an empty output (the callers' retry after -need included)
    st[ST_OUT_N] = 0
    st[ST_OUT_USED] = 0
    nagg = I[H_NAGG]
    agg = I[I[H_AGG]:I[H_AGG] + AG_N * nagg].reshape((nagg, AG_N))   # one row per aggregate: its fields share two cache lines
    htab = I[I[H_HTAB]:I[H_HTAB] + I[H_HSIZE]]
    afree = I[I[H_AFREE]:I[H_AFREE] + nagg]
    nsx = I[H_NSX]
    sx = I[I[H_SX]:I[H_SX] + 3 * nsx].reshape((3, nsx))
    obuf = _at_u8(I[H_OBUF], I[H_OBUF_N])
    nout = I[H_O2_N]
    o2 = _at_i64_2d(I[H_O2], 3, nout)
    ometa = _at_rec(I[H_OMETA], nout)
    stream = P[P_SLOT] > 0
    if stream:
        sbuf = obuf
        smeta = _at_rec(I[H_SMETA], nagg)
        soff = I[I[H_SOFF]:I[H_SOFF] + nagg]
        slen = I[I[H_SLEN]:I[H_SLEN] + nagg]
        pend = I[I[H_PEND]:I[H_PEND] + nagg]
        # the caller has read the last call's output: its regions are free again
        while st[ST_PEND] > 0:
            st[ST_PEND] -= 1
            afree[st[ST_AFREE]] = pend[st[ST_PEND]]
            st[ST_AFREE] += 1
        st[ST_OUT_USED] = I[H_RAW0]
        reg = I[H_REG]
    else:
        sbuf = buf
        smeta = meta
        soff = off
        slen = length
        pend = afree
        reg = 0
    # room check up front (the caller grows the arena and calls again): every frame passed
    # alone is at most its input bytes, plus alignment and jumbo room. Streaming: held
    # aggregates come out too, in place, and a frame moved out of its region (_reclaim)
    # is one that was held before the call or came in during it
    need = st[ST_OUT_USED] + 128
    for i in range(n):
        need += length[i] + 72 + _JUMBO_ROOM
    frames = n
    if stream:
        need += need - st[ST_OUT_USED] + st[ST_HELDB] + st[ST_NLIVE] * (72 + _JUMBO_ROOM)
        frames += st[ST_NLIVE]
    if need > obuf.shape[0] or frames > o2.shape[1]:
        return -need
    snext = sx[0]
    ssrc = sx[1]
    sts = sx[2]
    timeout = P[P_TIMEOUT]
    cwr_ign = TCP_CWR if P[P_CWR] == CWR_LEGACY else 0
    last = np.int64(-1)     # the aggregate the previous frame joined or started
    parse_frames(buf, off, length, meta)
    C[C_IN] += n
    for i in range(n):
        s = off[i]
        fl = length[i]
        m = meta[i]
        t = ts[i]
        if stream and timeout >= 0:
            while st[ST_LRU_H] >= 0 and t - agg[st[ST_LRU_H], AG_TS] > timeout:
                _flush(st[ST_LRU_H], FR_TIMEOUT, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                       sx, obuf, o2, ometa, st, P, C)
        code, keyed = _classify(buf, s, meta, i, P)
        if code != S.OK:
            if keyed and st[ST_NLIVE] > 0:
                h = _flow_hash(buf, s, m)
                a, pos = _lookup(buf, s, m, h, htab, agg, sbuf, soff, smeta)
                if a >= 0:
                    _flush(a, FR_OTHER, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                           sx, obuf, o2, ometa, st, P, C)
            # Linux validates the L4 checksum only of frames that reach the TCP/UDP layer of
            # GRO: those get DATA_VALID; IP-level refusals (options, padding...) do not
            chk = P[P_VERIFY] != 0 and (code == S.GRO_FLUSH_FLAGS or code == S.GRO_PURE_ACK)
            _pass_alone(buf, s, fl, meta, i, src0 + i, t, code, chk, not chk, obuf, o2, ometa, st, C)
            continue
        if stream and fl > P[P_SLOT]:
            h = _flow_hash(buf, s, m)
            a, pos = _lookup(buf, s, m, h, htab, agg, sbuf, soff, smeta)
            if a >= 0:
                _flush(a, FR_OTHER, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                       sx, obuf, o2, ometa, st, P, C)
            _pass_alone(buf, s, fl, meta, i, src0 + i, t, S.GRO_TOO_BIG, P[P_VERIFY] != 0, False,
                      obuf, o2, ometa, st, C)
            continue
        if stream and st[ST_HELD] >= P[P_MAXHELD] and st[ST_LRU_H] >= 0:
            _flush(st[ST_LRU_H], FR_EVICT, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                   sx, obuf, o2, ometa, st, P, C)
        tcp = np.int64(m.l4_proto) == 6
        pay = np.int64(m.pay_len)
        l4 = s + np.int64(m.l4_off)
        fw = _be32(buf, l4 + 12) if tcp else 0
        # The previous frame's aggregate first: in a train, the next segment belongs to it.
        # _fast_match implies the same flow, and a flow has one open aggregate, so a match
        # is the aggregate the hash lookup would find (saves the hash and the probe).
        h = -1
        a = -1
        checked = False
        if last >= 0 and agg[last, AG_HEAD] >= 0:
            hd = agg[last, AG_HEAD]
            hs = soff[hd]
            # the ports first: many interleaved flows miss here at once
            if np.int64(smeta[hd].l4_off) == l4 - s and _le32(buf, l4) == _le32(sbuf, hs + l4 - s) \
                    and _fast_match(buf, s, m, sbuf, hs, smeta[hd], cwr_ign):
                a = last
                checked = True
        if a < 0:
            h = _flow_hash(buf, s, m)
            a, pos, checked = _lookup_fast(buf, s, m, h, htab, agg, sbuf, soff, smeta, cwr_ign)
        merged = False
        if a >= 0:
            hd = agg[a, AG_HEAD]
            r = _refuse(buf, s, m, sbuf, soff[hd], smeta[hd], agg, a, P, checked)
            if r < 0:
                merged = True
            else:
                C[C_REFUSE + r] += 1
                _flush(a, FR_SIZE if r == R_SIZE else FR_MISMATCH, agg, htab, afree, pend, sbuf,
                       soff, slen, smeta, sx, obuf, o2, ometa, st, P, C)
                a = -1
        if not merged and tcp and (fw & (TCP_PSH | TCP_FIN)):
            _pass_alone(buf, s, fl, meta, i, src0 + i, t, S.GRO_SINGLE, P[P_VERIFY] != 0, False,
                      obuf, o2, ometa, st, C)
            continue
        if stream and merged:
            # append the payload to the aggregate's region, verifying the checksum on the way
            # (Linux's order: a bad segment is not merged; it closes what its flow holds)
            psum, good = _put_payload(buf, s, m, obuf, soff[a] + slen[a], P[P_VERIFY] != 0)
            if not good:
                _flush(a, FR_OTHER, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                       sx, obuf, o2, ometa, st, P, C)
                _pass_alone(buf, s, fl, meta, i, src0 + i, t, S.GRO_BAD_CSUM, False, False,
                          obuf, o2, ometa, st, C)
                continue
            hdr = np.int64(smeta[a].pay_off)
            agg[a, AG_TSUM] = np.int64(csum_add_at(np.uint64(agg[a, AG_TSUM]), psum, slen[a] - hdr))
            slen[a] += pay
            if tcp:
                agg[a, AG_FLOR] |= fw >> 16 & 0x09
            st[ST_HELD] += 1
            st[ST_HELDB] += pay
            meta[i].status = S.GRO_HELD
            _count(C, S.GRO_MERGED)
            C[C_MERGES] += 1
        if not stream:
            j = i
            snext[j] = -1
            ssrc[j] = src0 + i
            sts[j] = t
        if merged:
            last = a
            if not stream:
                snext[agg[a, AG_TAIL]] = j
                agg[a, AG_TAIL] = j
            agg[a, AG_COUNT] += 1
            agg[a, AG_L3LEN] += pay
            agg[a, AG_NSEQ] = (agg[a, AG_NSEQ] + pay) & 0xFFFFFFFF
            short = pay < agg[a, AG_GSO]
            if tcp and (fw & (TCP_PSH | TCP_FIN)):
                _flush(a, FR_FLAGS, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                       sx, obuf, o2, ometa, st, P, C)
            elif short:
                _flush(a, FR_SHORT, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                       sx, obuf, o2, ometa, st, P, C)
            elif not tcp and agg[a, AG_COUNT] >= P[P_UDP_MAX]:
                _flush(a, FR_COUNT, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                       sx, obuf, o2, ometa, st, P, C)
            continue
        # a new aggregate
        if st[ST_NLIVE] >= P[P_MAXFLOWS] and st[ST_LRU_H] >= 0:
            _flush(st[ST_LRU_H], FR_EVICT, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                   sx, obuf, o2, ometa, st, P, C)
        if stream:
            if st[ST_AFREE] == 0 and not _reclaim(agg, afree, pend, obuf, o2, st):
                _pass_alone(buf, s, fl, meta, i, src0 + i, t, S.GRO_NO_ROOM, False, True,
                          obuf, o2, ometa, st, C)     # (unreachable: room was reserved)
                continue
            a = afree[st[ST_AFREE] - 1]
            # the frame goes to the region's start (jumbo room in front, same alignment mod 8)
            j = a * reg + _JUMBO_ROOM + (s & 7)
            po = np.int64(m.pay_off)
            copy_words(buf, s, obuf, j, po)
            psum, good = _put_payload_ool(buf, s, m, obuf, j + po, P[P_VERIFY] != 0)
            if not good:
                _pass_alone(buf, s, fl, meta, i, src0 + i, t, S.GRO_BAD_CSUM, False, False,
                          obuf, o2, ometa, st, C)
                continue
            soff[a] = j
            slen[a] = po + pay
            smeta[a] = m
            ssrc[a] = src0 + i
            sts[a] = t
            agg[a, AG_TSUM] = np.int64(psum)
            agg[a, AG_FLOR] = fw >> 16 & 0x09 if tcp else 0
            st[ST_HELD] += 1
            st[ST_HELDB] += po + pay
            meta[i].status = S.GRO_HELD
            j = a
        if h < 0:
            h = _flow_hash(buf, s, m)
        # (a flush may have moved entries in the hash table: find the free position again)
        mask = htab.shape[0] - 1
        pos = h & mask
        while htab[pos] >= 0:
            pos = (pos + 1) & mask
        st[ST_AFREE] -= 1
        a = afree[st[ST_AFREE]]     # (streaming: the region the frame was copied to)
        htab[pos] = a
        agg[a, AG_HPOS] = pos
        agg[a, AG_HASH] = h
        agg[a, AG_HEAD] = j
        agg[a, AG_TAIL] = j
        agg[a, AG_COUNT] = 1
        agg[a, AG_L3LEN] = np.int64(m.l3_end) - np.int64(m.l3_off)
        agg[a, AG_GSO] = pay
        agg[a, AG_NSEQ] = (_be32(buf, l4 + 4) + pay) & 0xFFFFFFFF if tcp else 0
        agg[a, AG_ID0] = _be16(buf, s + np.int64(m.l3_off) + 4) if np.int64(m.l3_proto) == 0x0800 else 0
        agg[a, AG_IDFIX] = 0
        agg[a, AG_TS] = t
        agg[a, AG_NEXT] = -1
        agg[a, AG_PREV] = st[ST_LRU_T]
        if st[ST_LRU_T] >= 0:
            agg[st[ST_LRU_T], AG_NEXT] = a
        else:
            st[ST_LRU_H] = a
        st[ST_LRU_T] = a
        st[ST_NLIVE] += 1
        last = a
    if flush_all > 0:
        while st[ST_LRU_H] >= 0:
            a = st[ST_LRU_H]
            if agg[a, AG_COUNT] == 1 and P[P_SLOT] == 0:
                # a frame held alone (many flows, one frame each in the burst): a plain
                # verified copy, without the aggregate writer's calls
                j = agg[a, AG_HEAD]
                _emit_raw(sbuf, soff[j], slen[j], smeta, j, sx[1, j], sx[2, j], S.GRO_SINGLE,
                          P[P_VERIFY] != 0, False, obuf, o2, ometa, st, C)
                C[C_FLUSH + FR_END] += 1
                _hdel(htab, agg, agg[a, AG_HPOS])
                q = agg[a, AG_NEXT]
                st[ST_LRU_H] = q
                if q >= 0:
                    agg[q, AG_PREV] = -1
                else:
                    st[ST_LRU_T] = -1
                agg[a, AG_HEAD] = -1
                afree[st[ST_AFREE]] = a
                st[ST_AFREE] += 1
                st[ST_NLIVE] -= 1
                continue
            _flush(a, FR_END, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                   sx, obuf, o2, ometa, st, P, C)
    elif flush_all == 0 and timeout >= 0:
        while st[ST_LRU_H] >= 0 and now - agg[st[ST_LRU_H], AG_TS] > timeout:
            _flush(st[ST_LRU_H], FR_TIMEOUT, agg, htab, afree, pend, sbuf, soff, slen, smeta,
                   sx, obuf, o2, ometa, st, P, C)
    return st[ST_OUT_N]


# --------------------------------------------------------------------------------
# Python API
# --------------------------------------------------------------------------------
_RUN_EP = []


def _canonical_sig():
    u8 = _nbt.Array(_nbt.uint8, 1, "C")
    i64 = _nbt.Array(_nbt.int64, 1, "C")
    rec = _nbt.Array(_REC, 1, "C")
    return (u8, i64, i64, rec, i64, i64, _nbt.int64, _nbt.int64, _nbt.int64)


def _call_run(buf, off, ln, meta, ts, I, src0, now, flush_all):
    """Call :func:`_run` through its compiled entry point (the dispatcher's type
    resolution costs microseconds per call -- as much as the kernel itself for a burst of
    32). Safe for any PacketBatch: its arrays are 1-D uint8 / int64 / META_DTYPE (the
    constructor makes sure), and the kernel checks the layout itself (_NOT_CONTIG)."""
    if _RUN_EP:
        return _RUN_EP[0](buf, off, ln, meta, ts, I, src0, now, flush_all)
    r = _run(buf, off, ln, meta, ts, I, src0, now, flush_all)
    ov = _run.overloads.get(_canonical_sig())
    if ov is not None:
        _RUN_EP.append(ov.entry_point)
    return r


def _run_batch(batch, ts, I, src0, now, flush_all):
    """_call_run on a batch; arrays that are not contiguous are copied for the call (the
    per-frame status is copied back into ``batch.meta``)."""
    k = _call_run(batch.buf, batch.off, batch.len, batch.meta, ts, I, src0, now, flush_all)
    if k != _NOT_CONTIG:
        return k
    meta = np.ascontiguousarray(batch.meta)
    k = _call_run(np.ascontiguousarray(batch.buf), np.ascontiguousarray(batch.off, np.int64),
                  np.ascontiguousarray(batch.len, np.int64), meta, np.ascontiguousarray(ts, np.int64),
                  I, src0, now, flush_all)
    batch.meta[...] = meta
    return k


class _State:
    """The engine's state in one int64 array ``I`` (what the kernel takes): parameters P,
    counters C, table state st, aggregates, hash table, free lists, the per-slot arrays
    of the store, and (header) the addresses of the store's bytes and records and of the
    output arena, whose arrays this object keeps alive."""

    def __init__(self, P, C, nagg, nsx, stream):
        parts = [("P", P_N), ("C", C_N), ("st", ST_N), ("agg", AG_N * nagg), ("htab", _pow2_at_least(2 * nagg)),
                 ("afree", nagg), ("sx", 3 * nsx)]
        if stream:
            parts += [("soff", nsx), ("slen", nsx), ("pend", nsx)]
        total = H_N + sum(k for _, k in parts)
        I = np.zeros(total, np.int64)
        pos = H_N
        views = {}
        for name, k in parts:
            views[name] = I[pos:pos + k]
            I[{"P": H_P, "C": H_C, "st": H_ST, "agg": H_AGG, "htab": H_HTAB, "afree": H_AFREE, "sx": H_SX,
               "soff": H_SOFF, "slen": H_SLEN, "pend": H_PEND}[name]] = pos
            pos += k
        I[H_NAGG] = nagg
        I[H_HSIZE] = views["htab"].shape[0]
        I[H_NSX] = nsx
        self.I = I
        self.P = views["P"]
        self.P[:] = P
        self.C = views["C"]
        self.C[:] = C
        self.st = views["st"]
        self.agg = views["agg"].reshape(nagg, AG_N)
        self.htab = views["htab"]
        self.afree = views["afree"]
        self.sx = views["sx"].reshape(3, nsx)
        self.agg[:, AG_HEAD] = -1
        self.htab[:] = -1
        self.afree[:] = np.arange(nagg - 1, -1, -1, dtype=np.int64)
        self.st[ST_LRU_H] = -1
        self.st[ST_LRU_T] = -1
        self.st[ST_AFREE] = nagg
        self._keep = []
        if stream:
            self.soff, self.slen = views["soff"], views["slen"]
        else:
            self.P[P_MAXFLOWS] = nagg

    def set_regions(self, region: int, smeta: np.ndarray) -> None:
        """Streaming: ``region`` bytes of the arena per aggregate; ``smeta`` one record
        per region (its head frame's)."""
        assert smeta.flags.c_contiguous and smeta.shape[0] == self.I[H_NAGG] == self.I[H_NSX]
        self.smeta = smeta
        self.I[H_REG] = region
        self.I[H_RAW0] = region * int(self.I[H_NAGG])
        self.I[H_SMETA] = smeta.ctypes.data

    def set_arena(self, arena: OutputArena, o2: np.ndarray) -> None:
        assert arena.buf.flags.c_contiguous and arena.meta.flags.c_contiguous and o2.flags.c_contiguous
        assert arena.meta.shape[0] >= o2.shape[1]
        self.arena, self.o2 = arena, o2
        self.I[H_OBUF] = arena.buf.ctypes.data
        self.I[H_OBUF_N] = arena.buf.shape[0]
        self.I[H_OMETA] = arena.meta.ctypes.data
        self.I[H_O2] = o2.ctypes.data
        self.I[H_O2_N] = o2.shape[1]


def _params(max_size, csum, cwr, fixedid_needs_df, udp, tcp, verify, hdr_len, udp_max_segs,
            timeout_ns, slot) -> np.ndarray:
    if not 64 <= int(max_size) <= GRO_MAX_SIZE:
        raise ValueError(f"max_size must be in 64..{GRO_MAX_SIZE} bytes")
    if csum not in ("partial", "full"):
        raise ValueError("csum is 'partial' or 'full'")
    if cwr not in _CWR_NAMES:
        raise ValueError(f"cwr is one of {sorted(_CWR_NAMES)}")
    if hdr_len not in ("headers", "linux"):
        raise ValueError("hdr_len is 'headers' or 'linux'")
    if not 1 <= int(udp_max_segs) <= 65535:
        raise ValueError("udp_max_segs must be in 1..65535")
    P = np.zeros(P_N, np.int64)
    P[P_MAX_SIZE] = int(max_size)
    P[P_CSUM_FULL] = csum == "full"
    P[P_CWR] = _CWR_NAMES[cwr]
    P[P_FIXEDID_DF] = bool(fixedid_needs_df)
    P[P_UDP] = bool(udp)
    P[P_TCP] = bool(tcp)
    P[P_VERIFY] = bool(verify)
    P[P_HDRLEN_LINUX] = hdr_len == "linux"
    P[P_UDP_MAX] = int(udp_max_segs)
    P[P_TIMEOUT] = -1 if timeout_ns is None else int(timeout_ns)
    P[P_SLOT] = int(slot)
    return P


def _pow2_at_least(x: int) -> int:
    return 1 << max(4, int(x - 1).bit_length())


def _lazy_bytes(n: int) -> np.ndarray:
    """``n`` zero bytes that take memory page by page, as they are first written: an
    anonymous mapping without transparent huge pages. numpy asks for huge pages above
    4 MB, which would map a GroTable's regions 2 MB (~30 regions) at a time, so a table
    with every flow open but short aggregates would hold all of its address space (74 MB
    by default) instead of the ~2 pages per aggregate it writes; with 1024 flows the
    two ran at the same speed here."""
    mm = mmap.mmap(-1, max(n, 1))
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        try:
            mm.madvise(mmap.MADV_NOHUGEPAGE)
        except OSError:     # (a kernel without transparent huge pages)
            pass
    return np.frombuffer(mm, np.uint8)


def _arena(capacity: int, max_frames: int, lazy: bool = False) -> tuple[OutputArena, np.ndarray]:
    """An OutputArena whose off/len/ts rows live in one (3, max_frames) int64 array, so
    the kernel takes one argument for the three. ``lazy``: its bytes from
    :func:`_lazy_bytes`."""
    max_frames = max(1, max_frames)
    arena = OutputArena(64 if lazy else capacity, max_frames)
    if lazy:
        arena.buf = _lazy_bytes((int(capacity) + 63) // 64 * 64)
    o2 = np.zeros((3, max_frames), np.int64)
    arena.off = o2[0, :max_frames]
    arena.len = o2[1, :max_frames]
    arena.ts = o2[2, :max_frames]
    return arena, o2


def _view(arena: OutputArena, n: int, used: int, with_ts: bool, cache: dict) -> PacketBatch:
    """The first ``n`` frames of ``arena`` as a PacketBatch, built without the constructor's
    checks (the kernel wrote them inside the arena): this runs once per burst. The slices
    of the arena's rows are kept in ``cache`` by ``n`` (cleared when the arena changes):
    slicing four arrays per call was ~1 us."""
    arena.n = n
    arena.used = used
    v = cache.get(n)
    if v is None:
        v = cache[n] = (arena.off[:n], arena.len[:n], arena.meta[:n], arena.ts[:n])
    return trusted_batch(arena.buf, v[0], v[1], v[2], v[3] if with_ts else None)


def counters_dict(C: np.ndarray) -> dict:
    """Counters as a dict: ``merged``, ``frames_in``, ``frames_out``, ``aggregates``,
    ``status`` (input frames by final GRO_* name), ``flush`` (aggregates by reason),
    ``refused`` (merge refusals by reason)."""
    return {
        "frames_in": int(C[C_IN]),
        "frames_out": int(C[C_OUT]),
        "aggregates": int(C[C_AGGS]),
        "merged": int(C[C_MERGES]),
        "status": {S.NAMES.get(192 + k, str(192 + k)): int(v) for k, v in enumerate(C[C_STATUS:C_STATUS + 64]) if v},
        "flush": {FLUSH_REASONS[k]: int(C[C_FLUSH + k]) for k in range(len(FLUSH_REASONS)) if C[C_FLUSH + k]},
        "refused": {REFUSE_REASONS[k]: int(C[C_REFUSE + k]) for k in range(len(REFUSE_REASONS)) if C[C_REFUSE + k]},
    }


@dataclass
class GroResult:
    """What :func:`coalesce` returns: ``batch`` (the output frames, a view of ``arena``),
    ``arena``, and ``counters`` (see :func:`counters_dict`)."""
    batch: PacketBatch
    arena: OutputArena
    counters: dict

    @property
    def out(self) -> PacketBatch:
        """The output frames: the same as ``batch``, under the name GSO's result uses."""
        return self.batch


class _StateViews:
    """``P`` (parameters) and ``C`` (counters): int64 arrays of the kernel state."""

    @property
    def P(self) -> np.ndarray:
        return self._S.P

    @property
    def C(self) -> np.ndarray:
        return self._S.C


class Coalescer(_StateViews):
    """A reusable burst coalescer: the tables and the output arena are allocated once (and
    grown when a larger burst comes), so a call costs one kernel dispatch.

    ``run(batch)`` parses ``batch`` in place (``meta``: layout and the per-input GRO status),
    merges, flushes everything and returns the output :class:`PacketBatch` (a view of
    ``self.arena``, valid until the next ``run``). Options as in :func:`coalesce`.
    """

    def __init__(self, max_burst: int = 256, max_size: int = GRO_LEGACY_MAX_SIZE, csum: str = "partial",
                 cwr: str = "6.18", fixedid_needs_df: bool = False, udp: bool = True, tcp: bool = True,
                 verify: bool = True, hdr_len: str = "headers", udp_max_segs: int = UDP_GRO_CNT_MAX,
                 max_frame: int = 2048):
        self._P = _params(max_size, csum, cwr, fixedid_needs_df, udp, tcp, verify, hdr_len, udp_max_segs, None, 0)
        self._S = None
        self._cap = 0
        self._bytes = 0
        self._views: dict = {}
        self._grow(int(max_burst), int(max_burst) * (int(max_frame) + 72 + _JUMBO_ROOM) + 128)

    @property
    def arena(self) -> OutputArena:
        return self._S.arena

    def _grow(self, n: int, nbytes: int) -> None:
        n = max(n, 1)
        if n > self._cap:
            self._cap = n
            old = self._S
            self._S = _State(self._P if old is None else old.P, 0 if old is None else old.C, n, n, False)
            self._zts = np.zeros(n, np.int64)
            self._zts_n = {}
        self._bytes = max(self._bytes, nbytes)
        self._S.set_arena(*_arena(self._bytes, self._cap))
        self._views = {}

    def run(self, batch: PacketBatch) -> PacketBatch:
        n = batch.off.shape[0]      # (len(batch) costs ~150 ns a call)
        if n > self._cap:
            self._grow(n, self._bytes)
        S_ = self._S
        st = S_.st
        ts = batch.ts
        if ts is None:
            # the zero timestamps' slices are kept by n (slicing is ~100 ns a call)
            ts = self._zts_n.get(n)
            if ts is None:
                ts = self._zts_n[n] = self._zts[:n]
        while True:
            k = _run_batch(batch, ts, S_.I, 0, 0, 1)
            if k >= 0:
                break
            self._grow(n, -int(k))
            S_ = self._S
            st = S_.st
        return _view(S_.arena, k, st[ST_OUT_USED], batch.ts is not None, self._views)

    @property
    def counters(self) -> dict:
        return counters_dict(self.C)


def coalesce(batch: PacketBatch, max_size: int = GRO_LEGACY_MAX_SIZE, csum: str = "partial",
             cwr: str = "6.18", fixedid_needs_df: bool = False, udp: bool = True, tcp: bool = True,
             verify: bool = True, hdr_len: str = "headers", udp_max_segs: int = UDP_GRO_CNT_MAX) -> GroResult:
    """Coalesce one burst with Linux's GRO rules, then flush every aggregate.

    ``batch`` is parsed in place; ``batch.meta['status']`` gets each input frame's fate
    (GRO_HEAD/GRO_HEAD_FIXEDID, GRO_MERGED, GRO_SINGLE or the reason it passed alone).
    Output frames are in flush order (Linux's order of delivery); within a flow, in arrival
    order.

    Parameters: ``max_size`` (bytes; an aggregate's IP packet stays below it; above 65536
    enables BIG TCP), ``csum`` ("partial": Linux's CHECKSUM_PARTIAL with NEEDS_CSUM, or
    "full"), ``cwr`` ("6.18", "legacy", "accecn"), ``fixedid_needs_df``, ``udp``/``tcp``
    (which GRO to run), ``verify`` (check checksums before merging), ``hdr_len``
    ("headers" or "linux"), ``udp_max_segs`` (datagrams per UDP aggregate).
    """
    c = Coalescer(max(len(batch), 1), max_size, csum, cwr, fixedid_needs_df, udp, tcp, verify, hdr_len,
                  udp_max_segs)
    out = c.run(batch)
    return GroResult(out, c.arena, c.counters)


class GroTable(_StateViews):
    """Streaming GRO: aggregates persist across :meth:`push` calls.

    Memory is bounded: at most ``max_flows`` open aggregates and ``max_held`` held frames;
    frames longer than ``slot_size`` bytes are not held (they pass alone with
    GRO_TOO_BIG). When either bound is reached, the oldest aggregate is flushed (Linux does
    the same when a NAPI context holds too many). ``timeout_ns``: an aggregate whose first
    frame is more than this older than the frame being pushed (or than ``now`` at the end
    of a push) is flushed, like ``gro_flush_timeout``; ``None`` keeps aggregates until a
    rule, memory or :meth:`flush` ends them.

    Each open aggregate is built in place, in a region of the output arena big enough for
    the largest aggregate (``region_bytes``: ``slot_size + max_size`` and ~100 bytes,
    67.6 KB by default), so every payload byte is copied once. The arena holds
    ``max_flows`` regions plus a few spare (see :attr:`memory_bytes`): 74 MB of address
    space for 1024 flows, of which only the 4 KB pages aggregates have reached take memory.

    ``push(batch, now)`` returns the frames flushed by this push as a PacketBatch (a view
    valid until the next call); ``flush()`` returns everything still held. Frame
    timestamps (``batch.ts``, ns) default to ``now``. Other options as in :func:`coalesce`.
    ``counters`` is a dict (see :func:`counters_dict`).
    """

    def __init__(self, max_flows: int = 1024, timeout_ns: int | None = None, max_held: int | None = None,
                 slot_size: int = 2048, max_size: int = GRO_LEGACY_MAX_SIZE, csum: str = "partial",
                 cwr: str = "6.18", fixedid_needs_df: bool = False, udp: bool = True, tcp: bool = True,
                 verify: bool = True, hdr_len: str = "headers", udp_max_segs: int = UDP_GRO_CNT_MAX,
                 link: int | None = None):
        if max_flows < 1:
            raise ValueError("max_flows must be at least 1")
        slot = (max(int(slot_size), 64) + 63) // 64 * 64
        P = _params(max_size, csum, cwr, fixedid_needs_df, udp, tcp, verify, hdr_len, udp_max_segs,
                    timeout_ns, slot)
        self.max_flows = int(max_flows)
        held = int(max_held) if max_held is not None else max(64, min(max_flows * 8, 16384))
        if held < 1:
            raise ValueError("max_held must be at least 1")
        self.max_held = held
        P[P_MAXFLOWS] = self.max_flows
        P[P_MAXHELD] = held
        # Regions: one per open aggregate, and spares: a region flushed by a push holds a
        # frame of that push's output, so it is reused only by the next call -- or sooner,
        # once that frame is moved to the end of the output (_reclaim), when no spare is left.
        nagg = self.max_flows + max(1, min(64, self.max_flows // 4))
        # the largest aggregate: its head frame's link header (at most a slot) and an IP
        # packet below max_size, the jumbo option's room in front, alignment
        self.region_bytes = (_JUMBO_ROOM + 8 + slot + int(max_size) + 63) // 64 * 64
        S_ = self._S = _State(P, 0, nagg, nagg, True)
        S_.set_regions(self.region_bytes, new_meta(nagg))
        self._src = 0
        self.arena = None
        self._views: dict = {}
        self._ts: dict = {}
        self._empty = None

    @property
    def held(self) -> int:
        """Frames waiting in the table."""
        return int(self._S.st[ST_HELD])

    @property
    def flows(self) -> int:
        """Open aggregates."""
        return int(self._S.st[ST_NLIVE])

    @property
    def memory_bytes(self) -> int:
        """Bytes the table has allocated (tables, and the output arena: the aggregates'
        regions, then room for the frames a push passes alone). The regions are address
        space first: the kernel maps a page when an aggregate first reaches it."""
        a = self.arena.buf.nbytes if self.arena is not None else 0
        return int(self._S.I.nbytes + self._S.smeta.nbytes + a)

    def _call(self, batch: PacketBatch, now: int, mode: int) -> PacketBatch:
        n = batch.off.shape[0]
        S_ = self._S
        st = S_.st
        if batch.ts is not None:
            ts = batch.ts
        else:
            # one array per burst size, refilled (allocating it was ~0.5 us per call)
            ts = self._ts.get(n)
            if ts is None:
                ts = self._ts[n] = np.empty(n, np.int64)
            ts.fill(int(now))
        frames = n + min(self.max_flows, self.max_held) + 1
        if self.arena is None or self.arena.max_frames < frames:
            self._grow(frames, int(S_.I[H_RAW0]) + (1 << 20))
        while True:
            k = _run_batch(batch, ts, S_.I, self._src, int(now), mode)
            if k >= 0:
                break
            self._grow(frames, -int(k))
        self._src += n
        return _view(self.arena, k, st[ST_OUT_USED], True, self._views)

    def _grow(self, frames: int, nbytes: int) -> None:
        """A larger arena; the frames of the open aggregates move with their regions."""
        old = self.arena
        frames = max(frames, old.max_frames if old is not None else 0)
        nbytes = max(nbytes, old.capacity if old is not None else 0)
        raw0 = int(self._S.I[H_RAW0])
        if old is not None and nbytes > old.capacity:
            nbytes = max(nbytes, raw0 + 2 * (old.capacity - raw0))     # the raw area doubles
        arena, o2 = _arena(nbytes, frames, lazy=True)
        if old is not None:
            S_ = self._S
            for a in np.flatnonzero(S_.agg[:, AG_HEAD] >= 0):
                lo = int(a) * self.region_bytes
                hi = int(S_.soff[a] + S_.slen[a])
                arena.buf[lo:hi] = old.buf[lo:hi]
        self._S.set_arena(arena, o2)
        self.arena = arena
        self._views = {}

    def push(self, batch: PacketBatch, now: int = 0) -> PacketBatch:
        """Add a burst (parsed in place) at time ``now`` (ns); returns the frames flushed."""
        return self._call(batch, now, 0)

    def flush(self, now: int = 0) -> PacketBatch:
        """Flush every held aggregate (oldest first); returns them."""
        if self._empty is None:
            self._empty = PacketBatch.empty()
        return self._call(self._empty, now, 1)

    @property
    def counters(self) -> dict:
        return counters_dict(self.C)


def fixed_id_mask(batch: PacketBatch) -> np.ndarray:
    """Boolean mask of GRO output frames whose IPv4 IDs were fixed (Linux SKB_GSO_TCP_FIXEDID;
    virtio_net_hdr has no bit for it): segment those keeping the ID constant."""
    return batch.meta["status"] == S.GRO_HEAD_FIXEDID
