"""FNV-1a 64, the hash both the Python side and the C peers print of the frames they load."""

import numpy as np
from numba import njit

_PRIME = np.uint64(0x100000001B3)


@njit(cache=True, nogil=True)
def fnv1a64_bytes(data, h):
    """Continue the FNV-1a 64 hash ``h`` (uint64) over ``data`` (uint8 array)."""
    h = np.uint64(h)
    for i in range(data.shape[0]):
        h = (h ^ np.uint64(data[i])) * _PRIME
    return h
