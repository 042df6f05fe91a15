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


def corpus_dir(sub: str = "tcpdump") -> str:
    """The shared capture corpus directory ``<corpus>/<sub>``.

    Looked up in order: ``$OFFLOAD_CORPUS``; ``shared/corpus`` beside the clone
    (CI: the clone's parent holds ``shared/``, which is CORPUS_DIR); and
    ``/work/shared/corpus`` (development worktrees live deeper than the clone).
    Absent: the test fails in CI (a missing corpus must not pass silently) and
    is skipped with the reason elsewhere.
    """
    tried = [os.environ.get("OFFLOAD_CORPUS"), CORPUS_DIR, "/work/shared/corpus"]
    for base in tried:
        if base and os.path.isdir(os.path.join(base, sub)):
            return os.path.realpath(os.path.join(base, sub))
    msg = f"capture corpus '{sub}' not found (tried {[t for t in tried if t]}); set OFFLOAD_CORPUS"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


# --- hypothesis profiles ----------------------------------------------------------
# CI runs are derandomized so a red run is reproducible and a green one is not luck;
# `make fuzz` (OFFLOAD_FUZZ_EXAMPLES) and local runs explore new random cases.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def require_netns():
    """Skip a kernel test where namespaces/veth are unavailable; fail in CI (``CI`` set)."""
    from offload import netns
    ok, why = netns.available()
    if not ok:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"kernel oracle required in CI: {why}")
        pytest.skip(f"kernel oracle unavailable: {why}")


# --- scapy must never resolve addresses on the host's network -----------------------
# A bare Ether() makes scapy ARP for the IP destination on the default interface, i.e.
# send traffic outside the namespaces our tests create. Building frames must be pure:
# refuse resolution outright so a missing MAC fails loudly instead of reaching out.
def _no_scapy_resolution():
    try:
        from scapy.layers import l2
    except Exception:  # scapy is a test dependency; without it nothing builds frames
        return

    import ipaddress

    def _guard(orig):
        def resolve(ip, *a, **k):
            # loopback, multicast and broadcast resolve without sending anything
            try:
                addr = ipaddress.ip_address(str(ip))
                local = addr.is_loopback or addr.is_multicast or str(ip) == "255.255.255.255"
            except ValueError:
                local = False
            if local:
                return orig(ip, *a, **k)
            raise AssertionError(f"scapy tried to resolve the MAC of {ip} on the host network "
                                 "(a bare Ether()?): give src/dst explicitly")
        return resolve

    l2.getmacbyip = _guard(l2.getmacbyip)
    try:
        from scapy.layers import inet6
        inet6.getmacbyip6 = _guard(inet6.getmacbyip6)
    except Exception:
        pass


_no_scapy_resolution()
