"""Our side of the peer comparison, on the exact frames the C peers read.

Each workload of :mod:`bench.workloads` gets two benchmarks in one group: our
engine (``impl=offload``) and ``np.copyto`` of the same bytes (``impl=memcpy-numpy``),
so every ratio has a reference measured in the same session. ``extra_info`` carries
what the runner (``offload bench``) needs to turn a call time into ns per packet:
``units`` (frames processed per call), ``unit``, ``workload``, ``op``, ``size``,
``fnv`` (hash of the frames loaded, compared with the peers') and ``notes``.
"""

from __future__ import annotations

import os

import pytest

from bench import ours, workloads

WORKDIR = workloads.default_workdir()


def _manifest():
    path = os.path.join(WORKDIR, "manifest.json")
    if not os.path.exists(path) or os.environ.get("OFFLOAD_BENCH_REGEN") == "1":
        return workloads.materialize(WORKDIR)
    ws = workloads.load_manifest(WORKDIR)
    if not all(os.path.exists(w.file) for w in ws):
        return workloads.materialize(WORKDIR)
    return ws


WORKLOADS = _manifest()
_FRAMES: dict[str, list[bytes]] = {}


def _frames(w):
    if w.file not in _FRAMES:
        _FRAMES[w.file] = workloads.read_pcap(w.file)
    return _FRAMES[w.file]


def _info(benchmark, w, impl, notes, fnv, units=None, unit="pkt", **extra):
    benchmark.group = w.name
    benchmark.extra_info.update(workload=w.name, op=w.op, size=w.size, burst=w.burst, impl=impl,
                                unit=unit, units=units or w.n_frames, fnv=fnv, notes=notes, **extra)


@pytest.mark.parametrize("w", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_ours(benchmark, w):
    frames = _frames(w)
    fnv = workloads.fnv1a64(frames)
    assert fnv == w.fnv, "frames differ from the manifest: regenerate with OFFLOAD_BENCH_REGEN=1"
    try:
        run, notes = ours.prepare(w, frames)
    except ours.Unavailable as e:
        pytest.skip(str(e))
    _info(benchmark, w, "offload", notes, fnv, **getattr(run, "extra", {}))
    benchmark(run)


VARIANTS = [(w, impl) for w in WORKLOADS for impl, _ in ours.VARIANTS.get(w.op, [])]


@pytest.mark.parametrize("w,impl", VARIANTS, ids=[f"{w.name}-{impl}" for w, impl in VARIANTS])
def test_ours_variant(benchmark, w, impl):
    """Other forms of ours (GRO's streaming table, UFO) as their own rows."""
    frames = _frames(w)
    try:
        run, notes = ours.prepare_variant(w, impl, frames)
    except ours.Unavailable as e:
        pytest.skip(str(e))
    _info(benchmark, w, impl, notes, w.fnv, **getattr(run, "extra", {}))
    benchmark(run)


@pytest.mark.parametrize("w", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_memcpy(benchmark, w):
    frames = _frames(w)
    run, notes = ours.memcpy_ref(frames)
    _info(benchmark, w, "memcpy-numpy", notes, w.fnv)
    benchmark(run)
