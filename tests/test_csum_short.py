"""csum.sum_short (64-bit unaligned loads, for headers) equals sum_span at every alignment
and length, and a plain-Python RFC 1071 sum."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from offload.csum import load64, sum_short, sum_span
from offload.batch import u32_view


@njit(cache=True)
def _short(b, s, n):
    return sum_short(b, s, n)


@njit(cache=True)
def _span(b, w, s, n):
    return sum_span(b, w, s, n)


@njit(cache=True)
def _ld(b, i):
    return load64(b, i)


def _ref(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=130), st.integers(0, 15))
def test_sum_short_matches(data, start):
    b = np.frombuffer(bytes(start) + data + bytes(3), np.uint8).copy()
    assert _short(b, start, len(data)) == _span(b, u32_view(b), start, len(data)) == _ref(data)


def test_load64_little_endian_any_alignment():
    b = np.arange(32, dtype=np.uint8)
    for i in range(24):
        assert _ld(b, i) == int.from_bytes(bytes(range(i, i + 8)), "little")
