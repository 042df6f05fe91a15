"""Parser speed: ns per frame for common frames, next to ``np.copyto`` of the same bytes.

Run (one core, nothing else of ours running)::

    taskset -c 1 python -m pytest bench/test_parse.py -p no:cacheprovider \
        --benchmark-columns=min,median,ops --benchmark-sort=name --benchmark-group-by=group

Each group ``parse-<kind>-x<burst>`` holds three figures over one burst of frames
(distinct flows, data in cache):

* ``parse_batch``: the public call, per burst (Python overhead included);
* ``parse_frames``: the kernel called directly on the batch's arrays (numba's
  dispatch included, no ``PacketBatch`` attribute lookups);
* ``np.copyto``: a copy of the burst's arena, the reference measured in the same run.

Kinds: ``tcp4`` (Ethernet/IPv4/TCP with timestamps, 1514 B), ``ack4`` (66 B pure ACK),
``udp4`` (200 B), ``tcp6`` (IPv6/TCP, 1514 B), ``udp6`` (200 B), ``vlan4`` (one
802.1Q tag, IPv4/TCP, 1518 B) and ``mixed`` (the ``parse_mixed`` recipe of
``bench/workloads.py``: 1/4 each IPv4 full-size TCP, IPv4 ACK, IPv6 UDP, IPv6 TCP).

``extra_info['ns_per_pkt']`` is the median call time divided by the burst. The
difference ``parse_batch - parse_frames`` at burst 32 is the per-burst Python cost
of the public API. With ``--benchmark-disable`` each runs once as a smoke test.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench._info import record  # noqa: E402
from bench.workloads import MSS, tcp_frame, udp_frame  # noqa: E402
from offload import status as S  # noqa: E402
from offload.batch import PacketBatch  # noqa: E402
from offload.parse import parse_batch, parse_frames  # noqa: E402


def _payload(n, i):
    return bytes((i * 7 + j) & 0xFF for j in range(n))


def _vlan(frame: bytes, vid: int) -> bytes:
    return frame[:12] + bytes([0x81, 0x00, vid >> 8 & 0x0F, vid & 0xFF]) + frame[12:]


def _frame(kind: str, i: int) -> bytes:
    flow = i % 64
    if kind == "tcp4":
        return tcp_frame(_payload(MSS, i), flow=flow, seq=i, ip_id=i)
    if kind == "ack4":
        return tcp_frame(b"", flow=flow, seq=i, ip_id=i)
    if kind == "udp4":
        return udp_frame(_payload(158, i), flow=flow, ip_id=i)
    if kind == "tcp6":
        return tcp_frame(_payload(MSS - 20, i), v6=True, flow=flow, seq=i)
    if kind == "udp6":
        return udp_frame(_payload(138, i), v6=True, flow=flow)
    if kind == "vlan4":
        return _vlan(tcp_frame(_payload(MSS, i), flow=flow, seq=i, ip_id=i), 100 + flow)
    if kind == "mixed":
        k = i % 4
        if k == 0:
            return tcp_frame(_payload(MSS, i), flow=flow, seq=i, ip_id=i)
        if k == 1:
            return tcp_frame(b"", flow=flow, seq=i, ip_id=i)
        if k == 2:
            return udp_frame(_payload(100 + i % 400, i), v6=True, flow=flow)
        return tcp_frame(_payload(512, i), v6=True, flow=flow, seq=i)
    raise ValueError(kind)


KINDS = ["tcp4", "ack4", "udp4", "tcp6", "udp6", "vlan4", "mixed"]


_info = record


@pytest.mark.parametrize("burst", [32, 256])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", ["parse_batch", "parse_frames", "np.copyto"])
def test_parse(benchmark, impl, kind, burst):
    b = PacketBatch.from_frames([_frame(kind, i) for i in range(burst)])
    benchmark.group = f"parse-{kind}-x{burst}"
    # every frame must parse, or a broken path would be timed
    assert parse_batch(b) == burst
    assert (b.meta["status"] == S.OK).all() and (b.meta["l4_off"] > 0).all()
    if impl == "parse_batch":
        benchmark(parse_batch, b)
    elif impl == "parse_frames":
        benchmark(parse_frames, b.buf, b.off, b.len, b.meta)
    else:
        dst = np.empty_like(b.buf)
        benchmark(np.copyto, dst, b.buf)
    _info(benchmark, burst, int(b.len.sum()), impl=impl, kind=kind, burst=burst)
