"""What the engine benchmark suites record next to pytest-benchmark's timings."""

from __future__ import annotations


def record(benchmark, units: int, nbytes: int, **extra) -> None:
    """Store ``units`` (packets per call), ``nbytes`` (bytes per call) and ``extra`` in
    ``benchmark.extra_info``; once the benchmark has run, also ``ns_per_pkt`` and ``GBps``
    from its median (the runner and the report read them)."""
    benchmark.extra_info.update(units=units, bytes=nbytes, **extra)
    st = getattr(benchmark, "stats", None)
    if st is not None and getattr(st, "stats", None) is not None:
        med = st.stats.median
        benchmark.extra_info["ns_per_pkt"] = round(med / units * 1e9, 2)
        benchmark.extra_info["GBps"] = round(nbytes / med / 1e9, 1)
