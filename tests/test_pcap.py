"""pcap / pcapng reading and writing.

Oracles: scapy's readers and writers, tshark/editcap (read what we write, write
what we read), hand-built blocks (SPB, OPB, several sections, both byte
orders), and a cut at every byte of a file (the frames before the cut survive,
the error names the damaged record's offset).
"""

import io
import os
import struct
import subprocess
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offload import pcap
from offload.batch import PacketBatch
from offload.pcap import PcapError

import conftest

LINKS = [1, 101, 113, 276, 228]


def make_batch(frames, links=None, ts=None, wire=None, iface=None):
    b = PacketBatch.from_frames(frames)
    if links is not None:
        b.meta["link"][:] = links
    b.ts = None if ts is None else np.asarray(ts, np.int64)
    b.wire_len = None if wire is None else np.asarray(wire, np.int64)
    b.iface = None if iface is None else np.asarray(iface, np.int32)
    return b


def same(a, b, iface=True):
    assert a.to_frames() == b.to_frames()
    za = np.zeros(len(a), np.int64)
    assert np.array_equal(a.ts if a.ts is not None else za, b.ts if b.ts is not None else za)
    assert np.array_equal(a.meta["link"], b.meta["link"])
    wa = a.wire_len if a.wire_len is not None else a.len
    wb = b.wire_len if b.wire_len is not None else b.len
    assert np.array_equal(wa, wb)
    if iface:
        ia = a.iface if a.iface is not None else np.zeros(len(a), np.int32)
        ib = b.iface if b.iface is not None else np.zeros(len(b), np.int32)
        assert np.array_equal(ia, ib)


@st.composite
def batches(draw, multi_link, res):
    n = draw(st.integers(0, 12))
    frames = [draw(st.binary(min_size=0, max_size=300)) for _ in range(n)]
    unit = 1 if res == "ns" else 1000
    ts = [draw(st.integers(0, (1 << 32) - 1)) * 10**9 + draw(st.integers(0, 10**9 // unit - 1)) * unit
          for _ in range(n)]
    wire = [len(f) + draw(st.sampled_from([0, 0, 1, 1000])) for f in frames]
    if multi_link:
        nif = draw(st.integers(1, 4))
        if_links = [draw(st.sampled_from(LINKS)) for _ in range(nif)]
        iface = [draw(st.integers(0, nif - 1)) for _ in range(n)]
        links = [if_links[i] for i in iface]
        return make_batch(frames, links, ts, wire, iface if draw(st.booleans()) else None)
    link = draw(st.sampled_from(LINKS))
    return make_batch(frames, [link] * n, ts, wire)


# --------------------------------------------------------------------------
# round trips


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), bo=st.sampled_from("<>"), res=st.sampled_from(["us", "ns"]))
def test_pcap_roundtrip(data, bo, res):
    b = data.draw(batches(False, res))
    link = int(b.meta["link"][0]) if len(b) else 1
    f = pcap.to_bytes(b, format="pcap", byte_order=bo, ts_resolution=res, link=link)
    r = pcap.open(f)
    back = r.read_all()
    same(b, back)
    assert r.format == "pcap" and r.byte_order == bo and r.ts_resolution == res and r.link == link
    # frames are views into the file's bytes, not copies
    if len(back):
        assert back.buf.base is not None and back.off[0] == 24 + 16
    assert pcap.to_bytes(back, **r.writer_options()) == f


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), bo=st.sampled_from("<>"), res=st.sampled_from(["us", "ns"]))
def test_pcapng_roundtrip_several_interfaces(data, bo, res):
    b = data.draw(batches(True, res))
    f = pcap.to_bytes(b, format="pcapng", byte_order=bo, ts_resolution=res)
    r = pcap.open(f)
    back = r.read_all()
    if b.iface is None:
        # one interface per link type, numbered in order of first appearance
        order = list(dict.fromkeys(b.meta["link"].tolist()))
        b.iface = np.array([order.index(lk) for lk in b.meta["link"].tolist()], np.int32)
    same(b, back)
    assert [i.link for i in r.interfaces] == [i.link for i in r.interfaces]
    assert r.byte_order == bo
    assert pcap.to_bytes(back, **r.writer_options()) == f
    # batching does not change the file: frame by frame, in random splits
    k = data.draw(st.integers(1, 5))
    out = io.BytesIO()
    with pcap.PcapWriter(out, **r.writer_options()) as w:
        for batch in pcap.iter_batches(f, n=k):
            w.write(batch)
    assert out.getvalue() == f


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_every_write_path_writes_the_same_file(tmp_path, monkeypatch, fmt):
    """In memory (records built inside the BytesIO), to a file in chunks smaller than some
    records, to any object with a write(), from a strided arena: one file; classic pcap
    equal to dpkt's writer."""
    import dpkt
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, int(k), dtype=np.uint8).tobytes() for k in rng.integers(0, 3000, 150)]
    frames[3] = b""
    ts = [int(s) * 10**9 for s in rng.integers(0, 1 << 32, len(frames))]
    b = make_batch(frames, ts=ts)
    ref = pcap.to_bytes(b, format=fmt)
    if fmt == "pcap":
        f = io.BytesIO()
        w = dpkt.pcap.Writer(f, snaplen=pcap.DEFAULT_SNAPLEN, linktype=1)
        for fr, t in zip(frames, ts):
            w.writepkt(fr, ts=t // 10**9)
        assert f.getvalue() == ref
    monkeypatch.setattr(pcap, "_WRITE_CHUNK", 1000)
    pcap.write(tmp_path / "x", b, format=fmt)
    assert (tmp_path / "x").read_bytes() == ref

    class Sink:                # keeps what it is given: must not see the buffer reused
        def __init__(self):
            self.parts = []

        def write(self, data):
            self.parts.append(data)

        def flush(self):
            pass
    sink = Sink()
    with pcap.PcapWriter(sink, format=fmt) as w:
        w.write(b[:70])
        w.write(b[70:])
    assert b"".join(bytes(p) for p in sink.parts) == ref
    wide = np.zeros(2 * b.buf.size, np.uint8)
    wide[::2] = b.buf
    strided = PacketBatch(wide[::2], b.off, b.len, b.meta, b.ts)
    assert pcap.to_bytes(strided, format=fmt) == ref
    with pytest.raises(ValueError, match="outside"):
        pcap.to_bytes(PacketBatch(b.buf[:100], [90], [20]))


def test_iter_batches_bounded_and_complete(tmp_path):
    frames = [bytes([i % 256]) * (i % 97 + 1) for i in range(1000)]
    b = make_batch(frames, ts=np.arange(1000) * 1000)
    p = tmp_path / "x.pcap"
    pcap.write(p, b)
    got = []
    for batch in pcap.iter_batches(p, n=64):
        assert len(batch) <= 64
        got += batch.to_frames()
    assert got == frames
    assert pcap.read(p).to_frames() == frames


def test_parse_during_the_walk_equals_parse_batch():
    from offload.parse import parse_batch
    for f in sample_files() + [pcap.to_bytes(mixed_batch(), format="pcapng")]:
        a = pcap.read(f, parse=True)
        b = pcap.read(f)
        parse_batch(b)
        assert np.array_equal(a.meta, b.meta)
        got = [x.meta for x in pcap.iter_batches(f, n=3, parse=True)]
        assert np.array_equal(np.concatenate(got), b.meta)


def _rss_kb():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1])


def test_iterating_a_large_file_keeps_a_bounded_resident_set(tmp_path):
    """Pages behind the batch before the current one are unmapped as the walk goes."""
    frame = bytes(1400)
    unit = make_batch([frame] * 4096)
    p = tmp_path / "big.pcap"
    with pcap.PcapWriter(p) as w:
        for _ in range(40):                  # ~230 MB
            w.write(unit)
    size = os.path.getsize(p)
    assert size > 200 << 20
    base = _rss_kb()
    peak = 0
    total = 0
    first = None
    for b in pcap.iter_batches(p, n=4096):
        if first is None:
            first = b
        total += int(b.len.sum())
        peak = max(peak, _rss_kb() - base)
    assert total == 40 * 4096 * 1400
    assert peak < 100 * 1024, f"resident set grew by {peak} KB for a {size >> 20} MB file"
    assert first.to_frames()[0] == frame     # frames of released batches are still readable


def test_writer_refuses_what_it_cannot_write(tmp_path):
    b = make_batch([b"a", b"b"], links=[1, 101])
    with pytest.raises(ValueError, match="pcapng"):
        pcap.to_bytes(b, format="pcap")
    with pytest.raises(ValueError, match="snaplen"):
        pcap.to_bytes(make_batch([b"x" * 100]), snaplen=64)
    bad = make_batch([b"a", b"b"], links=[1, 101], iface=[0, 0])
    with pytest.raises(ValueError, match="two link types"):
        pcap.to_bytes(bad, format="pcapng")
    with pytest.raises(ValueError, match="2\\*\\*32"):
        pcap.to_bytes(make_batch([b"a"], ts=[-1]))
    # an empty pcap still has its header and reads back as empty
    f = pcap.to_bytes(PacketBatch.empty())
    assert len(f) == 24 and len(pcap.read(f)) == 0


def test_gapped_interface_ids_and_predeclared():
    b = make_batch([b"x", b"y"], links=[101, 1], iface=[2, 0])
    f = pcap.to_bytes(b, format="pcapng")
    r = pcap.open(f)
    back = r.read_all()
    same(b, back)
    assert [i.link for i in r.interfaces] == [1, 101, 101]
    f2 = pcap.to_bytes(make_batch([b"z"], links=[1]), format="pcapng", interfaces=[113, 1])
    r2 = pcap.open(f2)
    assert r2.read_all().iface.tolist() == [1]
    assert [i.link for i in r2.interfaces] == [113, 1]


def test_many_interfaces_grow_the_tables(monkeypatch):
    """More interfaces than the reader's first tables hold (16): they grow as IDBs come,
    in the header peek and mid-batch; past MAX_INTERFACES the file is refused there."""
    k = 100
    frames = [bytes([i % 256]) * (1 + i % 50) for i in range(3 * k)]
    ids = [(i * 7) % k for i in range(3 * k)]
    idb_links = [LINKS[i % len(LINKS)] for i in range(k)]
    b = make_batch(frames, links=[idb_links[i] for i in ids], ts=[10**9 * i for i in range(3 * k)], iface=ids)
    f = pcap.to_bytes(b, format="pcapng", interfaces=idb_links[:20])   # 20 IDBs before the first packet
    for n in (1, 7, 1000):
        r = pcap.open(f)
        back = PacketBatch.concat(list(r.iter_batches(n))) if n < 1000 else r.read_all()
        same(b, back)
        assert [i.link for i in r.interfaces] == idb_links
    monkeypatch.setattr(pcap, "MAX_INTERFACES", 64)
    with pytest.raises(PcapError, match="more than 64 interfaces") as e:
        pcap.read(f)
    assert 0 < len(e.value.batch) < 3 * k and max(e.value.batch.iface) < 64


# --------------------------------------------------------------------------
# hand-built pcapng: SPB, OPB, several sections of both byte orders, tsresol


def blk(bo, btype, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(bo + "II", btype, n) + body + struct.pack(bo + "I", n)


def shb(bo):
    return blk(bo, 0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(bo, link, snap=0, tsresol=None, tsoff=None):
    opts = b""
    if tsresol is not None:
        opts += struct.pack(bo + "HHB3x", 9, 1, tsresol)
    if tsoff is not None:
        opts += struct.pack(bo + "HHq", 14, 8, tsoff)
    if opts:
        opts += struct.pack(bo + "HH", 0, 0)
    return blk(bo, 1, struct.pack(bo + "HHI", link, 0, snap) + opts)


def epb(bo, ifid, ticks, data, orig=None):
    return blk(bo, 6, struct.pack(bo + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                  orig or len(data)) + data)


def opb(bo, ifid, ticks, data):
    return blk(bo, 2, struct.pack(bo + "HHIIII", ifid, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                  len(data)) + data)


def spb(bo, data, orig=None):
    return blk(bo, 3, struct.pack(bo + "I", orig or len(data)) + data)


def handmade():
    """(file bytes, expected [(frame, ts_ns, link, iface)])."""
    f = shb("<") + idb("<", 1) + idb("<", 101, tsresol=9) + idb("<", 113, tsresol=0x80 | 20, tsoff=100)
    f += epb("<", 0, 1_700_000_000_123_456, b"E" * 60)
    f += blk("<", 4, b"\0\0\0\0")          # an NRB: skipped
    f += epb("<", 1, 1_700_000_000_123_456_789, b"\x45" + b"R" * 39)
    f += epb("<", 2, (5 << 20) | (1 << 19), b"S" * 16)   # 5.5 s in 2^-20 units, +100 s offset
    f += opb("<", 0, 7_000_001, b"O" * 61)
    f += spb("<", b"P" * 7)
    f += blk("<", 5, b"\0" * 12)           # an ISB: skipped
    f += shb(">") + idb(">", 276, snap=10, tsresol=3)
    f += epb(">", 0, 42, b"B" * 10, orig=1500)
    f += spb(">", b"Q" * 10, orig=30)      # captured: snaplen 10 of 30
    exp = [
        (b"E" * 60, 1_700_000_000_123_456_000, 1, 0),
        (b"\x45" + b"R" * 39, 1_700_000_000_123_456_789, 101, 1),
        (b"S" * 16, 105_500_000_000, 113, 2),
        (b"O" * 61, 7_000_001_000, 1, 0),
        (b"P" * 7, 0, 1, 0),
        (b"B" * 10, 42_000_000, 276, 3),
        (b"Q" * 10, 0, 276, 3),
    ]
    return f, exp


def test_handmade_pcapng_blocks_sections_resolutions():
    f, exp = handmade()
    r = pcap.open(f)
    b = r.read_all()
    assert b.to_frames() == [e[0] for e in exp]
    assert b.ts.tolist() == [e[1] for e in exp]
    assert b.meta["link"].tolist() == [e[2] for e in exp]
    assert b.iface.tolist() == [e[3] for e in exp]
    assert b.wire_len.tolist() == [60, 40, 16, 61, 7, 1500, 30]
    assert [(i.link, i.section) for i in r.interfaces] == [(1, 0), (101, 0), (113, 0), (276, 1)]
    # re-written like the first section (snaplen 0 = unlimited) but in ns, the frames come back the same
    again = pcap.read(pcap.to_bytes(b, **{**r.writer_options(), "ts_resolution": "ns"}))
    same(b, again)


@pytest.mark.tshark
def test_handmade_pcapng_agrees_with_tshark(tmp_path):
    conftest.require_tshark()
    f, exp = handmade()
    p = tmp_path / "hand.pcapng"
    p.write_bytes(f)
    rows = tshark_fields(p, "frame.cap_len", "frame.len")
    assert [(int(c), int(w)) for c, w in rows] == [(len(e[0]), w) for e, w in
                                                   zip(exp, [60, 40, 16, 61, 7, 1500, 30])]


# --------------------------------------------------------------------------
# damage: every cut point, and each kind of corruption


def boundaries(f):
    """Offsets at which each record/block starts, and whether it holds a frame (independent walker)."""
    out = []
    if f[:4] == b"\x0a\x0d\x0d\x0a":
        p, bo = 0, "<"
        while p < len(f):
            if f[p:p + 4] == b"\x0a\x0d\x0d\x0a":
                bo = "<" if f[p + 8:p + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            t, n = struct.unpack(bo + "II", f[p:p + 8])
            out.append((p, t in (2, 3, 6)))
            p += n
        return out, 0
    magic = struct.unpack("<I", f[:4])[0]
    bo = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    p = 24
    while p < len(f):
        out.append((p, True))
        p += 16 + struct.unpack(bo + "I", f[p + 8:p + 12])[0]
    return out, 24


def sample_files():
    frames = [bytes([i]) * (i * 7 % 50 + 1) for i in range(6)]
    b = make_batch(frames, links=[1, 1, 101, 1, 113, 101], ts=np.arange(6) * 10**9 + 5000)
    one = make_batch(frames, ts=np.arange(6) * 10**9 + 5000)
    return [pcap.to_bytes(one, byte_order="<"), pcap.to_bytes(one, byte_order=">", ts_resolution="ns"),
            pcap.to_bytes(b, format="pcapng"), pcap.to_bytes(b, format="pcapng", byte_order=">"),
            handmade()[0]]


@pytest.mark.hostile
@pytest.mark.parametrize("which", range(5))
def test_cut_at_every_byte_keeps_frames_before_the_damage(which):
    f = sample_files()[which]
    full = pcap.read(f).to_frames()
    starts, hdr = boundaries(f)
    for cut in range(len(f)):
        g = f[:cut]
        done = [s for s, _ in starts if s < cut]
        complete_frames = sum(1 for (s, is_pkt), nxt in zip(starts, [x[0] for x in starts[1:]] + [len(f)])
                              if is_pkt and nxt <= cut)
        at_boundary = cut in [s for s, _ in starts] or cut == len(f)
        if cut < max(hdr, 28 if hdr == 0 else 24):
            with pytest.raises(PcapError) as ei:
                pcap.read(g)
            assert ei.value.offset == 0
            continue
        if at_boundary:
            assert pcap.read(g).to_frames() == full[:complete_frames], cut
            continue
        with pytest.raises(PcapError) as ei:
            pcap.read(g)
        e = ei.value
        assert e.offset == done[-1], (cut, e)
        assert f"byte offset {done[-1]}" in str(e)
        assert e.batch.to_frames() == full[:complete_frames]
        assert e.frames_read == complete_frames
        # iter_batches yields the same frames, then raises
        got = []
        with pytest.raises(PcapError):
            for batch in pcap.iter_batches(g, n=2):
                got += batch.to_frames()
        assert got == full[:complete_frames]


def put32(f, off, v, bo="<"):
    f = bytearray(f)
    f[off:off + 4] = struct.pack(bo + "I", v)
    return bytes(f)


def expect_error(f, offset, text, frames, **kw):
    with pytest.raises(PcapError) as ei:
        pcap.read(f, **kw)
    e = ei.value
    assert e.offset == offset and text in e.reason, str(e)
    assert len(e.batch) == frames
    return e


def test_corruptions_name_offset_and_cause():
    frames = [b"a" * 10, b"b" * 20, b"c" * 30]
    p = pcap.to_bytes(make_batch(frames))
    r2 = 24 + 16 + 10
    expect_error(put32(p, r2 + 8, 0xFFFFFFF0), r2, "captured length 4294967280 exceeds the limit max_frame", 1)
    expect_error(put32(p, r2 + 8, 1000), r2, "runs past the end of the file", 1)
    expect_error(b"\x00\x01\x02\x03" + p[4:], 0, "bad magic", 0)
    expect_error(b"", 0, "too short", 0)
    strict = put32(p, 16, 15)      # snaplen 15 in the header
    expect_error(strict, r2, "captured length 20 exceeds the snaplen", 1, strict_snaplen=True)
    assert len(pcap.read(strict)) == 3   # tolerated by default, as libpcap and Wireshark do

    ng = pcap.to_bytes(make_batch(frames), format="pcapng", ts_resolution="us")
    starts, _ = boundaries(ng)
    shb_, idb_, e1, e2, e3 = [s for s, _ in starts]
    expect_error(put32(ng, e2 + 4, 53), e2, "block length 53 is not a multiple of 4", 1)
    expect_error(put32(ng, e2 + 4, 8), e2, "block length 8 is smaller than the minimum", 1)
    expect_error(put32(ng, e2 + 4, 0), e2, "smaller than the minimum", 1)
    expect_error(put32(ng, e2 + 4, 0xFFFFFFF0), e2, "exceeds the limit max_block", 1)
    expect_error(put32(ng, e2 + 4, 36), e2, "trailing block length", 1)
    expect_error(put32(ng, e2 + 8, 3), e2, "undescribed interface id 3", 1)
    expect_error(put32(ng, e2 + 20, 21), e2, "captured length 21 runs past the end of its block", 1)
    expect_error(put32(ng, 8, 0x11223344), 0, "byte-order magic", 0)
    ng9 = pcap.to_bytes(make_batch(frames), format="pcapng", ts_resolution="ns")
    expect_error(put32(ng9, idb_ + 16, (200 << 16) | 9), idb_, "runs past the end of its block", 0)
    big = pcap.to_bytes(make_batch([b"x" * 300_000]), snaplen=1 << 20)
    expect_error(big, 24, "captured length 300000 exceeds", 0)
    assert len(pcap.read(big, max_frame=1 << 20)) == 1


@pytest.mark.hostile
@settings(max_examples=300, deadline=None)
@given(data=st.data(), which=st.integers(0, 4))
def test_random_mutations_never_crash(data, which):
    f = bytearray(sample_files()[which])
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(f) - 1))
        f[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        f = f[:data.draw(st.integers(0, len(f)))]
    try:
        b = pcap.read(bytes(f))
    except PcapError as e:
        assert 0 <= e.offset < len(f) or e.offset == 0
        b = e.batch
        if b is None:
            return
    assert all(0 <= o and o + n <= len(f) for o, n in zip(b.off.tolist(), b.len.tolist()))


# --------------------------------------------------------------------------
# other tools read what we write, and we read what they write


def scapy_frames(path):
    from scapy.utils import PcapNgReader, PcapReader as SR
    rd = PcapNgReader if open(path, "rb").read(4) == b"\x0a\x0d\x0d\x0a" else SR
    with rd(str(path)) as r:
        return [(bytes(p), p.time, getattr(p, "wirelen", None)) for p in r]


def mixed_batch():
    from scapy.all import ICMP, IP, TCP, UDP, Ether, IPv6, raw
    frames = [raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(dst="10.0.0.1") / TCP(dport=80) / (b"x" * 100)),
              raw(IP(dst="10.0.0.2") / UDP(dport=53) / b"q"),
              raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(dst="::1") / UDP() / (b"y" * 500)),
              raw(IPv6(dst="::2") / TCP()),
              raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / ICMP())]
    links = [1, 101, 1, 101, 1]
    ts = [1_700_000_000_000_001_000 + i * 1_234_567_000 for i in range(5)]
    return make_batch(frames, links, ts, wire=[len(f) + 7 * (i == 2) for i, f in enumerate(frames)],
                      iface=[0, 1, 0, 1, 0])


@pytest.mark.parametrize("fmt,bo,res", [("pcap", "<", "us"), ("pcap", ">", "ns"),
                                        ("pcapng", "<", "ns"), ("pcapng", ">", "us")])
def test_scapy_reads_what_we_write(tmp_path, fmt, bo, res):
    from decimal import Decimal
    b = mixed_batch()
    if fmt == "pcap":
        b = b.select(np.array([0, 2, 4]))
    p = tmp_path / f"ours.{fmt}"
    pcap.write(p, b, format=fmt, byte_order=bo, ts_resolution=res)
    got = scapy_frames(p)
    assert [g[0] for g in got] == b.to_frames()
    assert [int(Decimal(str(g[1])) * 10**9) for g in got] == b.ts.tolist()
    assert [g[2] for g in got] == b.wire_len.tolist()


def test_we_read_what_scapy_writes(tmp_path):
    from scapy.all import Ether, IP, TCP, raw, wrpcap
    from scapy.utils import PcapNgWriter
    pkts = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / TCP() / (b"z" * i) for i in range(0, 300, 37)]
    for i, p in enumerate(pkts):
        p.time = 1_650_000_000 + i / 8
    wrpcap(str(tmp_path / "s.pcap"), pkts)
    with PcapNgWriter(str(tmp_path / "s.pcapng")) as w:
        for p in pkts:
            w.write(p)
    for name in ("s.pcap", "s.pcapng"):
        b = pcap.read(tmp_path / name)
        assert b.to_frames() == [raw(p) for p in pkts]
        assert b.ts.tolist() == [1_650_000_000 * 10**9 + i * 125_000_000 for i in range(len(pkts))]
        assert set(b.meta["link"].tolist()) == {1}


def tshark_fields(path, *fields):
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields"] + [a for f in fields for a in ("-e", f)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines()]


@pytest.mark.tshark
@pytest.mark.parametrize("fmt,bo,res", [("pcap", "<", "us"), ("pcap", ">", "ns"),
                                        ("pcapng", "<", "ns"), ("pcapng", ">", "us")])
def test_tshark_reads_what_we_write_and_we_read_what_it_writes(tmp_path, fmt, bo, res):
    conftest.require_tshark()
    b = mixed_batch()
    if fmt == "pcap":
        b = b.select(np.array([0, 2, 4]))
    p = tmp_path / f"ours.{fmt}"
    pcap.write(p, b, format=fmt, byte_order=bo, ts_resolution=res)
    rows = tshark_fields(p, "frame.cap_len", "frame.len", "frame.time_epoch", "frame.interface_id")
    assert [int(r[0]) for r in rows] == b.len.tolist()
    assert [int(r[1]) for r in rows] == b.wire_len.tolist()
    assert [r[2] for r in rows] == [f"{t // 10**9}.{t % 10**9:09d}" for t in b.ts.tolist()]
    if fmt == "pcapng":
        assert [int(r[3]) for r in rows] == [0, 1, 0, 1, 0]
    # tshark re-writes the file in its own way; reading that gives the same frames
    for out_fmt in (["-F", "pcapng"], ["-F", "pcap"], ["-F", "nsecpcap"], ["-F", "modpcap"]):
        if fmt == "pcapng" and out_fmt[1] != "pcapng":
            continue   # one pcap file holds one link type
        q = tmp_path / f"theirs-{out_fmt[1]}"
        subprocess.run(["editcap"] + out_fmt + [str(p), str(q)], check=True, capture_output=True)
        back = pcap.read(q)
        same(b, back, iface=(fmt == "pcapng"))


# --------------------------------------------------------------------------
# the corpus


@pytest.mark.hostile
def test_corpus_reads_fully_or_names_the_damage():
    from offload.parse import parse_batch
    d = conftest.corpus_dir("tcpdump")
    files = sorted(os.listdir(d))
    assert len(files) > 100
    t0 = time.monotonic()
    damaged = {}
    for name in files:
        t = time.monotonic()
        n = 0
        try:
            for b in pcap.iter_batches(os.path.join(d, name), n=4096):
                n += len(b)
                parse_batch(b)
        except PcapError as e:
            assert e.frames_read == n and str(e.offset) in str(e)
            damaged[name] = str(e)
        assert time.monotonic() - t < 20, name
    assert time.monotonic() - t0 < 100
    # the corpus is about damaged *packets*; only a few files are damaged as files
    assert len(damaged) < len(files) // 10, damaged


def _tshark_count(path):
    out = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=60)
    return out.returncode, len(out.stdout.splitlines())


@pytest.mark.tshark
@pytest.mark.hostile
@pytest.mark.slow
def test_corpus_frame_counts_agree_with_tshark():
    """A sample (every 16th file, ~50 tshark runs) to keep the time budget."""
    conftest.require_tshark()
    d = conftest.corpus_dir("tcpdump")
    files = sorted(os.listdir(d))[::16]
    compared = 0
    for name in files:
        path = os.path.join(d, name)
        rc, theirs = _tshark_count(path)
        try:
            ours = len(pcap.read(path))
        except PcapError as e:
            ours = len(e.batch)
            assert ours <= theirs or rc != 0, (name, str(e))
            continue
        if rc == 0:
            assert ours == theirs, name
            compared += 1
    assert compared > len(files) // 2
