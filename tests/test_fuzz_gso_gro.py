"""Fuzz targets (hostile input) for GSO and GRO (burst and streaming): valid super-packets
and segment trains from the shared strategies, then damaged ones. Invariants on every case
(fuzz/engine_check.py): every input frame accounted for, payload bytes conserved in
order, outputs parse and carry valid checksums in full mode, nothing written past an
output arena, no exception."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies as FS
from offload import PacketBatch
from offload.batch import LINK_ETHERNET

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fuzz import engine_check  # noqa: E402

EXAMPLES = int(os.environ.get("OFFLOAD_FUZZ_EXAMPLES", "60")) // 2 or 1
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
pytestmark = pytest.mark.hostile

supers = FS.frames(links=(LINK_ETHERNET,), l4=("tcp", "udp"), frag=False, max_payload=9000,
                   jumbo=False, pad=False)


@st.composite
def gso_burst(draw):
    frames, hdrs = [], []
    for _ in range(draw(st.integers(1, 6))):
        b = draw(supers)
        f = b.frame
        if draw(st.integers(0, 3)) == 0:
            f, _what = FS.mutate_once(draw, f, LINK_ETHERNET)
        e = None
        try:
            e = FS.expected_layout(b.frame, LINK_ETHERNET)
        except Exception:
            pass
        l4 = e["l4_off"] if e else 34
        v6 = bool(e and e["l3_proto"] == 0x86DD)
        tcp = bool(e and e["l4_proto"] == 6)
        gt = (4 if v6 else 1) if tcp else 5
        h = [1, gt, 0, draw(st.sampled_from([1, 8, 100, 536, 1448, 1500, 9000])), l4, 16 if tcp else 6]
        if draw(st.integers(0, 4)) == 0:
            h = list(draw(FS.vnet_headers()))
        frames.append(f)
        hdrs.append(tuple(h))
    return frames, hdrs


@FUZZ
@given(gso_burst(), st.sampled_from(["vnet", "mss", "mtu"]), st.sampled_from(["full", "partial"]),
       st.integers(1, 3000))
def test_fuzz_gso_accounts_for_every_frame_and_byte(case, how, csum, size):
    frames, hdrs = case
    b = PacketBatch.from_frames(frames, vnet=hdrs)
    kw = {"csum": csum}
    if how == "mss":
        kw["mss"] = size
    elif how == "mtu":
        kw["mtu"] = max(size, 68)
    v = engine_check.gso_violations(b, **kw)
    assert not v, v


@st.composite
def gro_bursts(draw):
    """Trains of one or more flows interleaved, some frames damaged."""
    from scapy.all import IP, TCP, UDP, Ether, Raw, raw
    from scapy.layers.inet6 import IPv6
    flows = []
    for f in range(draw(st.integers(1, 3))):
        v6 = draw(st.booleans())
        udp = draw(st.integers(0, 3)) == 0
        mss = draw(st.sampled_from([10, 100, 536, 1448]))
        k = draw(st.integers(1, 12))
        seq = draw(st.integers(0, 2**32 - 1))
        ipid = draw(st.integers(0, 0xFFFF))
        fr = []
        for i in range(k):
            size = mss if i + 1 < k else draw(st.integers(0, mss))
            l3 = IPv6(src="2001:db8::1", dst="2001:db8::%x" % (f + 2)) if v6 else \
                IP(src="10.0.0.1", dst="10.1.0.%d" % (f + 2), id=(ipid + i) & 0xFFFF, flags="DF")
            l4 = UDP(sport=1000 + f, dport=53000) if udp else \
                TCP(sport=1000 + f, dport=80, seq=(seq + i * mss) & 0xFFFFFFFF, ack=7,
                    flags=draw(st.sampled_from(["A", "A", "A", "PA", "FA", "S"])))
            fr.append(raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3 / l4 / Raw(bytes((i * 31 + j) & 0xFF for j in range(size)))))
        flows.append(fr)
    out = []
    while any(flows):
        f = draw(st.sampled_from([x for x in flows if x]))
        fr = f.pop(0)
        if draw(st.integers(0, 7)) == 0:
            fr, _w = FS.mutate_once(draw, fr, LINK_ETHERNET)
        out.append(fr)
    cut = sorted(draw(st.lists(st.integers(0, len(out)), max_size=3)))
    bursts, last = [], 0
    for c in cut + [len(out)]:
        if c > last:
            bursts.append(out[last:c])
            last = c
    return bursts or [out]


@FUZZ
@given(gro_bursts(), st.sampled_from(["partial", "full"]), st.sampled_from([65536, 100000]))
def test_fuzz_gro_burst_conserves_payload(bursts, csum, max_size):
    v = engine_check.gro_violations([PacketBatch.from_frames(b) for b in bursts], csum=csum, max_size=max_size)
    assert not v, v


@FUZZ
@given(gro_bursts(), st.sampled_from(["partial", "full"]), st.integers(1, 4), st.integers(4, 16))
def test_fuzz_gro_streaming_conserves_payload_within_limits(bursts, csum, flows, held):
    v = engine_check.gro_violations([PacketBatch.from_frames(b) for b in bursts], streaming=True, csum=csum,
                                    max_flows=flows, max_held=held)
    assert not v, v


def test_gro_frame_after_a_bad_checksum_is_not_lost_no_room():
    """Regression (gro_no_room_frame_lost, found by the fuzz campaign, fixed in GRO 6235160): three segments of one IPv6 TCP flow, the middle
    one with a wrong checksum: the third came back GRO_NO_ROOM and was never emitted."""
    from scapy.all import TCP, Ether, Raw, raw
    from scapy.layers.inet6 import IPv6
    from offload import gro
    fr = [bytearray(raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                        / IPv6(src="2001:db8::1", dst="2001:db8::2")
                        / TCP(sport=1038, dport=80, seq=1000 + 1448 * i, ack=5, flags="A") / Raw(bytes(1448))))
          for i in range(3)]
    fr[1][-1] ^= 1
    assert not engine_check.gro_violations([PacketBatch.from_frames([bytes(f) for f in fr])], csum="full")


def test_gro_streaming_eviction_does_not_lose_frames_no_room():
    """Regression (gro_streaming_no_room_frame_lost, found by the fuzz campaign, fixed by GRO 6235160): the campaign's case (seed 9976), 20 frames
    of one damaged train pushed as bursts of 9 and 11: counters say 3 frames GRO_NO_ROOM and
    only 17 come out."""
    from offload import pcap
    frames = pcap.read(os.path.join(os.path.dirname(__file__), "data", "gro_streaming_no_room.pcap")).to_frames()
    bursts = [PacketBatch.from_frames(frames[:9]), PacketBatch.from_frames(frames[9:])]
    assert not engine_check.gro_violations(bursts, streaming=True, csum="partial", max_flows=1, max_held=10)
