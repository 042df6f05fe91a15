"""Proves that bounds-checked runs really check: an out-of-range index must raise."""

import numpy as np
import pytest
from numba import njit

from conftest import BOUNDSCHECK


@njit(cache=True)
def _read(a, i):
    return a[i]


@pytest.mark.hostile
def test_bounds_checks_are_live_when_requested():
    a = np.zeros(4, np.uint8)
    if not BOUNDSCHECK:
        pytest.skip("normal run: bounds checks off by design (make test re-runs this with them on)")
    with pytest.raises(IndexError):
        _read(a, 10)
