"""GSO speed: 64 KB super-packets cut into flat, checksummed segments, in bursts.

For each case two benchmarks share a group: ``offload.gso.segment`` on a burst of
identical super-packets (virtio header per frame, full checksums, arena reused) and
``np.copyto`` of the same input bytes, measured in the same session so the ratio
means something on a shared, noisy machine. ``extra_info`` holds the burst size and
the segment count; ns per super-packet = call time / ``supers``, ns per segment =
call time / ``segments``.

Cases (MSS so that segments fill a 1500-byte MTU):

* ``tcp4_64k``: TCP/IPv4 with timestamps, 45 x 1448 = 65160 payload bytes (the issue's
  goal: <= 1.2 µs per super-packet on one core; DPDK ~3.6 µs, C copy-then-sum ~2.0 µs);
* ``tcp6_64k``: TCP/IPv6 with timestamps, 45 x 1428;
* ``uso4_64k``: UDP/IPv4 USO, 44 x 1472;
* ``tcp4_3seg``: TCP/IPv4 with timestamps, 3 x 1448: little copying, so the fixed cost
  of a call (dispatch, the Python around the kernel) shows.

Run: ``python -m pytest bench/test_gso.py --benchmark-only --benchmark-group-by=group``
(``OFFLOAD_GSO_BURST`` changes the burst, default 16 super-packets = ~1 MB in, ~1 MB out).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from gso_frames import super_packet  # noqa: E402

from offload import gso  # noqa: E402
from offload.batch import PacketBatch  # noqa: E402

BURST = int(os.environ.get("OFFLOAD_GSO_BURST", "16"))

CASES = {
    "tcp4_64k": (dict(ts=True), 1448, 45),
    "tcp6_64k": (dict(ts=True, v6=True), 1428, 45),
    "uso4_64k": (dict(udp=True), 1472, 44),
    "tcp4_3seg": (dict(ts=True), 1448, 3),
}


def _burst(name):
    kw, mss, nseg = CASES[name]
    pay = np.random.default_rng(0).integers(0, 256, mss * nseg, dtype=np.uint8).tobytes()
    f, v = super_packet(pay, mss, **kw)
    return PacketBatch.from_frames([f] * BURST, vnet=[v] * BURST), nseg


@pytest.mark.parametrize("name", list(CASES))
def test_gso_segment(benchmark, name):
    b, nseg = _burst(name)
    first = gso.segment(b)
    assert first.counters["segments"] == nseg * BURST and first.counters["refused"] == 0
    arena = first.arena
    expect = first.out.to_frames()
    benchmark.group = f"gso {name} burst {BURST}"
    benchmark.extra_info.update(supers=BURST, segments=nseg * BURST, bytes=int(b.len.sum()), impl="offload.gso")
    benchmark(gso.segment, b, arena=arena)
    assert gso.segment(b, arena=arena).out.to_frames() == expect


@pytest.mark.parametrize("name", list(CASES))
def test_copyto_reference(benchmark, name):
    b, nseg = _burst(name)
    src = b.buf
    dst = np.empty_like(src)
    benchmark.group = f"gso {name} burst {BURST}"
    benchmark.extra_info.update(supers=BURST, segments=nseg * BURST, bytes=int(b.len.sum()), impl="np.copyto")
    benchmark(np.copyto, dst, src)
