"""Independent checks for engine output, used by the fuzz targets and campaigns.

``csum_ok`` recomputes the IPv4 header checksum and the TCP/UDP/ICMP/ICMPv6 checksum of
parsed frames with a plain byte loop (RFC 1071; no word tricks, nothing shared with
``offload.csum``), pseudo-header from the parsed layout (IPv6: the final destination of a
routing header). ``guarded_arenas`` makes every OutputArena created inside it end in
guard bytes, so a write past the end is seen even with bounds checks off.
"""

from __future__ import annotations

import contextlib

import numpy as np
from numba import njit

from offload import batch as _batch

GUARD = 4096
GUARD_BYTE = 0xA5


@njit(cache=True)
def _sum(buf, s, n):
    acc = 0
    k = 0
    while k + 1 < n:
        acc += (np.int64(buf[s + k]) << 8) | np.int64(buf[s + k + 1])
        k += 2
    if k < n:
        acc += np.int64(buf[s + k]) << 8
    return acc


@njit(cache=True)
def _fold(acc):
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc


@njit(cache=True)
def csum_ok(buf, off, length, meta, out):
    """out[i] = 1 if frame i's IPv4 header checksum (if IPv4) and L4 checksum are valid,
    0 if not, -1 if not checkable (not parsed OK, fragment, other protocol).
    UDP over IPv4 with checksum 0 counts as valid (no checksum)."""
    for i in range(off.shape[0]):
        m = meta[i]
        out[i] = -1
        if m.status != 0 and not (m.status >= 128 and m.status < 256):
            continue
        s = off[i]
        n = length[i]
        l3 = np.int64(m.l3_off)
        l4 = np.int64(m.l4_off)
        end = np.int64(m.l3_end)
        if l3 < 0 or l4 < 0 or end > n or (m.pflags & 2) != 0:
            continue
        v4 = m.l3_proto == 0x0800
        ok = 1
        if v4:
            hl = np.int64(m.l3_hdr_len)
            if _fold(_sum(buf, s + l3, hl)) != 0xFFFF:
                ok = 0
        p = np.int64(m.l4_proto)
        if p != 6 and p != 17 and p != 1 and p != 58:
            out[i] = ok
            continue
        ln = end - l4
        if p == 17:
            # the UDP checksum covers the datagram as its length field says (the rest is padding)
            ulen = (np.int64(buf[s + l4 + 4]) << 8) | np.int64(buf[s + l4 + 5])
            if ulen >= 8 and ulen <= ln:
                ln = ulen
        if p == 17 and v4 and buf[s + l4 + 6] == 0 and buf[s + l4 + 7] == 0:
            out[i] = ok
            continue
        acc = _sum(buf, s + l4, ln)
        if p != 1:
            d = np.int64(m.dst_off)
            if v4:
                acc += _sum(buf, s + l3 + 12, 4) + _sum(buf, s + d, 4)
            else:
                acc += _sum(buf, s + l3 + 8, 16) + _sum(buf, s + d, 16)
            acc += p + ln
        if _fold(acc) != 0xFFFF:
            ok = 0
        out[i] = ok


def check_csums(batch) -> np.ndarray:
    out = np.zeros(len(batch), np.int64)
    if len(batch):
        csum_ok(batch.buf, batch.off, batch.len, batch.meta, out)
    return out


_ARENAS: list = []


@contextlib.contextmanager
def guarded_arenas():
    """Every OutputArena built inside gets GUARD bytes of GUARD_BYTE after its end (its
    ``buf`` is a view of a longer array). Yields the list of (arena, backing array)."""
    orig = _batch.OutputArena.__init__
    made = []

    def init(self, capacity, max_frames):
        orig(self, capacity, max_frames)
        cap = self.buf.size
        back = np.full(cap + GUARD, GUARD_BYTE, np.uint8)
        back[:cap] = 0
        self.buf = back[:cap]
        made.append((self, back))

    _batch.OutputArena.__init__ = init
    try:
        yield made
    finally:
        _batch.OutputArena.__init__ = orig


def guard_violations(made) -> list[str]:
    out = []
    for arena, back in made:
        tail = back[back.size - GUARD:]
        bad = np.flatnonzero(tail != GUARD_BYTE)
        if bad.size:
            out.append(f"{bad.size} bytes written past the end of an OutputArena (first at +{int(bad[0])})")
    return out
