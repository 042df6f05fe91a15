"""Shared test set-up.

Bounds-checked runs (NUMBA_BOUNDSCHECK=1) must use their own Numba cache, or
they silently load unchecked machine code compiled by a normal run.
"""

import os
import shutil

import pytest

if os.environ.get("NUMBA_BOUNDSCHECK") == "1" and not os.environ.get("NUMBA_CACHE_DIR"):
    raise pytest.UsageError("NUMBA_BOUNDSCHECK=1 needs its own NUMBA_CACHE_DIR (see Makefile)")

BOUNDSCHECK = os.environ.get("NUMBA_BOUNDSCHECK") == "1"
HAVE_TSHARK = shutil.which("tshark") is not None
IS_ROOT = os.geteuid() == 0
CORPUS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus")


def require_tshark():
    if not HAVE_TSHARK:
        if os.environ.get("CI"):
            pytest.fail("tshark is required in CI (make sysdeps installs it)")
        pytest.skip("tshark not installed (make sysdeps installs it)")
