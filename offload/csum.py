"""Internet checksum (RFC 1071) kernels.

Conventions
-----------
* A *sum* is the 16-bit one's-complement sum of a span read as big-endian
  16-bit words starting at the span's first byte (odd trailing byte padded with
  zero), folded, **not** inverted, as a Python/Numba int in 0..0xFFFF. The
  checksum stored in a header is ``~sum & 0xFFFF``.
* Internally spans are summed as little-endian 32-bit words into a 64-bit
  accumulator "in absolute parity" (a byte at an even buffer offset is the low
  byte of its 16-bit lane); :func:`acc_to_sum` turns that into a sum relative
  to the span's start. This is why spans at any alignment cost the same.
* Kernels take ``buf`` (uint8) and ``w32`` (``PacketBatch.w32``: the uint32 view
  of the same memory, or an empty array when the arena is not 4-byte aligned,
  in which case byte loops are used).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .batch import u32_view

_U64 = np.uint64
_M16 = np.uint64(0xFFFF)
_M32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def fold16(acc):
    """Fold a 64-bit one's-complement accumulator to 16 bits (uint64 0..0xFFFF)."""
    acc = np.uint64(acc)
    acc = (acc & _M32) + (acc >> np.uint64(32))
    acc = (acc & _M32) + (acc >> np.uint64(32))
    acc = (acc & _M16) + (acc >> np.uint64(16))
    acc = (acc & _M16) + (acc >> np.uint64(16))
    acc = (acc & _M16) + (acc >> np.uint64(16))
    return acc


@njit(cache=True, nogil=True, inline="always")
def bswap16(x):
    x = np.uint64(x)
    return ((x & np.uint64(0xFF)) << np.uint64(8)) | ((x >> np.uint64(8)) & np.uint64(0xFF))


@njit(cache=True, nogil=True, inline="always")
def acc_to_sum(acc, start):
    """Absolute-parity accumulator of a span starting at buffer offset ``start`` -> its sum."""
    f = fold16(acc)
    if start & 1:
        return f
    return bswap16(f)


@njit(cache=True, nogil=True, inline="always")
def csum_add(a, b):
    """One's-complement addition of two 16-bit sums."""
    s = np.uint64(a) + np.uint64(b)
    s = (s & _M16) + (s >> np.uint64(16))
    return (s & _M16) + (s >> np.uint64(16))


@njit(cache=True, nogil=True, inline="always")
def csum_sub(a, b):
    """One's-complement subtraction: ``a - b`` (RFC 1624 style)."""
    return csum_add(a, np.uint64(0xFFFF) ^ np.uint64(b))


@njit(cache=True, nogil=True, inline="always")
def csum_add_at(total, part, rel_off):
    """Add ``part`` (the sum of a span) to ``total`` (the sum of an enclosing span)
    when the part starts ``rel_off`` bytes after the enclosing span: an odd offset
    contributes byte-swapped."""
    if rel_off & 1:
        return csum_add(total, bswap16(part))
    return csum_add(total, part)


@njit(cache=True, nogil=True)
def acc_span(buf, w32, start, n):
    """Absolute-parity 64-bit accumulator of ``buf[start:start+n]``."""
    acc = np.uint64(0)
    i = start
    end = start + n
    while i < end and (i & 3) != 0:
        acc += np.uint64(buf[i]) << np.uint64((i & 1) * 8)
        i += 1
    j0 = i >> 2
    nw = (end - i) >> 2
    if nw > w32.shape[0] - j0:
        nw = max(0, w32.shape[0] - j0)
    if nw > 0:
        ws = w32[j0:j0 + nw]
        a1 = np.uint64(0)
        for k in range(nw):
            a1 += np.uint64(ws[k])
        acc += a1
        i += nw * 4
    while i < end:
        acc += np.uint64(buf[i]) << np.uint64((i & 1) * 8)
        i += 1
    return acc


@njit(cache=True, nogil=True)
def sum_span(buf, w32, start, n):
    """Folded big-endian sum (not inverted) of ``buf[start:start+n]``."""
    return acc_to_sum(acc_span(buf, w32, start, n), start)


@njit(cache=True, nogil=True)
def copy_sum(src, sw32, s, dst, dw32, d, n):
    """Copy ``src[s:s+n]`` to ``dst[d:d+n]`` and return the sum of the bytes (relative
    to the span start, as :func:`sum_span`). One pass when ``s`` and ``d`` have the
    same alignment mod 4 and both arenas have word views; otherwise copy, then sum."""
    if (s & 3) == (d & 3) and sw32.shape[0] > 0 and dw32.shape[0] > 0:
        acc = np.uint64(0)
        i = 0
        while i < n and ((s + i) & 3) != 0:
            b = src[s + i]
            dst[d + i] = b
            acc += np.uint64(b) << np.uint64(((s + i) & 1) * 8)
            i += 1
        js = (s + i) >> 2
        jd = (d + i) >> 2
        nw = (n - i) >> 2
        lim = min(sw32.shape[0] - js, dw32.shape[0] - jd)
        if nw > lim:
            nw = max(0, lim)
        if nw > 0:
            sw = sw32[js:js + nw]
            dw = dw32[jd:jd + nw]
            a1 = np.uint64(0)
            for k in range(nw):
                w = sw[k]
                dw[k] = w
                a1 += np.uint64(w)
            acc += a1
            i += nw * 4
        while i < n:
            b = src[s + i]
            dst[d + i] = b
            acc += np.uint64(b) << np.uint64(((s + i) & 1) * 8)
            i += 1
        return acc_to_sum(acc, s)
    sv = src[s:s + n]
    dv = dst[d:d + n]
    for k in range(n):
        dv[k] = sv[k]
    return sum_span(dst, dw32, d, n)


@njit(cache=True, nogil=True)
def copy_bytes(src, s, dst, d, n):
    """Copy ``n`` bytes with an explicit loop (vectorised; slice assignment is ~18x slower)."""
    sv = src[s:s + n]
    dv = dst[d:d + n]
    for k in range(n):
        dv[k] = sv[k]


@njit(cache=True, nogil=True)
def pseudo_sum_v4(buf, l3, proto, l4_len):
    """Sum of the IPv4 pseudo-header of the packet whose IP header starts at ``buf[l3]``."""
    acc = np.uint64(0)
    for k in range(0, 8, 2):
        acc += (np.uint64(buf[l3 + 12 + k]) << np.uint64(8)) | np.uint64(buf[l3 + 13 + k])
    acc += np.uint64(proto)
    acc += np.uint64(l4_len & 0xFFFF) + np.uint64((l4_len >> 16) & 0xFFFF)
    return fold16(acc)


@njit(cache=True, nogil=True)
def pseudo_sum_v6(buf, l3, dst, proto, l4_len):
    """Sum of the IPv6 pseudo-header; ``dst`` is the offset of the (final) destination address."""
    acc = np.uint64(0)
    for k in range(0, 16, 2):
        acc += (np.uint64(buf[l3 + 8 + k]) << np.uint64(8)) | np.uint64(buf[l3 + 9 + k])
        acc += (np.uint64(buf[dst + k]) << np.uint64(8)) | np.uint64(buf[dst + 1 + k])
    acc += np.uint64(proto)
    acc += np.uint64(l4_len & 0xFFFF) + np.uint64((l4_len >> 16) & 0xFFFF)
    return fold16(acc)


def raw_sum(data, start: int = 0, length: int | None = None) -> int:
    """RFC 1071 sum (folded, not inverted) of ``data[start:start+length]`` as an int.

    ``data`` is any bytes-like object or uint8 array. The span is read as
    big-endian 16-bit words from its first byte; an odd last byte is padded
    with zero.
    """
    buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    if length is None:
        length = buf.size - start
    if start < 0 or length < 0 or start + length > buf.size:
        raise ValueError("span outside the buffer")
    return int(sum_span(buf, u32_view(buf), start, length))


def checksum(data) -> int:
    """The Internet checksum (inverted sum) of ``data``, as stored in a header."""
    return (~raw_sum(data)) & 0xFFFF
