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


# --- kernel oracle (tests/kernel_oracle.py): one namespace pair per session ---------
@pytest.fixture(scope="session")
def kernel_oracle():
    """The Linux kernel as GSO/GRO oracle (a KernelOracle); skips when not root outside CI,
    fails in CI. Namespaces are removed at the end of the session."""
    import kernel_oracle as _ko

    oracle = _ko.oracle_or_skip()
    yield oracle
    oracle.close()
