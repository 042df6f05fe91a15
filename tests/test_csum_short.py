"""csum.sum_short (64-bit unaligned loads, for headers) equals sum_span at every alignment
and length, and a plain-Python RFC 1071 sum."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from gro_trains import sum16
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
    return sum16(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=130), st.integers(0, 15))
def test_sum_short_matches(data, start):
    b = np.frombuffer(bytes(start) + data + bytes(3), np.uint8).copy()
    assert _short(b, start, len(data)) == _span(b, u32_view(b), start, len(data)) == _ref(data)


def test_load64_little_endian_any_alignment():
    b = np.arange(32, dtype=np.uint8)
    for i in range(24):
        assert _ld(b, i) == int.from_bytes(bytes(range(i, i + 8)), "little")


def _ref_fast(data: bytes) -> int:
    """_ref with numpy (big spans): the same RFC 1071 sum."""
    a = np.frombuffer(data + b"\0" * (len(data) & 1), np.uint8).astype(np.uint64)
    s = int((a[0::2] << np.uint64(8)).sum() + a[1::2].sum())
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_sum_span_vector_edges():
    """sum_span's vector sum (64-byte blocks, masked first/last block, pmaddwd lanes on
    AVX-512BW hosts, aligned blocks from 2 KB) at the lengths where its paths change,
    every start mod 4 and an odd/even cache-line offset, on data that drives the lane
    arithmetic to its extremes (0xFF.., 0x8000 words, 0x0000 words)."""
    rng = np.random.default_rng(20261126)
    size = 70000
    pats = {"rand": rng.integers(0, 256, size, dtype=np.uint8), "ff": np.full(size, 0xFF, np.uint8),
            "8000": np.tile(np.array([0x80, 0x00], np.uint8), size // 2), "zero": np.zeros(size, np.uint8)}
    lengths = sorted({*range(0, 130), *range(190, 260, 3), *range(2040, 2060), 4095, 4096, 65535, 65536, 65537})
    for name, buf in pats.items():
        w = u32_view(buf)
        for start in (0, 1, 2, 3, 33, 64, 127):
            for n in lengths:
                if start + n > size:
                    continue
                got = _span(buf, w, start, n)
                assert got == _ref_fast(buf[start:start + n].tobytes()), (name, start, n)
