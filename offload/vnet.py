"""virtio_net_hdr: layout, constants, pack/unpack to ``meta``, and the kernel's validation rules.

Layout (VIRTIO 1.x, every field little-endian)::

    off  size  field
    0    u8    flags        NEEDS_CSUM 1, DATA_VALID 2, RSC_INFO 4
    1    u8    gso_type     NONE 0, TCPV4 1, UDP 3 (UFO), TCPV6 4, UDP_L4 5; | ECN 0x80
    2    u16   hdr_len      header bytes (Linux fills the linear head length)
    4    u16   gso_size     payload bytes per segment (MSS)
    6    u16   csum_start   where summing starts, bytes from the frame start
    8    u16   csum_offset  where the sum is stored, bytes from csum_start
    10   u16   num_buffers  (12-byte form only: MRG_RXBUF / VERSION_1)

Validation follows Linux ``__virtio_net_hdr_to_skb`` (include/linux/virtio_net.h,
6.18): see :func:`validate_one` for the rules, each with its status code.
"""

from __future__ import annotations

import struct
from typing import Sequence

import numpy as np
from numba import njit

from . import status as S

F_NEEDS_CSUM = 1
F_DATA_VALID = 2
F_RSC_INFO = 4

GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_UDP_L4 = 5
GSO_ECN = 0x80

HDR_LEN = 10
HDR_LEN_MRG = 12

UDP_MAX_SEGMENTS = 128
GSO_BY_FRAGS = 0xFFFF

VNET_DTYPE = np.dtype(
    [("flags", "u1"), ("gso_type", "u1"), ("hdr_len", "<u2"), ("gso_size", "<u2"),
     ("csum_start", "<u2"), ("csum_offset", "<u2")]
)
VNET_DTYPE_MRG = np.dtype(VNET_DTYPE.descr + [("num_buffers", "<u2")])

_FIELDS = ("flags", "gso_type", "hdr_len", "gso_size", "csum_start", "csum_offset")
_META_FIELDS = ("vnet_flags", "gso_type", "hdr_len", "gso_size", "csum_start", "csum_offset")


def pack(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0, num_buffers=None) -> bytes:
    """A virtio_net_hdr as bytes: 10 bytes, or 12 when ``num_buffers`` is given."""
    b = struct.pack("<BBHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)
    if num_buffers is not None:
        b += struct.pack("<H", num_buffers)
    return b


def unpack(data, size: int = HDR_LEN) -> tuple:
    """``(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset[, num_buffers])``."""
    if size not in (HDR_LEN, HDR_LEN_MRG):
        raise ValueError("virtio_net_hdr is 10 or 12 bytes")
    if len(data) < size:
        raise ValueError(f"need {size} bytes for a virtio_net_hdr, got {len(data)}")
    return struct.unpack_from("<BBHHHH" + ("H" if size == HDR_LEN_MRG else ""), data)


def load_into_meta(meta: np.ndarray, hdrs) -> None:
    """Store one header per record: ``hdrs`` is a sequence of bytes (10/12) or 6-tuples,
    or a ``VNET_DTYPE`` array."""
    if isinstance(hdrs, np.ndarray) and hdrs.dtype.names:
        for f, mf in zip(_FIELDS, _META_FIELDS):
            meta[mf] = hdrs[f]
        if "num_buffers" in hdrs.dtype.names:
            meta["num_buffers"] = hdrs["num_buffers"]
        return
    hdrs = list(hdrs)
    if len(hdrs) != meta.shape[0]:
        raise ValueError("one virtio_net_hdr per frame")
    for i, h in enumerate(hdrs):
        if h is None:
            continue
        t = unpack(h, HDR_LEN_MRG if len(h) >= HDR_LEN_MRG else HDR_LEN) if isinstance(h, (bytes, bytearray, memoryview)) else tuple(h)
        for k, mf in enumerate(_META_FIELDS):
            meta[mf][i] = t[k]
        if len(t) > 6:
            meta["num_buffers"][i] = t[6]


def from_meta(meta: np.ndarray, mrg: bool = False) -> np.ndarray:
    """The headers in ``meta`` as a ``VNET_DTYPE`` (or ``VNET_DTYPE_MRG``) array;
    ``.tobytes()`` of one element is the wire form."""
    out = np.zeros(meta.shape[0], VNET_DTYPE_MRG if mrg else VNET_DTYPE)
    for f, mf in zip(_FIELDS, _META_FIELDS):
        out[f] = meta[mf]
    if mrg:
        out["num_buffers"] = meta["num_buffers"]
    return out


def header_bytes(meta_record, mrg: bool = False) -> bytes:
    """The wire form of one record's virtio_net_hdr."""
    m = meta_record
    return pack(int(m["vnet_flags"]), int(m["gso_type"]), int(m["hdr_len"]), int(m["gso_size"]),
                int(m["csum_start"]), int(m["csum_offset"]), int(m["num_buffers"]) if mrg else None)


@njit(cache=True, nogil=True)
def validate_one(n, meta, i):
    """Check ``meta[i]``'s virtio_net_hdr against a frame of ``n`` bytes the way Linux
    accepts one from AF_PACKET (``PACKET_VNET_HDR``) or tap. The frame must be parsed
    already. Returns ``status.OK`` or a ``VNET_*`` code (and does not write it).

    Rules, in the kernel's order (``packet_snd_vnet_parse`` / ``tun_vnet_hdr_get``, then
    ``__virtio_net_hdr_to_skb``, Linux 6.18); proven against the kernel itself in
    ``tests/test_vnet.py``:

    1. ``hdr_len`` (raised to ``csum_start + csum_offset + 2`` with NEEDS_CSUM) may not
       exceed the frame: ``VNET_HDR_LEN``;
    2. gso_type without the ECN bit must be NONE, TCPV4, UDP, TCPV6 or UDP_L4, and ECN alone
       is not a type: ``VNET_BAD_GSO_TYPE``; a GSO type needs gso_size != 0:
       ``VNET_GSO_SIZE_ZERO``;
    3. NEEDS_CSUM: ``csum_start + max(L4 min header, csum_offset + 2)`` must lie in the
       frame (``VNET_CSUM_OUTSIDE``) and ``csum_start`` (from the frame start) must be at
       least 20, or 40 for TCPV6 (``VNET_CSUM_START_LOW``); the kernel then trusts the
       offsets and does not look at the protocols;
    4. GSO without NEEDS_CSUM: the kernel's flow dissector must find the transport
       protocol the type names (TCP for TCPV4/TCPV6, UDP for UDP/UDP_L4, whatever the
       L3) with its minimal header inside the frame: ``VNET_PROTO_MISMATCH``; on
       AF_PACKET the dissector never gets past a VLAN tag here, so a tagged frame fails;
    5. UDP_L4: NEEDS_CSUM (``VNET_USO_NO_CSUM``), csum_offset 6
       (``VNET_BAD_CSUM_OFFSET``), payload after ``csum_start + 8`` at most
       ``gso_size * 128`` (``VNET_TOO_MANY_SEGS``), no ECN (``VNET_USO_ECN``); TCP with
       NEEDS_CSUM: csum_offset 16 (``VNET_BAD_CSUM_OFFSET``);
    6. gso_size 0xFFFF (GSO_BY_FRAGS) is refused: ``VNET_GSO_SIZE_ZERO``.

    Where only the flow dissector could tell (rule 4) the parsed layout stands in for it:
    the dissector stops after an IPv6 fragment header and does not walk AH, so a GSO frame
    without NEEDS_CSUM whose TCP/UDP header sits behind those is accepted here and refused
    by Linux; a frame the parser finds malformed before its L4 header is refused here,
    while the dissector may be laxer. A GSO frame accepted with NEEDS_CSUM may still carry
    other protocols than its type says (Linux accepts it and drops it when segmenting);
    GSO refuses such frames itself. Linux also refuses ``csum_start`` within its skb
    headroom of 65535, which a header cannot know; it only matters for frames over 64 KB.
    """
    m = meta[i]
    gt = np.int64(m.gso_type)
    base = gt & 0x7F
    flags = np.int64(m.vnet_flags)
    needs = (flags & F_NEEDS_CSUM) != 0
    cs = np.int64(m.csum_start)
    co = np.int64(m.csum_offset)
    gso = np.int64(m.gso_size)
    if np.int64(m.hdr_len) > n:
        return S.VNET_HDR_LEN
    if gt != GSO_NONE:
        if base != GSO_TCPV4 and base != GSO_TCPV6 and base != GSO_UDP and base != GSO_UDP_L4:
            return S.VNET_BAD_GSO_TYPE
        if gso == 0:
            return S.VNET_GSO_SIZE_ZERO
    thlen = 0
    nh_min = 20
    ip_proto = 0
    if base == GSO_TCPV4 or base == GSO_TCPV6:
        thlen = 20
        ip_proto = 6
        if base == GSO_TCPV6:
            nh_min = 40
    elif base == GSO_UDP or base == GSO_UDP_L4:
        thlen = 8
        ip_proto = 17
    if needs:
        need_off = co + 2
        if thlen > need_off:
            need_off = thlen
        if cs + need_off > n:
            return S.VNET_CSUM_OUTSIDE
        if cs < nh_min:
            return S.VNET_CSUM_START_LOW
    elif gt != GSO_NONE:
        l4 = np.int64(m.l4_off)
        # AF_PACKET leaves skb->protocol at the tag's ethertype with the network header
        # already past the tags, and the dissector then fails: Linux refuses every
        # VLAN-tagged GSO frame without NEEDS_CSUM (measured on 6.18)
        if m.vlan_count > 0 or l4 < 0 or np.int64(m.l4_proto) != ip_proto or l4 + thlen > n:
            return S.VNET_PROTO_MISMATCH
    if gt == GSO_NONE:
        return S.OK
    if base == GSO_UDP_L4:
        if not needs:
            return S.VNET_USO_NO_CSUM
        if co != 6:
            return S.VNET_BAD_CSUM_OFFSET
        if n - (cs + 8) > gso * UDP_MAX_SEGMENTS:
            return S.VNET_TOO_MANY_SEGS
        if gt != base:
            return S.VNET_USO_ECN
    elif base == GSO_TCPV4 or base == GSO_TCPV6:
        if needs and co != 16:
            return S.VNET_BAD_CSUM_OFFSET
    if gso == GSO_BY_FRAGS:
        return S.VNET_GSO_SIZE_ZERO
    return S.OK


@njit(cache=True, nogil=True)
def validate_frames(length, meta):
    """Validate every record's header (frames already parsed); writes a VNET_* status
    where a header is refused. Returns the number refused."""
    bad = 0
    for i in range(length.shape[0]):
        st = validate_one(length[i], meta, i)
        if st != S.OK:
            meta[i].status = st
            bad += 1
    return bad


def validate_batch(batch) -> np.ndarray:
    """Parse ``batch`` and validate its virtio headers. Returns the per-frame status
    (``OK`` or a ``VNET_*`` / parse code); also written to ``meta['status']``."""
    from .parse import parse_batch
    parse_batch(batch)
    if len(batch):
        validate_frames(batch.len, batch.meta)
    return batch.meta["status"].copy()


def strip_headers(data: bytes, size: int = HDR_LEN) -> tuple[tuple, bytes]:
    """Split a buffer read from tap/AF_PACKET into (header tuple, frame bytes)."""
    if len(data) < size:
        raise ValueError(f"buffer of {len(data)} bytes is shorter than the {size}-byte virtio_net_hdr")
    return unpack(data, size), bytes(data[size:])


def describe_header(t: Sequence[int]) -> str:
    names = {0: "none", 1: "tcpv4", 3: "udp", 4: "tcpv6", 5: "udp_l4"}
    gt = t[1]
    return (f"flags={t[0]:#x} gso={names.get(gt & 0x7F, gt)}{'|ecn' if gt & 0x80 else ''} "
            f"hdr_len={t[2]} gso_size={t[3]} csum={t[4]}+{t[5]}")
