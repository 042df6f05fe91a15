"""GRO properties with hypothesis: GSO and GRO are inverses (both directions, byte for byte,
virtio_net_hdr included), payload is conserved in order per flow, every input frame is
accounted for, and hostile trains never read or write out of bounds."""

import os
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw

import strategies as fs
from gro_trains import sum16, tcp_train, udp_train
from offload import gro, gso
from offload import status as S
from offload.batch import PacketBatch
from offload.parse import parse_frames

# modest in the normal suite; `make gro-props-long` runs the long campaign
EXAMPLES = int(os.environ.get("OFFLOAD_GRO_EXAMPLES", "40"))
SET = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

_LAYOUT = ("vlan_count", "l3_proto", "l3_hdr_len", "ext_len", "l4_proto", "l4_hdr_len", "pflags",
           "l3_off", "l3_end", "l4_off", "pay_off", "pay_len", "dst_off")


def _assert_layout_as_parsed(out: PacketBatch) -> None:
    """The layout GRO writes into each output's meta (without re-parsing aggregates) is what
    the parser finds in the output bytes."""
    fresh = PacketBatch.from_frames(out.to_frames())
    parse_frames(fresh.buf, fresh.off, fresh.len, fresh.meta)
    for f in _LAYOUT:
        assert list(out.meta[f]) == list(fresh.meta[f]), f


@st.composite
def super_packets(draw):
    """A super-packet as Linux's GRO would hand it up (and its GSO takes it): partial L4
    checksum (pseudo-header sum over the whole L4 length), its virtio_net_hdr tuple, and the
    kwargs gso.segment needs. Payload > MSS, below 64 KB."""
    v6 = draw(st.booleans())
    udp = draw(st.integers(0, 3)) == 0
    vlan = draw(st.sampled_from([None, None, 5, [5, 6]]))
    mss = draw(st.integers(8, 1400))
    nseg = draw(st.integers(2, 40))
    last = draw(st.integers(1, mss))
    pay = min(mss * (nseg - 1) + last, 60000)
    if pay <= mss:
        pay = mss + 1
    payload = bytes(random.Random(pay * 31 + mss).randrange(256) for _ in range(pay))
    fixedid = False
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if vlan is not None:
        for v in ([vlan] if isinstance(vlan, int) else vlan):
            eth = eth / Dot1Q(vlan=v)
    if v6:
        l3 = IPv6(src="fd00::1", dst="fd00::2", fl=draw(st.integers(0, 0xFFFFF)), hlim=draw(st.integers(1, 255)),
                  tc=draw(st.integers(0, 255)))
    else:
        fixedid = draw(st.booleans())
        l3 = IP(src="10.1.0.1", dst="10.1.0.2", id=draw(st.integers(0, 0xFFFF)), flags="DF" if draw(st.booleans()) else 0,
                ttl=draw(st.integers(1, 255)), tos=draw(st.integers(0, 255)))
    cwr = False
    if udp:
        l4 = UDP(sport=draw(st.integers(1, 65535)), dport=53)
        gt, co = 5, 6
    else:
        flags = "A" + draw(st.sampled_from(["", "", "P", "F", "PF", "E"]))
        cwr = draw(st.integers(0, 4)) == 0
        if cwr:
            flags += "C"
        opts = draw(st.sampled_from([[], [("NOP", None), ("NOP", None), ("Timestamp", (123, 456))],
                                     [("SAck", (1, 2)), ("NOP", None), ("NOP", None)]]))
        l4 = TCP(sport=draw(st.integers(1, 65535)), dport=80, seq=draw(st.integers(0, 2**32 - 1)),
                 ack=draw(st.integers(0, 2**32 - 1)), window=draw(st.integers(0, 65535)), flags=flags, options=opts)
        gt, co = (4 if v6 else 1), 16
        if cwr:
            gt |= 0x80
    f = bytearray(bytes(eth / l3 / l4 / Raw(payload)))
    p = Ether(bytes(f))
    l3off = len(eth)
    l4off = l3off + (40 if v6 else 20)
    thl = 8 if udp else len(p[TCP]) - len(payload)
    l4len = len(f) - l4off
    if v6:
        ph = bytes(f[l3off + 8:l3off + 40]) + l4len.to_bytes(4, "big") + bytes([0, 0, 0, 17 if udp else 6])
    else:
        ph = bytes(f[l3off + 12:l3off + 20]) + bytes([0, 17 if udp else 6]) + l4len.to_bytes(2, "big")
    f[l4off + co:l4off + co + 2] = sum16(ph).to_bytes(2, "big")
    vh = (1, gt, l4off + thl, mss, l4off, co)
    return bytes(f), vh, dict(fixedid=fixedid, cwr=cwr)


def _vnet(meta_rec):
    m = meta_rec
    return (int(m["vnet_flags"]), int(m["gso_type"]), int(m["hdr_len"]), int(m["gso_size"]),
            int(m["csum_start"]), int(m["csum_offset"]))


@SET
@given(super_packets())
def test_coalesce_of_segment_is_identity(sp):
    frame, vh, kw = sp
    y = PacketBatch.from_frames([frame], vnet=[vh])
    x = gso.segment(y, csum="full", fixedid=kw["fixedid"]).out
    assert len(x) >= 2
    xs = PacketBatch.from_frames(x.to_frames())
    r = gro.coalesce(xs, cwr="legacy" if kw["cwr"] else "6.18")
    assert len(r.batch) == 1, r.counters
    assert r.batch.to_frames()[0] == frame
    _assert_layout_as_parsed(r.batch)
    assert _vnet(r.batch.meta[0]) == vh
    assert (r.batch.meta[0]["status"] == S.GRO_HEAD_FIXEDID) == (kw["fixedid"] and vh[1] & 0x7F == 1 and len(x) >= 2)


@SET
@given(super_packets(), st.integers(0, 2**31))
def test_segment_of_coalesce_is_identity(sp, seed):
    """x = a train the kernel's GSO could emit (several flows interleaved); segment(coalesce(x))
    gives x back, flow by flow, byte for byte."""
    frame, vh, kw = sp
    y = PacketBatch.from_frames([frame], vnet=[vh])
    x1 = gso.segment(y, csum="full", fixedid=kw["fixedid"]).out.to_frames()
    x2 = tcp_train(random.Random(seed).randrange(1, 8), pay=random.Random(seed).randrange(1, 900), sport=7)
    rnd = random.Random(seed)
    x = []
    a, b = list(x1), list(x2)
    while a or b:
        src = a if (a and (not b or rnd.random() < 0.5)) else b
        x.append(src.pop(0))
    r = gro.coalesce(PacketBatch.from_frames(x), cwr="legacy" if kw["cwr"] else "6.18")
    out = r.batch
    back = []
    fixed = gro.fixed_id_mask(out)
    for k in range(len(out)):
        one = PacketBatch.from_frames([out.to_frames()[k]])
        one.meta[:] = out.meta[k:k + 1]
        back += gso.segment(one, csum="full", fixedid=bool(fixed[k])).out.to_frames()
    # per flow, in order
    assert [f for f in back if f in set(x1)] == x1
    assert [f for f in back if f in set(x2)] == x2
    assert sorted(back) == sorted(x)


def _flow_of(frame):
    p = Ether(frame)
    ip = p[IP] if IP in p else (p[IPv6] if IPv6 in p else None)
    l4 = p[TCP] if TCP in p else (p[UDP] if UDP in p else None)
    if ip is None or l4 is None:
        return None
    return (type(l4).__name__, ip.src, ip.dst, l4.sport, l4.dport)


def _payload(frame):
    p = Ether(frame)
    l4 = p[TCP] if TCP in p else (p[UDP] if UDP in p else None)
    return bytes(l4.payload) if l4 is not None else b""


@st.composite
def messy_trains(draw):
    """Interleaved trains of a few flows, with drops, duplicates, swaps, flag bits and broken
    checksums mixed in."""
    frames = []
    for k in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            frames.append(tcp_train(draw(st.integers(1, 12)), pay=draw(st.integers(1, 300)), sport=100 + k,
                                    v6=draw(st.booleans())))
        else:
            frames.append(udp_train(draw(st.integers(1, 12)), pay=draw(st.integers(1, 300)), sport=200 + k))
    rnd = random.Random(draw(st.integers(0, 2**31)))
    x = []
    pools = [list(f) for f in frames]
    while any(pools):
        p = rnd.choice([q for q in pools if q])
        x.append(p.pop(0))
    for _ in range(draw(st.integers(0, 4))):
        i = rnd.randrange(len(x))
        op = rnd.randrange(4)
        if op == 0:
            x.pop(i) if len(x) > 1 else None
        elif op == 1:
            x.insert(i, x[i])
        elif op == 2 and i + 1 < len(x):
            x[i], x[i + 1] = x[i + 1], x[i]
        else:
            f = bytearray(x[i])
            f[-1] ^= 0x5A
            x[i] = bytes(f)
    return x


@SET
@given(messy_trains(), st.sampled_from(["partial", "full"]))
def test_payload_conserved_in_order_and_every_frame_accounted(x, csum):
    b = PacketBatch.from_frames(x)
    r = gro.coalesce(b, csum=csum)
    out = r.batch
    assert int(out.meta["seg"].sum()) == len(x)
    _assert_layout_as_parsed(out)
    st_in = b.meta["status"]
    assert int((st_in == S.GRO_MERGED).sum()) + len(out) == len(x)
    assert all(192 <= int(c) < 256 for c in st_in)
    flows_in, flows_out = {}, {}
    for f in x:
        flows_in.setdefault(_flow_of(f), []).append(_payload(f))
    for f in out.to_frames():
        flows_out.setdefault(_flow_of(f), []).append(_payload(f))
    for k in flows_in:
        assert b"".join(flows_out.get(k, [])) == b"".join(flows_in[k]), k


@SET
@given(messy_trains(), st.integers(1, 5), st.integers(0, 3000))
def test_streaming_table_conserves_payload(x, chunk, timeout):
    t = gro.GroTable(max_flows=3, max_held=16, timeout_ns=timeout)
    outs = []
    for k in range(0, len(x), chunk):
        b = PacketBatch.from_frames(x[k:k + chunk])
        b.ts = np.arange(k, k + len(b), dtype=np.int64) * 500
        outs += t.push(b, now=(k + len(b)) * 500).to_frames()
    outs += t.flush().to_frames()
    assert t.held == 0 and t.flows == 0
    flows_in, flows_out = {}, {}
    for f in x:
        flows_in.setdefault(_flow_of(f), []).append(_payload(f))
    for f in outs:
        flows_out.setdefault(_flow_of(f), []).append(_payload(f))
    for k in flows_in:
        assert b"".join(flows_out.get(k, [])) == b"".join(flows_in[k]), k


_VNET = ("vnet_flags", "gso_type", "gso_size", "hdr_len", "csum_start", "csum_offset", "status", "seg")


def _per_flow(out: PacketBatch) -> dict:
    got = {}
    for k, f in enumerate(out.to_frames()):
        got.setdefault(_flow_of(f), []).append((f, tuple(int(out.meta[k][n]) for n in _VNET)))
    return got


@SET
@given(messy_trains(), st.integers(1, 7), st.sampled_from(["partial", "full"]), st.booleans())
def test_streaming_table_equals_the_burst_engine_per_flow(x, chunk, csum, verify):
    """The streaming table builds aggregates in place, in arena regions, and verifies each
    segment as it arrives; the burst engine (checked against Linux in test_gro_kernel) chains
    input frames and verifies them when it writes. Pushed in chunks and flushed, the table
    must give every flow the same frames, bytes and virtio_net_hdr fields, in the same order.
    ``max_flows=4`` leaves one spare region, so a push that closes several aggregates has to
    move finished ones out of their regions (_reclaim) to open new ones."""
    r = gro.coalesce(PacketBatch.from_frames(x), csum=csum, verify=verify)
    want = _per_flow(r.batch)
    t = gro.GroTable(max_flows=4, max_held=4096, csum=csum, verify=verify)
    got: dict = {}
    for k in range(0, len(x), chunk):
        out = t.push(PacketBatch.from_frames(x[k:k + chunk]))
        for fl, v in _per_flow(out).items():      # (a view: read before the next call)
            got.setdefault(fl, []).extend(v)
    for fl, v in _per_flow(t.flush()).items():
        got.setdefault(fl, []).extend(v)
    assert t.held == 0 and t.flows == 0 and t.counters["flush"].get("evict", 0) == 0
    assert got == want


# --- hostile input ----------------------------------------------------------------

@pytest.mark.hostile
@settings(max_examples=max(150, EXAMPLES), deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(fs.mutated_frames(fs.tcp_frames()), min_size=1, max_size=12), st.data())
def test_hostile_mutated_frames(muts, data):
    frames = [m.frame for m in muts]
    # mix with a valid train of the same kind so merges are attempted against lies
    frames = frames + tcp_train(3) + frames[::-1]
    b = PacketBatch.from_frames(frames)
    r = gro.coalesce(b, csum=data.draw(st.sampled_from(["partial", "full"])), max_size=data.draw(
        st.sampled_from([65536, 300000])))
    assert int(r.batch.meta["seg"].sum()) == len(frames)
    t = gro.GroTable(max_flows=2, max_held=4, slot_size=128)
    n = len(t.push(b).to_frames())
    n += len(t.flush())
    assert n <= len(frames)


@pytest.mark.hostile
def test_hostile_overlapping_sequences_and_lying_lengths():
    fr = tcp_train(6, pay=200)
    # overlaps: the same sequence again, and a segment starting inside the previous one
    def overlap(i, L):
        L["tcp"].seq = 1000 + 100 * i
    fr += tcp_train(6, pay=200, mod=overlap, sport=9)
    # IP total length lies (longer, shorter than the frame), TCP data offset lies
    lies = []
    for k, f in enumerate(tcp_train(6, pay=200, sport=11)):
        f = bytearray(f)
        if k % 3 == 0:
            f[16:18] = (len(f) + 500 - 14).to_bytes(2, "big")
        elif k % 3 == 1:
            f[16:18] = (40).to_bytes(2, "big")
        else:
            f[14 + 20 + 12] = 0xF0
        lies.append(bytes(f))
    fr += lies
    b = PacketBatch.from_frames(fr)
    r = gro.coalesce(b)
    assert int(r.batch.meta["seg"].sum()) == len(fr)
    assert 1200 in [int(x) for x in r.batch.meta["pay_len"]]     # the clean train still merges
    # the overlapping flow: every segment refused on sequence, nothing merged
    assert r.counters["refused"].get("seq", 0) >= 5


@pytest.mark.hostile
def test_hostile_100000_distinct_flows():
    base = tcp_train(1, pay=20)[0]
    n = 100_000
    L = len(base)
    buf = np.zeros(n * 128, np.uint8)
    fr = np.frombuffer(base, np.uint8)
    off = np.arange(n, dtype=np.int64) * 128
    for k in range(n):
        buf[off[k]:off[k] + L] = fr
    # distinct source ports and addresses; checksums then wrong for all but a few -> trust them
    ports = np.arange(n, dtype=np.int64)
    buf[off + 14 + 20] = (ports >> 8) & 0xFF
    buf[off + 14 + 20 + 1] = ports & 0xFF
    buf[off + 14 + 13] = (ports >> 16) & 0xFF
    b = PacketBatch(buf, off, np.full(n, L, np.int64))
    r = gro.coalesce(b, verify=False)
    assert len(r.batch) == n and int(r.batch.meta["seg"].sum()) == n
    # twice each: every flow merges its pair, lookups by hash
    off2 = np.concatenate([off, off])
    b2 = PacketBatch(buf, off2, np.full(2 * n, L, np.int64))
    r2 = gro.coalesce(b2, verify=False)
    assert int(r2.batch.meta["seg"].sum()) == 2 * n
    t = gro.GroTable(max_flows=1024, verify=False)
    got = len(t.push(b)) + len(t.flush())
    assert got == n and t.counters["flush"]["evict"] == n - 1024
