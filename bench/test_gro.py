"""GRO speed: in-order TCP/IPv4 segments with 1448-byte payloads (timestamps option), bursts
of 32 and 256, 1 flow and 1024 interleaved flows; every input's IPv4 and TCP checksums
verified, flat output with full checksums written. Reported per input frame, next to
``np.copyto`` of the same bytes (burst by burst) measured in the same session.

Two ways: ``Coalescer`` (burst: merge within the burst, flush all -- with 1024 interleaved
flows a burst holds no two segments of one flow, so this measures lookups and copies) and
``GroTable`` (streaming: aggregates persist across bursts, so 1024 flows merge as well as 1).

Goal (issue 5): <= 30 ns per frame, 1024 flows within 1.5x of 1 flow.

    make bench  or  python -m pytest bench/test_gro.py --benchmark-only \
        --benchmark-columns=median,ops --benchmark-sort=name
Each benchmark's ``extra_info['ns_per_frame']`` is the median divided by the frame count.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.workloads import MSS, tcp_frame
from offload import gro
from offload.batch import PacketBatch

TOTAL = 4096          # 6 MB of frames, the same bytes for 1 flow and for 1024 flows x 4
PAY = bytes((k * 13) & 0xFF for k in range(MSS))


def _frames(flows: int) -> list[bytes]:
    per = max(TOTAL // flows, 4)
    return [tcp_frame(PAY, flow=fl, seq=1000 + k * MSS, ip_id=k) for k in range(per) for fl in range(flows)]


_CACHE: dict = {}


def _batch(flows: int) -> PacketBatch:
    if flows not in _CACHE:
        _CACHE[flows] = PacketBatch.from_frames(_frames(flows), align=64)
    return _CACHE[flows]


def _bursts(b: PacketBatch, burst: int) -> list[PacketBatch]:
    return [PacketBatch(b.buf, b.off[k:k + burst], b.len[k:k + burst]) for k in range(0, len(b), burst)]


def _finish(benchmark, n, **info):
    benchmark.extra_info.update(info, frames=n)
    st = getattr(benchmark, "stats", None)
    if st is not None and getattr(st, "stats", None) is not None:
        benchmark.extra_info["ns_per_frame"] = st.stats.median * 1e9 / n


@pytest.mark.parametrize("burst", [32, 256])
@pytest.mark.parametrize("flows", [1, 1024])
def test_memcpy_reference(benchmark, flows, burst):
    """np.copyto of the same bytes, one call per burst (the frames are contiguous)."""
    b = _batch(flows)
    spans = [(int(x.off[0]), int(x.off[-1] + x.len[-1])) for x in _bursts(b, burst)]
    dst = np.empty_like(b.buf)

    def run():
        for s, e in spans:
            np.copyto(dst[s:e], b.buf[s:e])
    benchmark.group = f"gro f{flows} b{burst}"
    benchmark(run)
    _finish(benchmark, len(b), impl="np.copyto")


@pytest.mark.parametrize("burst", [32, 256])
@pytest.mark.parametrize("flows", [1, 1024])
def test_coalesce_burst(benchmark, flows, burst):
    b = _batch(flows)
    bursts = _bursts(b, burst)
    c = gro.Coalescer(max_burst=burst, csum="full", verify=True)
    nout = sum(len(c.run(x)) for x in bursts)
    assert c.counters["status"].get("GRO_BAD_CSUM", 0) == 0
    if flows == 1:
        assert nout < len(b) // 20

    def run():
        for x in bursts:
            c.run(x)
    benchmark.group = f"gro f{flows} b{burst}"
    benchmark(run)
    _finish(benchmark, len(b), impl="Coalescer", frames_out=nout)


@pytest.mark.parametrize("burst", [32, 256])
@pytest.mark.parametrize("flows", [1, 1024])
def test_table_stream(benchmark, flows, burst):
    b = _batch(flows)
    bursts = _bursts(b, burst)
    t = gro.GroTable(max_flows=max(flows, 64), max_held=len(b) + 64, csum="full", verify=True)

    def run():
        n = 0
        for x in bursts:
            n += len(t.push(x))
        return n + len(t.flush())
    nout = run()
    assert t.counters["status"].get("GRO_BAD_CSUM", 0) == 0
    assert nout <= len(b) // (20 if flows == 1 else 4), nout
    benchmark.group = f"gro f{flows} b{burst}"
    benchmark(run)
    _finish(benchmark, len(b), impl="GroTable", frames_out=nout)
