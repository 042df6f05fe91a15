"""The parser against scapy (the oracle) on every field of ``meta``, and its status codes
against the damage done to a frame."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, UDP, Ether, Raw, raw
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, Jumbo

import strategies as FS
from invariants import parsed_meta_violations
from offload import PacketBatch, status as S
from offload.batch import LINK_ETHERNET, LINK_IPV6, LINK_RAW
from offload.parse import parse_batch

FIELDS = ("vlan_count", "l3_off", "l3_proto", "l3_hdr_len", "ext_len", "l3_end", "dst_off",
          "l4_off", "l4_proto", "l4_hdr_len", "pay_off", "pay_len", "pflags")
HYP = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def parse(frame: bytes, link: int = LINK_ETHERNET):
    b = PacketBatch.from_frames([frame], link=link)
    parse_batch(b)
    return b.meta[0]


def flags_names(v):
    return [k for k in dir(S) if k.startswith("PF_") and v & getattr(S, k)]


def assert_layout(m, exp, ctx=""):
    got = {k: int(m[k]) for k in exp}
    diff = {k: (got[k], exp[k]) for k in exp if got[k] != exp[k]}
    if "pflags" in diff:
        diff["pflags"] = (flags_names(got["pflags"]), flags_names(exp["pflags"]))
    assert not diff, f"parser vs scapy (got, expected): {diff} {ctx}"


# ---------------------------------------------------------------- agreement with scapy
@HYP
@given(FS.frames())
def test_parser_agrees_with_scapy_on_every_field(b):
    m = parse(b.frame, b.link)
    assert m["status"] == S.OK, (S.NAMES[int(m["status"])], b.pkt.summary())
    assert_layout(m, FS.expected_layout(b.frame, b.link), b.pkt.summary())
    # the pseudo-header destination is the one scapy's checksum uses (routing headers)
    d = int(m["dst_off"])
    alen = 16 if m["l3_proto"] == 0x86DD else 4
    fd = FS.final_destination(b.frame, b.link)
    assert fd is None or b.frame[d:d + alen] == fd
    assert not parsed_meta_violations(np.array([m]), np.array([len(b.frame)]))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(FS.frames(jumbo=False, max_payload=400), min_size=1, max_size=12))
def test_batch_parse_equals_frame_by_frame(bs):
    """Frames of mixed link types at odd offsets of one arena parse as they do alone."""
    from offload.batch import new_meta
    frames = [b.frame for b in bs]
    offs, pos = [], 3
    for f in frames:
        offs.append(pos)
        pos += len(f) + 5
    buf = np.zeros(pos, np.uint8)
    for o, f in zip(offs, frames):
        buf[o:o + len(f)] = np.frombuffer(f, np.uint8)
    meta = new_meta(len(frames))
    meta["link"] = [b.link for b in bs]
    batch = PacketBatch(buf, offs, [len(f) for f in frames], meta=meta)
    assert parse_batch(batch) == len(frames)
    for k, b in enumerate(bs):
        alone = parse(b.frame, b.link)
        assert all(int(batch.meta[k][f]) == int(alone[f]) for f in FIELDS + ("status",))


# ---------------------------------------------------------------- truncation, every byte
def expected_cut_status(exp: dict, link: int, k: int) -> int:
    """What a frame cut to ``k`` bytes must report, from the layout of the intact frame."""
    l3 = exp["l3_off"]
    if link in (LINK_RAW, 12, 14) and k == 0:
        return S.TRUNC_L3
    if k < l3:
        return S.TRUNC_L2
    v6 = exp["l3_proto"] == 0x86DD
    if k < l3 + (40 if v6 else 20):
        return S.TRUNC_L3
    if k < exp["l4_off"]:
        return S.TRUNC_EXT if v6 else S.TRUNC_L3
    if k < exp["pay_off"]:
        return S.TRUNC_L4
    if k < exp["l3_end"]:
        return S.TRUNC_PAYLOAD
    return S.OK


@HYP
@given(FS.frames(jumbo=False, max_payload=200), st.data())
def test_truncation_at_every_byte_has_the_precise_status(b, data):
    exp = FS.expected_layout(b.frame, b.link)
    assume(not exp["pflags"] & S.PF_LEN0)
    cuts = range(len(b.frame) + 1) if len(b.frame) <= 120 else \
        sorted(set(data.draw(st.lists(st.integers(0, len(b.frame)), min_size=20, max_size=40))))
    for k in cuts:
        m = parse(b.frame[:k], b.link)
        want = expected_cut_status(exp, b.link, k)
        assert int(m["status"]) == want, (k, S.NAMES[int(m["status"])], S.NAMES[want], b.pkt.summary())
        assert not parsed_meta_violations(np.array([m]), np.array([k]))


def test_truncated_jumbogram_inside_a_later_extension_header_is_trunc_ext():
    """Regression (jumbo_truncated_ext_reported_as_overrun): with IPv6 payload length 0 the
    parser used the frame end as the packet end while walking extension headers, so a
    jumbogram cut inside the header after the hop-by-hop one said EXT_OVERRUN."""
    pay = b"z" * 70000
    pkt = IPv6(plen=0, nh=0) / IPv6ExtHdrHopByHop(nh=60, options=[Jumbo(jumboplen=0)]) \
        / IPv6ExtHdrDestOpt(nh=6, options=[]) / TCP() / Raw(pay)
    pkt[Jumbo].jumboplen = len(raw(pkt)) - 40
    f = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt)
    assert parse(f)["status"] == S.OK
    cut = 14 + 40 + 8 + 4          # inside the destination-options header
    assert parse(f[:cut])["status"] == S.TRUNC_EXT


def test_ipv6_non_first_fragment_data_is_not_walked_as_headers():
    """Regression (ipv6_nonfirst_fragment_walked_as_headers): bytes after the fragment
    header of a non-first fragment are fragment data, not extension headers."""
    data = bytes([43, 0, 0, 8, 0, 0, 0, 0]) * 4   # looks like a routing header chain
    f = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(nh=44) / IPv6ExtHdrFragment(nh=43, offset=100, m=1) / Raw(data))
    m = parse(f)
    assert m["status"] == S.OK
    assert int(m["ext_len"]) == 8 and int(m["l4_proto"]) == 43
    assert int(m["l4_off"]) == int(m["pay_off"]) == 14 + 48 and int(m["pay_len"]) == len(data)


# ---------------------------------------------------------------- precise status for a lie
v4 = FS.frames(v6=False, links=(LINK_ETHERNET, 101, 113, 276, 0), jumbo=False, max_payload=200)
v6 = FS.frames(v6=True, links=(LINK_ETHERNET, 101, 113, 276, 229), jumbo=False, max_payload=200)


def _mod(frame, off, fmt, val):
    f = bytearray(frame)
    struct.pack_into(fmt, f, off, val)
    return bytes(f)


@HYP
@given(v4, st.integers(0, 4))
def test_ipv4_ihl_below_5_is_bad_ihl(b, ihl):
    l3 = FS.expected_layout(b.frame, b.link)["l3_off"]
    assert parse(_mod(b.frame, l3, "B", 0x40 | ihl), b.link)["status"] == S.BAD_IHL


@HYP
@given(v4, st.data())
def test_ipv4_total_length_below_header_is_bad_ip_len(b, data):
    e = FS.expected_layout(b.frame, b.link)
    tl = data.draw(st.integers(1, e["l3_hdr_len"] - 1))
    assert parse(_mod(b.frame, e["l3_off"] + 2, "!H", tl), b.link)["status"] == S.BAD_IP_LEN


@HYP
@given(FS.frames(l4=("tcp",), frag=False, jumbo=False, max_payload=100), st.integers(0, 4))
def test_tcp_data_offset_below_5_is_bad_tcp_doff(b, doff):
    e = FS.expected_layout(b.frame, b.link)
    o = e["l4_off"] + 12
    f = _mod(b.frame, o, "B", (doff << 4) | (b.frame[o] & 15))
    assert parse(f, b.link)["status"] == S.BAD_TCP_DOFF


@HYP
@given(FS.frames(l4=("tcp",), frag=False, jumbo=False, max_payload=30), st.integers(5, 15))
def test_tcp_data_offset_past_the_ip_packet_is_bad_l4_len(b, doff):
    e = FS.expected_layout(b.frame, b.link)
    assume(e["l4_off"] + doff * 4 > e["l3_end"])
    o = e["l4_off"] + 12
    f = _mod(b.frame, o, "B", (doff << 4) | (b.frame[o] & 15))
    assert parse(f, b.link)["status"] == S.BAD_L4_LEN


@HYP
@given(FS.frames(l4=("udp",), frag=False, jumbo=False, max_payload=200), st.data())
def test_udp_length_that_lies_is_bad_l4_len(b, data):
    e = FS.expected_layout(b.frame, b.link)
    avail = e["l3_end"] - e["l4_off"]
    ulen = data.draw(st.one_of(st.integers(1, 7), st.integers(avail + 1, 0xFFFF)))
    assert parse(_mod(b.frame, e["l4_off"] + 4, "!H", ulen), b.link)["status"] == S.BAD_L4_LEN
    # 0 means "longer than 64 KB" (jumbogram / USO) and a packet this small cannot be that
    assert parse(_mod(b.frame, e["l4_off"] + 4, "!H", 0), b.link)["status"] == S.BAD_L4_LEN


@HYP
@given(FS.frames(links=(LINK_ETHERNET,), jumbo=False, max_payload=60, max_vlans=0), st.integers(1, 14))
def test_vlan_stacks_up_to_max_vlans_parse_and_deeper_ones_are_refused(b, k):
    tags = b"".join(struct.pack("!HH", 0x8100, j) for j in range(k))
    f = b.frame[:12] + tags + b.frame[12:]
    m = parse(f)
    if k <= S.MAX_VLANS:
        assert m["status"] == S.OK and m["vlan_count"] == k
    else:
        assert m["status"] == S.TOO_MANY_VLANS


@HYP
@given(v4 | v6, st.sampled_from([0, 1, 2, 3, 5, 7, 8, 15]))
def test_ip_version_nibble_that_contradicts_the_link_is_bad_ip_version(b, ver):
    e = FS.expected_layout(b.frame, b.link)
    l3 = e["l3_off"]
    right = 6 if e["l3_proto"] == 0x86DD else 4
    assume(ver != right)
    f = _mod(b.frame, l3, "B", (ver << 4) | (b.frame[l3] & 15))
    st_ = parse(f, b.link)["status"]
    if b.link == LINK_RAW:
        # raw IP: the nibble *is* the protocol; anything else is not IP at all
        assert st_ in (S.NOT_IP, S.TRUNC_L3, S.BAD_IHL, S.BAD_IP_LEN, S.TRUNC_PAYLOAD, S.BAD_L4_LEN, S.TRUNC_L4,
                       S.BAD_TCP_DOFF, S.OK, S.TRUNC_EXT, S.EXT_OVERRUN, S.BAD_OPTION, S.EXT_CHAIN,
                       S.BAD_EXT_ORDER, S.BAD_JUMBO)
    else:
        assert st_ == S.BAD_IP_VERSION


def _v6_with_chain(hdrs: bytes, first_nh: int, tail=b"", link_eth=True):
    base = raw(IPv6(nh=first_nh, plen=len(hdrs) + len(tail)))
    f = base + hdrs + tail
    return (raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x86DD)) + f) if link_eth else f


def test_extension_chain_at_the_cap_parses_and_one_more_is_ext_chain():
    def chain(k):
        return b"".join(bytes([60 if j + 1 < k else 59, 0, 1, 4, 0, 0, 0, 0]) for j in range(k))
    assert parse(_v6_with_chain(chain(S.MAX_EXT_HEADERS), 60))["status"] == S.OK
    assert parse(_v6_with_chain(chain(S.MAX_EXT_HEADERS + 1), 60))["status"] == S.EXT_CHAIN
    # a "loop": every header names another destination-options header, forever
    loop = bytes([60, 0, 1, 4, 0, 0, 0, 0]) * 200
    assert parse(_v6_with_chain(loop, 60))["status"] == S.EXT_CHAIN


def test_hop_by_hop_after_another_header_is_bad_ext_order():
    hdrs = bytes([0, 0, 1, 4, 0, 0, 0, 0]) + bytes([59, 0, 1, 4, 0, 0, 0, 0])
    assert parse(_v6_with_chain(hdrs, 60))["status"] == S.BAD_EXT_ORDER


@pytest.mark.parametrize("hlen,plen_extra,want", [
    (255, 0, S.EXT_OVERRUN),     # 2048-byte header in a packet that declares 8
    (1, 0, S.EXT_OVERRUN),       # 16 bytes declared, 8 in the packet
    (0, 0, S.OK),
])
def test_extension_header_length_vs_packet(hlen, plen_extra, want):
    hdrs = bytes([59, hlen, 1, 4, 0, 0, 0, 0])
    assert parse(_v6_with_chain(hdrs, 60))["status"] == want


def test_extension_header_longer_than_the_frame_but_inside_the_declared_packet_is_trunc_ext():
    hdrs = bytes([59, 255, 1, 4, 0, 0, 0, 0])
    f = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x86DD)) + raw(IPv6(nh=60, plen=2048)) + hdrs
    assert parse(f)["status"] == S.TRUNC_EXT


@pytest.mark.parametrize("optlen,want", [(255, S.BAD_OPTION), (0, S.OK), (4, S.OK), (5, S.BAD_OPTION)])
def test_option_lengths_0_and_255(optlen, want):
    """Regression (dstopts_tlvs_not_checked): destination-options TLVs were not walked, so a
    TLV running past its header went unnoticed."""
    # destination options: 8 bytes = nh, len, then 6 bytes of options: one TLV with optlen
    hdrs = bytes([59, 0, 0x1E, optlen]) + bytes(4)
    m = parse(_v6_with_chain(hdrs, 60))
    if optlen == 0:
        # a zero-length TLV leaves 2 bytes: a PadN of length 0 follows from the zeros
        assert m["status"] == S.OK
    else:
        assert m["status"] == want


def test_hop_by_hop_option_length_255_is_bad_option():
    hdrs = bytes([59, 0, 0x1E, 255]) + bytes(4)
    assert parse(_v6_with_chain(hdrs, 0))["status"] == S.BAD_OPTION


# ---------------------------------------------------------------- length 0 (BIG TCP, jumbo)
def test_ipv4_total_length_0_on_a_frame_longer_than_64k_is_big_tcp():
    pay = bytes(range(256)) * 300          # 76800 bytes
    f = bytearray(raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(flags="DF") / TCP(flags="A") / Raw(pay[:100])))
    f = bytes(f[:14 + 40]) + pay
    f = _mod(f, 14 + 2, "!H", 0)
    m = parse(f)
    assert m["status"] == S.OK
    assert m["pflags"] & S.PF_LEN0 and m["pflags"] & S.PF_DF
    assert int(m["l3_end"]) == len(f) and int(m["pay_off"]) == 54 and int(m["pay_len"]) == len(pay)


def test_ipv6_payload_length_0_with_jumbo_option():
    pay = b"q" * 70000
    pkt = IPv6(plen=0) / IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=0)]) / TCP() / Raw(pay)
    pkt[Jumbo].jumboplen = len(raw(pkt)) - 40
    f = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt)
    m = parse(f)
    assert m["status"] == S.OK
    assert m["pflags"] & S.PF_JUMBO and not m["pflags"] & S.PF_LEN0
    assert int(m["l3_end"]) == len(f) and int(m["pay_len"]) == len(pay) and int(m["ext_len"]) == 8
    # jumbo length that disagrees: smaller than 64 KB, or with a non-zero payload length
    small = bytearray(f)
    struct.pack_into("!I", small, 14 + 40 + 4, 1000)
    assert parse(bytes(small))["status"] == S.BAD_JUMBO
    assert parse(_mod(f, 14 + 4, "!H", 8))["status"] == S.BAD_JUMBO
    # longer than the frame: a capture cut by snaplen
    assert parse(f[:-10])["status"] == S.TRUNC_PAYLOAD


def test_ipv6_payload_length_0_without_jumbo():
    pay = b"w" * 70000
    f = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(plen=0) / TCP() / Raw(b"")) + pay
    m = parse(f)
    assert m["status"] == S.OK and m["pflags"] & S.PF_LEN0
    assert int(m["l3_end"]) == len(f) and int(m["pay_len"]) == len(pay)
    # a genuinely empty IPv6 packet ("no next header") keeps length 0
    e = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(plen=0, nh=59))
    m = parse(e)
    assert m["status"] == S.OK and not m["pflags"] & S.PF_LEN0 and int(m["l3_end"]) == len(e)
    # UDP length 0 in a BIG frame is the jumbogram convention; in a small one it lies
    big = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(plen=0) / UDP(len=0)) + pay
    assert parse(big)["status"] == S.OK
    assert parse(raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(plen=0) / UDP(len=0)) + b"x" * 100)["status"] == S.BAD_L4_LEN


def test_raw_link_types_and_unknown_link():
    """Includes regression (short_frame_wrong_version_said_trunc_l3): a short IPv4 frame
    read as IPv6 said TRUNC_L3 although its first byte already says it is not IPv6."""
    f = raw(IP() / UDP() / Raw(b"abc"))
    for link in (LINK_RAW, 12, 14, 228):
        assert parse(f, link)["status"] == S.OK
    assert parse(f, 229)["status"] == S.BAD_IP_VERSION
    assert parse(f, 9999)["status"] == S.UNKNOWN_LINK
    assert parse(b"", LINK_RAW)["status"] == S.TRUNC_L3
    assert parse(b"\x00\x00\x00\x07" + f, 0)["status"] == S.NOT_IP
    assert parse(raw(IPv6() / UDP()), LINK_IPV6)["status"] == S.OK


@pytest.mark.hostile
@HYP
@given(FS.mutated_frames())
def test_mutated_frames_keep_the_parser_promises(mf):
    m = parse(mf.frame, mf.link)
    v = parsed_meta_violations(np.array([m]), np.array([len(mf.frame)]))
    assert not v, (mf.what, v)


# ------------------------------------------- the fast path against the general path
# parse_frames/parse_one try a straight-line path for plain Ethernet(+VLAN)/IPv4/IPv6
# TCP/UDP frames first and fall back to the general parser for anything else. The fast
# path must write exactly what the general one would, and refuse (write nothing) when it
# cannot; these tests hold it to that on valid, rare and damaged frames.
from numba import njit  # noqa: E402

from offload.batch import new_meta  # noqa: E402
from offload.parse import _parse_fast, _parse_general  # noqa: E402


@njit(cache=True)
def _general_only(buf, off, ln, meta):
    for i in range(off.shape[0]):
        _parse_general(buf, off[i], ln[i], meta[i])


@njit(cache=True)
def _fast_only(buf, off, ln, meta, took):
    for i in range(off.shape[0]):
        took[i] = _parse_fast(buf, off[i], ln[i], meta[i])


def _both_paths(frames, links):
    b = PacketBatch.from_frames(frames)
    b.meta["link"] = links
    parse_batch(b)
    gen = new_meta(len(frames))
    gen["link"] = links
    _general_only(b.buf, b.off, b.len, gen)
    fast = new_meta(len(frames))
    fast["link"] = links
    fast["status"] = 0xFFFF
    took = np.zeros(len(frames), np.bool_)
    _fast_only(b.buf, b.off, b.len, fast, took)
    for k in range(len(frames)):
        want = {f: int(gen[k][f]) for f in FIELDS + ("status",)}
        got = {f: int(b.meta[k][f]) for f in FIELDS + ("status",)}
        assert got == want, (k, got, want)
        if took[k]:
            assert want["status"] == S.OK
            assert {f: int(fast[k][f]) for f in want} == want
        else:
            # refused: nothing written
            assert int(fast[k]["status"]) == 0xFFFF and int(fast[k]["l3_off"]) == -1
    return took


def test_fast_path_takes_the_common_frames():
    from scapy.all import Dot1Q
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    plain = [raw(e / IP(flags="DF") / TCP(options=[("NOP", None)] * 12) / Raw(b"x" * 100)),
             raw(e / IPv6() / TCP()), raw(e / IP(options=b"\x01" * 4) / UDP() / Raw(b"y" * 30)),
             raw(e / IPv6() / UDP()), raw(e / Dot1Q(vlan=5) / Dot1Q(vlan=6) / IP() / TCP() / Raw(b"z" * 5)),
             raw(e / IP() / TCP() / Raw(b"q" * 3)) + b"\0" * 9]     # Ethernet padding after the packet
    took = _both_paths(plain, [LINK_ETHERNET] * len(plain))
    assert took.all()


@HYP
@given(st.lists(FS.frames(max_payload=300), min_size=1, max_size=8))
def test_fast_path_writes_what_the_general_path_writes(bs):
    _both_paths([b.frame for b in bs], [b.link for b in bs])


@pytest.mark.hostile
@HYP
@given(st.lists(FS.mutated_frames(), min_size=1, max_size=8))
def test_fast_path_on_damaged_frames_writes_what_the_general_path_writes(ms):
    _both_paths([m.frame for m in ms], [m.link for m in ms])
