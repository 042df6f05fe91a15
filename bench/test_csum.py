"""Checksum engine benchmarks, each next to ``np.copyto`` of the same bytes in the same run.

Run (one core, nothing else of ours running)::

    taskset -c 1 python -m pytest bench/test_csum.py -p no:cacheprovider \
        --benchmark-columns=min,median,ops --benchmark-sort=name

Groups put the reference next to our figure: ``raw-<size>`` (a sum kernel over a
burst of distinct spans, ``raw_sum()`` per Python call, and ``np.copyto`` of the
same bytes), ``copysum-<size>``, ``<op>-<kind>-<size>B-x<burst>`` (verify with and
without the parser, fill; ``np.copyto`` of the burst's arena). ``extra_info``
carries ``ns_per_pkt`` (per frame / per span) and ``GBps`` (bytes summed or
copied per second), from the median. With ``--benchmark-disable`` (``make test``)
each runs once as a smoke test.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from bench._info import record
from offload import csum as C
from offload.batch import PacketBatch, u32_view
from offload.parse import parse_batch

L2_BYTES = 256 * 1024     # keep every working set in L2


@njit(cache=True, nogil=True)
def _sum_spans(buf, w32, stride, size, k):
    """Sum ``k`` distinct spans (a burst, data in cache); one Python call for all."""
    t = np.uint64(0)
    for i in range(k):
        t += C.sum_span(buf, w32, i * stride, size)
    return t


@njit(cache=True, nogil=True)
def _copy_sum_spans(src, sw, dst, dw, stride, size, k):
    t = np.uint64(0)
    for i in range(k):
        t += C.copy_sum(src, sw, i * stride, dst, dw, i * stride, size)
    return t


_info = record


def _arena(size, k, seed=1):
    stride = (size + 63) // 64 * 64
    buf = np.random.default_rng(seed).integers(0, 256, stride * k, dtype=np.uint8)
    return buf, stride


SIZES = [64, 1500, 9000, 65536]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("impl", ["kernel-burst", "raw_sum-call", "np.copyto"])
def test_raw_sum(benchmark, size, impl):
    k = max(1, L2_BYTES // size) if impl != "raw_sum-call" else 1
    buf, stride = _arena(size, k)
    w = u32_view(buf)
    benchmark.group = f"raw-{size}"
    if impl == "kernel-burst":
        _sum_spans(buf, w, stride, size, k)
        benchmark(_sum_spans, buf, w, stride, size, k)
    elif impl == "raw_sum-call":
        C.raw_sum(buf, 0, size)
        benchmark(C.raw_sum, buf, 0, size)
    else:
        # the same bytes: k spans of `size` (one call when contiguous)
        src = buf if stride == size else np.ascontiguousarray(buf.reshape(k, stride)[:, :size])
        dst = np.empty_like(src)
        benchmark(np.copyto, dst, src)
    _info(benchmark, k, k * size, impl=impl, size=size)


@pytest.mark.parametrize("size", [1448, 65536])
@pytest.mark.parametrize("impl", ["copy_sum", "np.copyto"])
def test_copy_sum(benchmark, size, impl):
    k = max(1, L2_BYTES // 2 // size)
    src, stride = _arena(size, k)
    dst = np.zeros_like(src)
    benchmark.group = f"copysum-{size}"
    if impl == "copy_sum":
        sw, dw = u32_view(src), u32_view(dst)
        _copy_sum_spans(src, sw, dst, dw, stride, size, k)
        benchmark(_copy_sum_spans, src, sw, dst, dw, stride, size, k)
    else:
        benchmark(np.copyto, dst, src)
    _info(benchmark, k, k * size, impl=impl, size=size)


def _tcp_frames(v6: bool, size: int, burst: int) -> PacketBatch:
    from scapy.all import IP, TCP, Ether, IPv6, Raw
    l3 = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="10.0.0.1", dst="10.0.0.2")
    frames = []
    for i in range(burst):
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3 / TCP(sport=1000 + i, dport=80, seq=i, flags="A")
        pay = max(0, size - len(p))
        frames.append(bytes(p / Raw(bytes((i + j) & 0xFF for j in range(pay)))))
    b = PacketBatch.from_frames(frames)
    return b


@pytest.mark.parametrize("burst", [32, 256])
@pytest.mark.parametrize("size", [64, 1500])
@pytest.mark.parametrize("kind", ["tcp4", "tcp6"])
@pytest.mark.parametrize("op", ["verify", "verify-parsed", "fill", "np.copyto"])
def test_batch(benchmark, op, kind, size, burst):
    b = _tcp_frames(kind == "tcp6", size, burst)
    benchmark.group = f"batch-{kind}-{size}B-x{burst}"
    detail = np.empty((burst, C.D_COLS), np.int32)
    if op == "verify":
        assert C.verify_batch(b, detail=detail).count == 0
        benchmark(C.verify_batch, b, True, detail)
    elif op == "verify-parsed":
        parse_batch(b)
        assert C.verify_batch(b, False, detail).count == 0
        benchmark(C.verify_batch, b, False, detail)
    elif op == "fill":
        C.fill_batch(b, detail=detail)
        benchmark(C.fill_batch, b, True, True, detail)
        assert C.verify_batch(b).count == 0
    else:
        dst = np.empty_like(b.buf)
        benchmark(np.copyto, dst, b.buf)
    _info(benchmark, burst, int(b.len.sum()), op=op, kind=kind, size=size, burst=burst)
