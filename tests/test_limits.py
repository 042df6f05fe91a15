"""docs/limits.md is true: every value in its table equals the code's, and every limit is
enforced (past it: a status or an error naming the byte offset, bounded memory)."""

from __future__ import annotations

import importlib
import os
import re
import struct
import tracemalloc

import pytest

from offload import PacketBatch, pcap, status as S
from offload.parse import parse_batch

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "limits.md")
pytestmark = pytest.mark.hostile


def _rows():
    rows = []
    for line in open(DOC, encoding="utf-8"):
        m = re.match(r"\|([^|]+)\|([^|]+)\|\s*`([a-z_.]+\.[A-Z_]+)`", line)
        if m:
            rows.append((m.group(1).strip(), m.group(2).strip(), m.group(3)))
    return rows


def test_every_documented_constant_matches_the_code():
    rows = _rows()
    assert len(rows) >= 10
    for what, value, name in rows:
        mod, attr = name.rsplit(".", 1)
        got = getattr(importlib.import_module(mod), attr)
        if ".." in value:
            lo, hi = (int(x) for x in value.split(".."))
            assert got == hi + 1, (what, name, got)   # the first refused value
        else:
            assert got == int(value), (what, name, got, value)


def _pcap(records: bytes, link=1, snap=65535) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap, link) + records


def _rec(data: bytes, caplen=None, orig=None) -> bytes:
    c = len(data) if caplen is None else caplen
    return struct.pack("<IIII", 1, 2, c, orig if orig is not None else c) + data


def test_a_record_claiming_4gb_is_refused_at_its_offset_with_bounded_memory():
    good = _rec(b"a" * 60) + _rec(b"b" * 70)
    f = _pcap(good + _rec(b"c" * 10, caplen=0xFFFFFFF0) + b"c" * 10)
    # compile the reader first: tracemalloc would otherwise count Numba's compiler
    # (70-108 MB in a fresh cache), not what reading the file holds
    pcap.read(_pcap(good))
    tracemalloc.start()
    with pytest.raises(pcap.PcapError) as ei:
        pcap.read(f)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    e = ei.value
    assert e.offset == 24 + len(good) and e.frames_read == 2 and len(e.batch) == 2
    assert e.batch.to_frames() == [b"a" * 60, b"b" * 70]
    assert peak < 64 << 20          # far from the 4 GB the record claims


def test_max_frame_is_enforced_and_configurable():
    f = _pcap(_rec(b"x" * 70000), snap=262144)
    with pytest.raises(pcap.PcapError) as ei:
        pcap.read(f, max_frame=65536)
    assert ei.value.offset == 24
    assert len(pcap.read(f)) == 1      # default 256 KiB accepts it


def _shb(body_opts=b""):
    ln = 28 + len(body_opts)
    return struct.pack("<IIIHHq", 0x0A0D0D0A, ln, 0x1A2B3C4D, 1, 0, -1) + body_opts + struct.pack("<I", ln)


def _idb(link=1):
    return struct.pack("<IIHHI", 1, 20, link, 0, 0) + struct.pack("<I", 20)


def _epb(data: bytes):
    pad = (-len(data)) % 4
    ln = 32 + len(data) + pad
    return struct.pack("<IIIIIII", 6, ln, 0, 0, 0, len(data), len(data)) + data + b"\0" * pad + struct.pack("<I", ln)


@pytest.mark.parametrize("bad_len", [0, 4, 8])
def test_a_pcapng_block_that_would_loop_is_refused_at_its_offset(bad_len):
    head = _shb() + _idb() + _epb(b"q" * 50)
    f = head + struct.pack("<II", 6, bad_len) + b"\0" * 24
    with pytest.raises(pcap.PcapError) as ei:
        pcap.read(f)
    assert ei.value.offset == len(head) and len(ei.value.batch) == 1


def test_pcapng_block_above_max_block_is_refused():
    head = _shb() + _idb()
    f = head + _epb(b"z" * 5000)
    with pytest.raises(pcap.PcapError) as ei:
        pcap.read(f, max_block=4096)
    assert ei.value.offset == len(head)


def test_usos_beyond_128_segments_are_refused_by_validator_and_gso():
    from scapy.all import IP, UDP, Ether, Raw, raw
    from offload import gso
    f = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / UDP() / Raw(b"u" * 1290))
    ok = PacketBatch.from_frames([f], vnet=[(1, 5, 0, 11, 34, 6)])   # 1290 <= 11*128 -> 118 segments
    bad = PacketBatch.from_frames([f], vnet=[(1, 5, 0, 10, 34, 6)])  # 1290 > 10*128
    assert gso.segment(ok).counters["segments"] == 118
    r = gso.segment(bad)
    assert r.counters["segments"] == 0 and int(bad.meta["status"][0]) in (S.VNET_TOO_MANY_SEGS, S.GSO_TOO_MANY_SEGS)


def test_gro_aggregates_stay_below_max_size():
    from scapy.all import IP, TCP, Ether, Raw, raw
    from offload import gro
    frames = [raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(id=i, flags="DF")
                  / TCP(seq=1000 + 1448 * i, flags="A") / Raw(b"g" * 1448)) for i in range(100)]
    for max_size in (65536, 20000):
        r = gro.coalesce(PacketBatch.from_frames(frames), max_size=max_size)
        out = r.batch
        parse_batch(out)
        ip_len = out.meta["l3_end"] - out.meta["l3_off"]
        assert (ip_len < max_size).all() and int(out.meta["seg"].sum()) == 100


def test_gro_table_memory_is_bounded_whatever_the_flow_count():
    from scapy.all import IP, TCP, Ether, Raw, raw
    from offload import gro
    t = gro.GroTable(max_flows=16, max_held=64)
    mem0 = None
    seen_in = 0
    for burst in range(20):
        frames = [raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(dst="10.9.%d.%d" % (burst, k), flags="DF")
                      / TCP(sport=1000 + k, flags="A") / Raw(b"m" * 100)) for k in range(64)]
        t.push(PacketBatch.from_frames(frames), now=burst)
        seen_in += 64
        assert t.flows <= 16 and t.held <= 64
        mem0 = mem0 or t.memory_bytes
        assert t.memory_bytes == mem0
    t.flush()
    assert t.held == 0 and t.counters["frames_in"] == seen_in


def _mapping_rss_kb(addr: int) -> int:
    """Resident kB of the mapping that holds ``addr`` (/proc/self/smaps)."""
    inside = False
    for line in open("/proc/self/smaps"):
        head = line.split()[0]
        if "-" in head and ":" not in head:
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= addr < hi
        elif inside and head == "Rss:":
            return int(line.split()[1])
    raise AssertionError("mapping not found")


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc/self/smaps")
def test_gro_table_regions_take_memory_only_where_aggregates_reach():
    """1024 open flows of 100-byte segments: the table's address space is ~74 MB (a region
    of slot_size + max_size per flow), but only the pages written are resident."""
    from scapy.all import IP, TCP, Ether, Raw, raw
    from offload import gro
    t = gro.GroTable(max_flows=1024)
    frames = [raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(dst="10.8.%d.%d" % (k >> 8, k & 255))
                  / TCP(sport=1000, flags="A", seq=1) / Raw(b"m" * 100)) for k in range(1024)]
    t.push(PacketBatch.from_frames(frames))
    assert t.flows == 1024 and t.memory_bytes > 70 << 20
    rss = _mapping_rss_kb(t.arena.buf.ctypes.data)
    assert rss < 12 << 10, f"{rss} kB resident"
    assert len(t.flush()) == 1024


def test_vlan_and_extension_limits():
    from scapy.all import raw, Ether, IP, UDP
    base = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / UDP())
    tags = lambda k: b"".join(struct.pack("!HH", 0x8100, 1) for _ in range(k))
    for k, want in ((S.MAX_VLANS, S.OK), (S.MAX_VLANS + 1, S.TOO_MANY_VLANS)):
        b = PacketBatch.from_frames([base[:12] + tags(k) + base[12:]])
        parse_batch(b)
        assert b.meta["status"][0] == want
