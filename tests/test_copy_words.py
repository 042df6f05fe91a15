"""copy_words / copy_sum_words (unaligned 64-bit word copy, fused with the checksum)
against numpy's copy and scapy's checksum, at every length and alignment, and proof that
nothing outside the destination span is written."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scapy.utils import checksum as scapy_checksum

from offload.csum import copy_sum_words, copy_words


@njit(cache=True)
def _copy_sum_words(src, s, dst, d, n):
    return copy_sum_words(src, s, dst, d, n)


@njit(cache=True)
def _copy_words(src, s, dst, d, n):
    copy_words(src, s, dst, d, n)


def _same_sum(got, data):
    # scapy's checksum is the inverted sum; 0 and 0xFFFF are the same one's-complement value
    want = scapy_checksum(data)
    return (~got & 0xFFFF) == want or (got in (0, 0xFFFF) and want in (0, 0xFFFF))


@pytest.mark.hostile
@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=0, max_size=3000), s=st.integers(0, 64), d=st.integers(0, 64),
       fused=st.booleans())
def test_copy_words_copy_sum_words_like_numpy_and_scapy(data, s, d, fused):
    n = len(data)
    src = np.full(n + 80, 0xA5, np.uint8)
    src[s:s + n] = np.frombuffer(data, np.uint8)
    # the spans end exactly at the end of their buffers: a read or write past them would
    # be caught by the bounds-checked run (make test's hostile pass)
    src = src[:s + n].copy()
    dst = np.full(d + n, 0x5A, np.uint8)
    if fused:
        got = int(_copy_sum_words(src, s, dst, d, n))
        assert _same_sum(got, data)
    else:
        _copy_words(src, s, dst, d, n)
    assert dst[d:].tobytes() == data
    assert (dst[:d] == 0x5A).all()


@pytest.mark.parametrize("n", list(range(0, 40)) + [1447, 1448, 1449, 1472, 65160])
@pytest.mark.parametrize("s,d", [(0, 0), (1, 6), (7, 2), (3, 3)])
def test_copy_sum_words_every_tail_length(n, s, d):
    rng = np.random.default_rng(n * 64 + s * 8 + d)
    src = rng.integers(0, 256, s + n + 9, dtype=np.uint8)
    dst = np.full(d + n + 9, 0x5A, np.uint8)
    got = int(_copy_sum_words(src, s, dst, d, n))
    data = src[s:s + n].tobytes()
    assert dst[d:d + n].tobytes() == data
    assert (dst[:d] == 0x5A).all() and (dst[d + n:] == 0x5A).all()
    assert _same_sum(got, data)


@pytest.mark.hostile
def test_bounds_checked_runs_check_the_word_copies():
    from conftest import BOUNDSCHECK
    if not BOUNDSCHECK:
        pytest.skip("normal run: raw pointer access by design (make test re-runs this with checks on)")
    src = np.zeros(16, np.uint8)
    dst = np.zeros(16, np.uint8)
    with pytest.raises(IndexError):
        _copy_sum_words(src, 4, dst, 0, 16)      # reads src[16:20]
    with pytest.raises(IndexError):
        _copy_words(src, 0, dst, 4, 16)          # writes dst[16:20]
