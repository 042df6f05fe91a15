"""copy_sum64 (the fused copy + checksum GSO uses per segment) against scapy's checksum."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scapy.utils import checksum as scapy_checksum

from offload.csum import copy_sum64, u64_view


@njit(cache=True)
def _copy_sum64(src, s64, s, dst, d64, d, n):
    return copy_sum64(src, s64, s, dst, d64, d, n)


@pytest.mark.hostile
@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=0, max_size=3000), s=st.integers(0, 64), d=st.integers(0, 64),
       same_mod8=st.booleans(), words=st.booleans())
def test_copy_sum64_copies_and_sums_like_scapy(data, s, d, same_mod8, words):
    if same_mod8:
        d = d - (d & 7) + (s & 7)
    src = np.zeros(len(data) + 80, np.uint8)
    src[s:s + len(data)] = np.frombuffer(data, np.uint8)
    dst = np.zeros(len(data) + 80, np.uint8)
    sw = u64_view(src) if words else np.empty(0, np.uint64)
    got = int(_copy_sum64(src, sw, s, dst, u64_view(dst), d, len(data)))
    assert dst[d:d + len(data)].tobytes() == data
    # scapy's checksum is the inverted sum; 0 and 0xFFFF are the same one's-complement value
    assert (~got & 0xFFFF) == scapy_checksum(data) or (got in (0, 0xFFFF) and scapy_checksum(data) in (0, 0xFFFF))
