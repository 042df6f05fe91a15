"""Fuzz target (hostile input) for the pcap/pcapng readers: damaged headers, record and
block lengths that lie, loops, truncation at every byte. Only PcapError may escape; the
frames before the damage are delivered unchanged; errors name an offset in the file."""

from __future__ import annotations

import os
import struct
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies as FS
from offload import PacketBatch, pcap

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fuzz import pcap_check  # noqa: E402

EXAMPLES = int(os.environ.get("OFFLOAD_FUZZ_EXAMPLES", "60")) // 2 or 1
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
pytestmark = pytest.mark.hostile


@st.composite
def capture_files(draw):
    bs = draw(st.lists(FS.frames(jumbo=False, max_payload=120, ext=False), max_size=5))
    fmt = draw(st.sampled_from(["pcap", "pcapng"]))
    ts = np.array(draw(st.lists(st.integers(0, (2**32 - 1) * 10**9), min_size=len(bs), max_size=len(bs))), np.int64)
    if fmt == "pcap":
        link = bs[0].link if bs else 1
        frames = [b.frame for b in bs if b.link == link]
        b = PacketBatch.from_frames(frames, link=link, ts=ts[:len(frames)])
        return pcap.to_bytes(b, format="pcap", ts_resolution=draw(st.sampled_from(["us", "ns"])),
                             byte_order=draw(st.sampled_from("<>")), link=link)
    b = PacketBatch.from_frames([x.frame for x in bs], ts=ts)
    if bs:
        b.meta["link"] = [x.link for x in bs]
    return pcap.to_bytes(b, format="pcapng", byte_order=draw(st.sampled_from("<>")))


@st.composite
def damaged(draw):
    f = draw(capture_files())
    mb = bytearray(f)
    kind = draw(st.sampled_from(["cut", "byte", "u32", "insert", "delete"]))
    p = draw(st.integers(0, len(f)))
    if kind == "cut":
        return f, bytes(f[:p])
    if kind == "insert":
        return f, bytes(f[:p]) + draw(st.binary(min_size=1, max_size=12)) + bytes(f[p:])
    if kind == "delete":
        return f, bytes(f[:p]) + bytes(f[p + draw(st.integers(1, 12)):])
    if p >= len(f):
        return f, f
    if kind == "byte":
        mb[p] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF])) if draw(st.booleans()) else mb[p] ^ 0xFF
        return f, bytes(mb)
    p = p & ~3
    if p + 4 <= len(mb):
        # lengths that lie: 0, small, unaligned, huge (a 4 GB claim), the block's own offset
        v = draw(st.sampled_from([0, 4, 8, 12, 13, 28, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFF0, len(f), p]))
        struct.pack_into(draw(st.sampled_from(["<I", ">I"])), mb, p, v)
    return f, bytes(mb)


@FUZZ
@given(damaged())
def test_fuzz_damaged_captures_keep_the_frames_before_the_damage(case):
    orig, mut = case
    assert not pcap_check.violations(orig, mut)
    # the one-shot reader delivers the same frames as the batched walk
    a, ea = pcap_check.read_frames(mut, n=0, max_frame=pcap_check.MAX_FRAME)
    b, eb = pcap_check.read_frames(mut, n=3, max_frame=pcap_check.MAX_FRAME)
    assert (ea is None) == (eb is None)
    na, nb = (0 if a is None else len(a)), (0 if b is None else len(b))
    assert na == nb and (na == 0 or (np.array_equal(a.off, b.off) and np.array_equal(a.len, b.len)))
    if ea is not None:
        assert ea.offset == eb.offset


def test_fuzz_truncation_at_every_byte_of_a_small_capture():
    b = PacketBatch.from_frames([bytes(range(60)), bytes(100), bytes(range(7))], ts=np.arange(3, dtype=np.int64))
    for fmt in ("pcap", "pcapng"):
        f = pcap.to_bytes(b, format=fmt, link=1) if fmt == "pcap" else pcap.to_bytes(b, format=fmt)
        ref, _ = pcap_check.read_frames(f)
        ends = pcap_check.boundaries(ref, fmt, len(f))
        for k in range(len(f) + 1):
            got, err = pcap_check.read_frames(f[:k])
            have = 0 if got is None else len(got)
            assert have >= int(np.count_nonzero(ends <= k))
            assert not pcap_check.violations(f, f[:k])
            if fmt == "pcap":
                # a cut exactly between records is a shorter valid file; anywhere else, an error
                record_ends = {24} | set((ref.off + ref.len).tolist())
                assert (err is None) == (k in record_ends), (k, err)
                if err is not None:
                    assert err.offset <= k


def test_fuzz_corpus_mutants_campaign_slice():
    from fuzz import campaign
    ok, done, _s, stats = campaign.run("pcap", int(os.environ.get("OFFLOAD_FUZZ_PCAP_CASES", "2000")),
                                       1024, 31, None, quiet=True)
    assert ok and stats["error"] and stats["clean"]
