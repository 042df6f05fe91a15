"""GRO rules, as the Linux GRO selftest matrix (tools/testing/selftests/net/gro.c) states them,
checked on trains built by scapy; every output is re-read by scapy for lengths and checksums."""

import numpy as np
import pytest
from scapy.all import IP, TCP, UDP, Ether, IPv6, Raw

from gro_trains import dest_opts, partial_vnet, partialize, sum16, tcp_train, udp_train
from offload import gro
from offload import status as S
from offload import vnet as V
from offload.batch import PacketBatch

PL = 100


def run(frames, **kw):
    b = PacketBatch.from_frames(frames)
    r = gro.coalesce(b, **kw)
    return r, b


def pays(r):
    return [int(x) for x in r.batch.meta["pay_len"]]


def rfc1071(data: bytes) -> int:
    """Reference Internet checksum (plain Python, independent of offload.csum)."""
    return (~sum16(data)) & 0xFFFF


def l4_ok(frame: bytes, m) -> bool:
    """Check the L4 checksum of a parsed output frame from first principles (works for
    IPv4 total length 0 and IPv6 jumbograms, which scapy cannot rebuild)."""
    l3, l4, end = int(m["l3_off"]), int(m["l4_off"]), int(m["l3_end"])
    seg = frame[l4:end]
    if m["l3_proto"] == 0x0800:
        ph = frame[l3 + 12:l3 + 20] + bytes([0, int(m["l4_proto"])]) + len(seg).to_bytes(4, "big")  # 32-bit length, as Linux sums it
    else:
        ph = frame[l3 + 8:l3 + 40] + len(seg).to_bytes(4, "big") + bytes([0, 0, 0, int(m["l4_proto"])])
    return rfc1071(ph + seg) == 0


def check_valid(r, full=False):
    """scapy re-reads every output: IPv4 header checksum right, lengths right, and with
    csum='full' the L4 checksum right (with 'partial' the L4 field is the pseudo sum)."""
    for k, f in enumerate(r.batch.to_frames()):
        p = Ether(f)
        m = r.batch.meta[k]
        if IP in p:
            c = p[IP].chksum
            del p[IP].chksum
            assert Ether(bytes(p))[IP].chksum == c, "IPv4 header checksum"
        if full or m["status"] not in (S.GRO_HEAD, S.GRO_HEAD_FIXEDID):
            l4 = p[TCP] if TCP in p else (p[UDP] if UDP in p else None)
            if l4 is not None and m["status"] != S.GRO_BAD_CSUM:
                c = l4.chksum
                del l4.chksum
                q = Ether(bytes(p))
                assert (q[TCP] if TCP in q else q[UDP]).chksum == c, f"L4 checksum of output {k}"


def payload_of(frame):
    p = Ether(frame)
    l4 = p[TCP] if TCP in p else p[UDP]
    return bytes(l4.payload) if not isinstance(l4.payload, type(None)) else b""


def test_basic_train_matches_the_kernel_shape():
    # afxdp-findings Q5: ten 1448-byte segments, last PSH -> one 14534-byte frame with
    # vnet (NEEDS_CSUM, TCPV4, gso_size 1448, csum 34+16)
    fr = tcp_train(10, pay=1448, mod=lambda i, L: setattr(L["tcp"], "flags", "PA" if i == 9 else "A"))
    r, b = run(fr)
    assert len(r.batch) == 1 and int(r.batch.len[0]) == 14534
    m = r.batch.meta[0]
    assert (m["vnet_flags"], m["gso_type"], m["gso_size"], m["csum_start"], m["csum_offset"]) == (1, 1, 1448, 34, 16)
    assert m["hdr_len"] == 54 and m["seg"] == 10 and m["status"] == S.GRO_HEAD
    p = Ether(r.batch.to_frames()[0])
    assert p[IP].len == 14520 and p[IP].id == 1000 and str(p[TCP].flags) == "PA"
    assert list(b.meta["status"]) == [S.GRO_HEAD] + [S.GRO_MERGED] * 9
    check_valid(r)
    r2, _ = run(fr, hdr_len="linux")
    assert r2.batch.meta[0]["hdr_len"] == 1502


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("vlan", [None, 10, [10, 20]])
def test_data_same(v6, vlan):
    r, _ = run(tcp_train(4, v6=v6, vlan=vlan))
    assert pays(r) == [4 * PL]
    check_valid(r)
    r, _ = run(tcp_train(4, v6=v6, vlan=vlan), csum="full")
    check_valid(r, full=True)


@pytest.mark.parametrize("v6", [False, True])
def test_data_lrg_sml_and_sml_lrg(v6):
    r, _ = run(tcp_train(2, v6=v6, sizes=[PL, PL // 2]))
    assert pays(r) == [PL + PL // 2]
    r, _ = run(tcp_train(2, v6=v6, sizes=[PL // 2, PL]))
    assert pays(r) == [PL // 2, PL]
    # a short segment closes the train even when more follow
    r, _ = run(tcp_train(4, v6=v6, sizes=[PL, PL // 2, PL, PL]))
    assert pays(r) == [PL + PL // 2, 2 * PL]


@pytest.mark.parametrize("v6", [False, True])
def test_pure_ack_never_merges(v6):
    r, b = run(tcp_train(3, v6=v6, sizes=[PL, 0, PL]))
    assert pays(r) == [PL, 0, PL]
    assert b.meta["status"][1] == S.GRO_PURE_ACK
    # (sequence of the third continues the first: the ACK flushed it, like Linux)
    r, _ = run(tcp_train(2, v6=v6, sizes=[0, 0]))
    assert pays(r) == [0, 0]


def _flag_at(idx, flag):
    def mod(i, L):
        if i in (idx if isinstance(idx, (list, tuple)) else [idx]):
            L["tcp"].flags = "A" + flag
            if "U" in flag:
                L["tcp"].urgptr = 1
    return mod


@pytest.mark.parametrize("v6", [False, True])
def test_flags_psh(v6):
    # selftest: packet 2 of 5 carries PSH -> merged, then flushed: [3PL, 2PL]
    r, _ = run(tcp_train(5, v6=v6, mod=_flag_at(2, "P")))
    assert pays(r) == [3 * PL, 2 * PL]
    p = Ether(r.batch.to_frames()[0])
    assert "P" in str(p[TCP].flags)


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("flag", ["S", "R", "U"])
def test_flags_syn_rst_urg_pass_alone(v6, flag):
    r, b = run(tcp_train(5, v6=v6, mod=_flag_at(2, flag)))
    assert pays(r) == [2 * PL, PL, 2 * PL]
    assert b.meta["status"][2] == S.GRO_FLUSH_FLAGS
    check_valid(r)


@pytest.mark.parametrize("v6", [False, True])
def test_flags_fin_merged_then_flushed(v6):
    r, _ = run(tcp_train(5, v6=v6, mod=_flag_at(2, "F")))
    assert pays(r) == [3 * PL, 2 * PL]
    assert "F" in str(Ether(r.batch.to_frames()[0])[TCP].flags)


@pytest.mark.parametrize("cwr,expect", [("6.18", [PL, PL, PL, 2 * PL]),
                                        ("legacy", [PL, PL, 3 * PL]),
                                        ("accecn", [PL, 2 * PL, 2 * PL])])
def test_flags_cwr_each_kernel_rule(cwr, expect):
    # the selftest sends CWR on two neighbouring segments; afxdp-findings lists what 6.18,
    # 6.17 and the newest selftest expect
    r, _ = run(tcp_train(5, mod=_flag_at([1, 2], "C")), cwr=cwr)
    assert pays(r) == expect
    if cwr == "legacy":
        assert r.batch.meta["gso_type"][2] == V.GSO_TCPV4 | V.GSO_ECN
    check_valid(r)


@pytest.mark.parametrize("v6", [False, True])
def test_tcp_csum_bad_passes_alone(v6):
    def mod(i, L):
        if i == 2:
            L["tcp"].chksum = 0x1234
    r, b = run(tcp_train(5, v6=v6, mod=mod))
    assert pays(r) == [2 * PL, PL, 2 * PL]
    assert b.meta["status"][2] == S.GRO_BAD_CSUM
    assert r.batch.meta["status"][1] == S.GRO_BAD_CSUM
    # the bad frame goes out untouched
    assert r.batch.to_frames()[1] == tcp_train(5, v6=v6, mod=mod)[2]
    # bad head
    def mod0(i, L):
        if i == 0:
            L["tcp"].chksum = 0x1234
    r, _ = run(tcp_train(4, v6=v6, mod=mod0))
    assert pays(r) == [PL, 3 * PL]
    # verify=False trusts the sender
    r, _ = run(tcp_train(5, v6=v6, mod=mod), verify=False)
    assert pays(r) == [5 * PL]


def test_ip_header_csum_bad():
    def mod(i, L):
        if i == 1:
            L["l3"].chksum = 0x4321
    r, b = run(tcp_train(3, mod=mod))
    assert pays(r) == [PL, PL, PL] and b.meta["status"][1] == S.GRO_BAD_CSUM
    # DATA_VALID vouches for the L4 checksum only: Linux's inet_gro_receive checks the
    # IPv4 header (ip_fast_csum) of every frame all the same
    dv = [(V.F_DATA_VALID, 0, 0, 0, 0, 0)] * 3
    r = gro.coalesce(PacketBatch.from_frames(tcp_train(3, mod=mod), vnet=dv))
    assert pays(r) == [PL, PL, PL] and r.batch.meta["status"][1] == S.GRO_BAD_CSUM
    r = gro.coalesce(PacketBatch.from_frames(tcp_train(3), vnet=dv))
    assert pays(r) == [3 * PL]


@pytest.mark.parametrize("v6", [False, True])
def test_tcp_seq_gap(v6):
    def mod(i, L):
        if i >= 2:
            L["tcp"].seq += 1
    r, b = run(tcp_train(4, v6=v6, mod=mod))
    assert pays(r) == [2 * PL, 2 * PL]
    assert gro.Coalescer().run(PacketBatch.from_frames(tcp_train(4, v6=v6, mod=mod))) is not None


@pytest.mark.parametrize("v6", [False, True])
def test_tcp_ts_change(v6):
    def mod(i, L):
        L["tcp"].options = [("NOP", None), ("NOP", None), ("Timestamp", (1000 + (i >= 2), 5))]
    r, _ = run(tcp_train(4, v6=v6, mod=mod))
    assert pays(r) == [2 * PL, 2 * PL]
    def same(i, L):
        L["tcp"].options = [("NOP", None), ("NOP", None), ("Timestamp", (1000, 5))]
    r, _ = run(tcp_train(4, v6=v6, mod=same))
    assert pays(r) == [4 * PL]
    check_valid(r)


@pytest.mark.parametrize("v6", [False, True])
def test_tcp_opt_change(v6):
    def mod(i, L):
        L["tcp"].options = [("NOP", None), ("NOP", None), ("Timestamp", (1000, 5))] if i != 2 else \
            [("NOP", None), ("NOP", None), ("NOP", None), ("NOP", None), ("NOP", None), ("NOP", None),
             ("NOP", None), ("NOP", None), ("NOP", None), ("NOP", None), ("NOP", None), ("NOP", None)]
    r, _ = run(tcp_train(4, v6=v6, mod=mod))
    assert pays(r) == [2 * PL, PL, PL]


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("tos", [0x01, 0x03, 0x10])     # ECN bits, then a DSCP bit
def test_ip_ecn_and_tos(v6, tos):
    def mod(i, L):
        if i >= 2:
            if v6:
                L["l3"].tc = tos
            else:
                L["l3"].tos = tos
    r, _ = run(tcp_train(4, v6=v6, mod=mod))
    assert pays(r) == [2 * PL, 2 * PL]


@pytest.mark.parametrize("v6", [False, True])
def test_ttl_hop_limit(v6):
    def mod(i, L):
        if i >= 2:
            if v6:
                L["l3"].hlim = 3
            else:
                L["l3"].ttl = 3
    r, b = run(tcp_train(4, v6=v6, mod=mod))
    assert pays(r) == [2 * PL, 2 * PL]
    assert gro.counters_dict(gro.Coalescer().C) is not None


def test_ipv4_options_pass_alone():
    from scapy.all import IPOption_NOP
    def mod(i, L):
        if i == 1:
            L["l3"].options = [IPOption_NOP()] * 4
    r, b = run(tcp_train(3, mod=mod))
    assert pays(r) == [PL, PL, PL]
    assert b.meta["status"][1] == S.GRO_IP_OPTS
    check_valid(r)


@pytest.mark.parametrize("v6", [False, True])
def test_fragments_pass_alone(v6):
    from scapy.all import IPv6ExtHdrFragment
    def mod(i, L):
        if i == 1:
            if v6:
                L["ext"] = IPv6ExtHdrFragment(m=1, id=5)
            else:
                L["l3"].flags = "MF"
    r, b = run(tcp_train(3, v6=v6, mod=mod))
    assert len(r.batch) == 3
    assert b.meta["status"][1] == S.GRO_FRAGMENT


@pytest.mark.parametrize("df", [True, False])
@pytest.mark.parametrize("fixed", [True, False])
def test_ip_id_fixed_and_incrementing(df, fixed):
    ids = [77] * 4 if fixed else [77, 78, 79, 80]
    r, b = run(tcp_train(4, df=df, ip_ids=ids))
    assert pays(r) == [4 * PL]
    assert r.batch.meta["status"][0] == (S.GRO_HEAD_FIXEDID if fixed else S.GRO_HEAD)
    assert Ether(r.batch.to_frames()[0])[IP].id == 77
    # pre-2025 kernels: fixed IDs need DF
    r, _ = run(tcp_train(4, df=df, ip_ids=ids), fixedid_needs_df=True)
    assert pays(r) == ([4 * PL] if (df or not fixed) else [PL] * 4)


def test_ip_id_wraps_and_wrong_step():
    r, _ = run(tcp_train(4, ip_ids=[0xFFFE, 0xFFFF, 0, 1]))
    assert pays(r) == [4 * PL]
    r, _ = run(tcp_train(4, ip_ids=[10, 12, 14, 16]))
    assert pays(r) == [PL] * 4
    r, _ = run(tcp_train(4, ip_ids=[10, 11, 11, 12]))
    assert pays(r) == [2 * PL, 2 * PL]


def test_ipv6_ext_headers():
    r, _ = run(tcp_train(4, v6=True, ext=dest_opts()))
    assert pays(r) == [4 * PL]
    check_valid(r)
    # a different extension header makes a different flow
    def mod(i, L):
        if i == 2:
            L["ext"] = dest_opts(pad=12)
    r, _ = run(tcp_train(4, v6=True, ext=dest_opts(), mod=mod))
    assert sorted(pays(r)) == sorted([2 * PL, PL, PL])


def test_ipv6_flow_label_is_part_of_the_key():
    def mod(i, L):
        L["l3"].fl = 5 if i % 2 else 6
    r, _ = run(tcp_train(4, v6=True, mod=mod))
    assert len(r.batch) == 4      # alternating labels: neighbours never same-flow, seq gaps


@pytest.mark.parametrize("v6", [False, True])
def test_large_max_and_rem(v6):
    # large_max: segments filling the aggregate to the 64 KB limit merge; one more does not
    hdr = 40 if v6 else 20
    seg = 1000
    nfit = (65535 - hdr - 20) // seg                      # aggregate L3 length stays <= 65535
    r, _ = run(tcp_train(nfit + 1, pay=seg, v6=v6))
    assert pays(r) == [nfit * seg, seg]
    # large_rem: a last shorter segment that still fits joins; one too large starts anew
    room = 65535 - hdr - 20 - nfit * seg
    r, _ = run(tcp_train(nfit + 1, v6=v6, sizes=[seg] * nfit + [room]))
    assert pays(r) == [nfit * seg + room]
    r, _ = run(tcp_train(nfit + 1, v6=v6, sizes=[seg] * nfit + [room + 1]))
    assert pays(r) == [nfit * seg, room + 1]
    check_valid(r)


@pytest.mark.parametrize("v6", [False, True])
def test_big_tcp(v6):
    r, _ = run(tcp_train(100, pay=1400, v6=v6), max_size=200_000, csum="full")
    assert pays(r) == [140_000]
    f = r.batch.to_frames()[0]
    p = Ether(f)
    if v6:
        assert p[IPv6].plen == 0 and p[IPv6].nh == 0     # hop-by-hop jumbo option in front of TCP
        assert int.from_bytes(f[14 + 40 + 4:14 + 40 + 8], "big") == 8 + 20 + 140_000
    else:
        assert p[IP].len == 0
    assert r.batch.meta[0]["pflags"] & (S.PF_JUMBO if v6 else S.PF_LEN0)
    assert l4_ok(f, r.batch.meta[0])
    assert payload_of(f) == b"".join(payload_of(x) for x in tcp_train(100, pay=1400, v6=v6))


def test_vlan_trains_and_distinct_tags():
    r, _ = run(tcp_train(4, vlan=7) + tcp_train(4, vlan=8))
    assert pays(r) == [4 * PL, 4 * PL]
    def mod(i, L):
        L["vlan"] = 7 if i % 2 == 0 else 8
    r, _ = run(tcp_train(4, mod=mod))
    assert len(r.batch) == 4


def test_interleaved_flows_merge_separately():
    a = tcp_train(6, sport=1)
    c = tcp_train(6, sport=2, v6=True)
    d = udp_train(6, sport=3)
    fr = [x for t in zip(a, c, d) for x in t]
    r, b = run(fr)
    assert sorted(pays(r)) == [6 * PL] * 3
    out = {Ether(f).sport: payload_of(f) for f in r.batch.to_frames()}
    assert out[1] == b"".join(payload_of(x) for x in a)
    assert out[2] == b"".join(payload_of(x) for x in c)
    assert out[3] == b"".join(payload_of(x) for x in d)


@pytest.mark.parametrize("v6", [False, True])
def test_udp_gro(v6):
    r, _ = run(udp_train(5, v6=v6))
    assert pays(r) == [5 * PL]
    m = r.batch.meta[0]
    assert (m["gso_type"], m["gso_size"], m["csum_offset"]) == (V.GSO_UDP_L4, PL, 6)
    check_valid(r)
    r, _ = run(udp_train(5, v6=v6), csum="full")
    check_valid(r, full=True)
    # last shorter closes; larger starts a new aggregate
    r, _ = run(udp_train(4, v6=v6, sizes=[PL, PL // 2, PL, PL]))
    assert pays(r) == [PL + PL // 2, 2 * PL]
    r, _ = run(udp_train(4, v6=v6, sizes=[PL // 2, PL, PL, PL]))
    assert pays(r) == [PL // 2, 3 * PL]
    # at most 64 datagrams
    r, _ = run(udp_train(70, v6=v6, pay=10))
    assert pays(r) == [640, 60]
    r, _ = run(udp_train(5, v6=v6), udp=False)
    assert len(r.batch) == 5


def test_udp_zero_checksum_passes_alone():
    def mod(i, L):
        if i == 1:
            L["udp"].chksum = 0
    r, b = run(udp_train(3, mod=mod))
    assert b.meta["status"][1] == S.GRO_UDP_NO_CSUM and len(r.batch) == 3


def test_not_ip_and_malformed_pass_through():
    fr = [bytes(Ether(type=0x88B5) / Raw(b"x" * 50)), b"\x00" * 10] + tcp_train(3)
    fr.append(tcp_train(1)[0][:40])
    r, b = run(fr)
    assert [int(x) for x in b.meta["status"][:2]] == [S.GRO_NOT_TCP_UDP, S.GRO_MALFORMED]
    assert b.meta["status"][-1] == S.GRO_MALFORMED
    outs = r.batch.to_frames()
    assert outs[:3] == [fr[0], fr[1], fr[-1]]     # passed through untouched, at once
    assert pays(r)[3] == 3 * PL


def test_padded_frame_passes_alone():
    fr = tcp_train(3, pay=2)
    assert len(fr[1]) < 60
    fr[1] = fr[1] + b"\x00" * (60 - len(fr[1]))
    r, b = run(fr)
    assert b.meta["status"][1] == S.GRO_L2_PAD and r.batch.to_frames()[1] == fr[1]


def test_every_input_frame_accounted_for():
    fr = tcp_train(5, mod=_flag_at(2, "S")) + udp_train(3) + tcp_train(2, sizes=[0, 0], sport=9)
    r, b = run(fr)
    st = b.meta["status"]
    assert int((st == S.GRO_MERGED).sum()) + len(r.batch) == len(fr)
    assert int(r.batch.meta["seg"].sum()) == len(fr)
    c = r.counters
    assert c["frames_in"] == len(fr) and c["frames_out"] == len(r.batch) and c["merged"] == int((st == S.GRO_MERGED).sum())


# --- streaming ---------------------------------------------------------------------

def test_table_holds_across_pushes_and_flushes_on_timeout():
    fr = tcp_train(8)
    t = gro.GroTable(max_flows=16, timeout_ns=1000)
    out = t.push(PacketBatch.from_frames(fr[:4]), now=0)
    assert len(out) == 0 and t.held == 4 and t.flows == 1
    out = t.push(PacketBatch.from_frames(fr[4:6]), now=500)
    assert len(out) == 0 and t.held == 6
    out = t.push(PacketBatch.from_frames(fr[6:]), now=2000)
    # the frames of the third push arrive at 2000: the aggregate (first frame at 0) is older
    # than the timeout, so it goes before them; the last two then wait past 'now'? no: they
    # start at 2000, not older than 1000 at now=2000
    assert pays_b(out) == [6 * PL] and t.held == 2
    out = t.flush()
    assert pays_b(out) == [2 * PL] and t.held == 0 and t.flows == 0
    c = t.counters
    assert c["flush"] == {"timeout": 1, "end": 1}


def pays_b(b):
    return [int(x) for x in b.meta["pay_len"]]


def test_table_bounded_flows_evicts_oldest():
    t = gro.GroTable(max_flows=4)
    fr = []
    for k in range(8):
        fr += tcp_train(2, sport=100 + k)
    out = t.push(PacketBatch.from_frames(fr))
    assert t.flows == 4 and len(out) == 4 and t.counters["flush"]["evict"] == 4
    out = t.flush()
    assert len(out) == 4
    assert t.memory_bytes > 0


def test_table_bounded_store_and_too_big():
    t = gro.GroTable(max_flows=8, max_held=4, slot_size=256)
    got = sum(pays_b(t.push(PacketBatch.from_frames(tcp_train(6)))))   # (a view: read before the next call)
    assert t.held <= 4 and t.counters["flush"]["evict"] == 1
    assert got + sum(pays_b(t.flush())) == 6 * PL
    t = gro.GroTable(max_flows=8, slot_size=128)
    out = t.push(PacketBatch.from_frames(tcp_train(2, pay=500)))
    assert list(out.meta["status"]) == [S.GRO_TOO_BIG] * 2


def test_table_moves_finished_aggregates_out_of_their_regions():
    """One spare region (max_flows=4): a burst that closes 20 aggregates (PSH ends each
    train) must move each finished one out of its region before the region is reused
    (_reclaim), and give what the burst engine gives, in the same order."""
    fr = []
    for k in range(20):
        fr += tcp_train(3, sport=300 + k, mod=_flag_at(2, "P"), pay=100 + k)
    r, _ = run(fr)
    t = gro.GroTable(max_flows=4)
    out = t.push(PacketBatch.from_frames(fr))
    assert out.to_frames() == r.batch.to_frames()
    assert [tuple(m) for m in out.meta] == [tuple(m) for m in r.batch.meta]
    assert t.held == 0 and len(t.flush()) == 0


def test_table_arena_grows_with_open_aggregates():
    """Growing the arena (the area for frames passed alone outgrows it as more bytes are
    held) keeps the open aggregates, which move to the new arena with their regions."""
    t = gro.GroTable(max_flows=512)
    trains = [tcp_train(3, sport=1000 + k, pay=1400) for k in range(400)]
    cap0 = None
    for i in range(2):      # two segments of each flow: 800 frames held, 1.1 MB
        out = t.push(PacketBatch.from_frames([tr[i] for tr in trains]))
        assert len(out) == 0
        cap0 = cap0 or t.arena.capacity
    assert t.flows == 400 and t.held == 800
    out = t.push(PacketBatch.from_frames([tr[2] for tr in trains]))
    assert t.arena.capacity > cap0, "the test must make the arena grow"
    got = out.to_frames() + t.flush().to_frames()
    r, _ = run([f for tr in trains for f in tr])
    assert sorted(got) == sorted(r.batch.to_frames()) and len(got) == 400


def test_table_equals_burst_when_flushed():
    fr = tcp_train(5, mod=_flag_at(3, "P")) + udp_train(4, sport=7) + tcp_train(4, v6=True, sport=8)
    r, _ = run(fr)
    t = gro.GroTable()
    outs = []
    for k in range(0, len(fr), 3):
        outs += t.push(PacketBatch.from_frames(fr[k:k + 3])).to_frames()
    outs += t.flush().to_frames()
    assert sorted(outs) == sorted(r.batch.to_frames())


def test_read_only_input_like_an_mmapped_capture():
    fr = tcp_train(4)
    b = PacketBatch.from_frames(fr)
    ro = b.buf.copy()
    ro.flags.writeable = False
    rb = PacketBatch(ro, b.off, b.len)
    r = gro.coalesce(rb)
    assert pays(r) == [4 * PL]
    t = gro.GroTable()
    assert len(t.push(rb)) == 0 and pays_b(t.flush()) == [4 * PL]


# --- frames GRO does not merge keep their virtio_net_hdr; CHECKSUM_PARTIAL frames merge ------

def out_vnet(b, k):
    m = b.meta[k]
    return tuple(int(m[f]) for f in ("vnet_flags", "gso_type", "hdr_len", "gso_size", "csum_start", "csum_offset"))


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("csum", ["partial", "full"])
def test_partial_checksum_frames_merge_like_valid_ones(v6, csum):
    """Linux skips checksum validation of CHECKSUM_PARTIAL frames (skb_gro_checksum_validate)
    and merges them (test_gro_kernel.py shows the kernel doing it): the aggregate of a
    partial train is the aggregate of the same train with valid checksums."""
    fr = tcp_train(4, v6=v6)
    pf = [partialize(f) for f in fr]
    assert pf != fr
    want = gro.coalesce(PacketBatch.from_frames(fr), csum=csum)
    got = gro.coalesce(PacketBatch.from_frames(pf, vnet=[partial_vnet(f) for f in pf]), csum=csum)
    assert got.batch.to_frames() == want.batch.to_frames()
    assert [out_vnet(got.batch, k) for k in range(len(got.batch))] == [out_vnet(want.batch, k) for k in range(len(want.batch))]
    assert len(got.batch) == 1 and got.counters["merged"] == 3
    # mixed: valid head, partial rest
    mixed = gro.coalesce(PacketBatch.from_frames([fr[0]] + pf[1:], vnet=[(0,) * 6] + [partial_vnet(f) for f in pf[1:]]),
                         csum=csum)
    assert mixed.batch.to_frames() == want.batch.to_frames()


@pytest.mark.parametrize("v6", [False, True])
def test_partial_checksum_frame_alone_keeps_its_header(v6):
    """A CHECKSUM_PARTIAL frame that merges with nothing (alone, PSH alone, pure ACK, after a
    flow change) leaves as it came: same bytes, same virtio_net_hdr (NEEDS_CSUM with its
    csum_start/csum_offset) -- not DATA_VALID, its checksum field is only the pseudo sum."""
    one = partialize(tcp_train(1, v6=v6)[0])
    ack = partialize(tcp_train(1, v6=v6, sizes=[0])[0])
    syn = partialize(tcp_train(1, v6=v6, mod=lambda i, L: setattr(L["tcp"], "flags", "S"))[0])
    frames = [one, ack, syn]
    vn = [partial_vnet(f) for f in frames]
    for verify in (True, False):
        r = gro.coalesce(PacketBatch.from_frames(frames, vnet=vn), verify=verify)
        assert r.batch.to_frames() == frames
        assert [out_vnet(r.batch, k) for k in range(3)] == vn
        assert "GRO_BAD_CSUM" not in r.counters["status"]
    t = gro.GroTable(max_flows=4)
    pushed = t.push(PacketBatch.from_frames([one], vnet=[vn[0]]))
    got = [(out_vnet(pushed, k), f) for k, f in enumerate(pushed.to_frames())]
    fl = t.flush()
    got += [(out_vnet(fl, k), f) for k, f in enumerate(fl.to_frames())]
    assert got == [(vn[0], one)]


def test_frames_gro_does_not_touch_keep_their_header():
    """Super-packets (gso_type set), non-IP frames, fragments, IPv4 options: passed as they
    came, virtio_net_hdr included, in order with the aggregates of their flow."""
    fr = tcp_train(3)
    sp = gro.coalesce(PacketBatch.from_frames(tcp_train(3, seq0=999000, sport=4100)))
    sp_frame = sp.batch.to_frames()[0]
    sp_vnet = out_vnet(sp.batch, 0)
    assert sp_vnet[1] == V.GSO_TCPV4
    arp = bytes(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=0x0806) / Raw(b"\x00" * 28))
    frag = bytes(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") / IP(src="10.0.0.1", dst="10.0.0.2", proto=6, flags="MF")
                 / Raw(b"x" * 40))
    frames = [fr[0], fr[1], sp_frame, arp, frag, fr[2]]
    vn = [(0,) * 6, (0,) * 6, sp_vnet, (V.F_DATA_VALID, 0, 0, 0, 0, 0), (0, 0, 7, 0, 0, 0), (0,) * 6]
    r = gro.coalesce(PacketBatch.from_frames(frames, vnet=vn))
    outs = r.batch.to_frames()
    st = [S.NAMES.get(int(x)) for x in r.batch.meta["status"]]
    k = outs.index(sp_frame)
    assert out_vnet(r.batch, k) == sp_vnet and int(r.batch.meta["status"][k]) == S.GRO_ALREADY_GSO
    assert out_vnet(r.batch, outs.index(arp)) == vn[3]
    assert out_vnet(r.batch, outs.index(frag)) == vn[4]
    assert sorted(st) == ["GRO_ALREADY_GSO", "GRO_FRAGMENT", "GRO_HEAD", "GRO_NOT_TCP_UDP"], st
    # fr[0..2] merged: the other flows' frames in between do not split them
    assert int(r.batch.meta["seg"][st.index("GRO_HEAD")]) == 3
