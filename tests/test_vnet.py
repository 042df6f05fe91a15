"""virtio_net_hdr validation: every rule of ``vnet.validate_one``, then the Linux kernel as
the oracle (AF_PACKET + PACKET_VNET_HDR on a veth in a namespace this module creates): the
headers the kernel refuses with EINVAL are exactly the ones the validator refuses."""

from __future__ import annotations

import errno
import socket

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scapy.all import IP, TCP, UDP, Dot1Q, Ether, Raw, raw
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment

import strategies as FS
from invariants import vnet_verdict_violations
from offload import PacketBatch, status as S, vnet as V
from offload.batch import LINK_ETHERNET
from offload.parse import parse_batch

HYP = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

TCP4 = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / TCP() / Raw(b"x" * 3000))        # l4 at 34, 3054 bytes
TCP6 = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6() / TCP() / Raw(b"x" * 3000))      # l4 at 54
UDP4 = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / UDP() / Raw(b"x" * 3000))


def verdict(frame: bytes, hdr) -> int:
    b = PacketBatch.from_frames([frame], vnet=[tuple(hdr)])
    parse_batch(b)
    return int(V.validate_one(len(frame), b.meta, 0))


# ---------------------------------------------------------------- every rule, by example
@pytest.mark.parametrize("frame,hdr,want", [
    (TCP4, (0, 0, 0, 0, 0, 0), S.OK),
    (TCP4, (1, 1, 54, 1448, 34, 16), S.OK),
    (TCP4, (1, 1 | 0x80, 54, 1448, 34, 16), S.OK),              # ECN with TCP is fine
    (TCP6, (1, 4, 74, 1440, 54, 16), S.OK),
    (UDP4, (1, 5, 42, 1400, 34, 6), S.OK),
    (UDP4, (0, 3, 0, 1400, 0, 0), S.OK),                        # UFO without NEEDS_CSUM
    # 1. hdr_len
    (TCP4, (0, 0, len(TCP4) + 1, 0, 0, 0), S.VNET_HDR_LEN),
    (TCP4, (0, 0, len(TCP4), 0, 0, 0), S.OK),
    # 2. type and size
    (TCP4, (1, 2, 54, 1448, 34, 16), S.VNET_BAD_GSO_TYPE),
    (TCP4, (1, 6, 54, 1448, 34, 16), S.VNET_BAD_GSO_TYPE),
    (TCP4, (1, 0x80, 54, 1448, 34, 16), S.VNET_BAD_GSO_TYPE),   # ECN alone is not a type
    (TCP4, (1, 0x7F, 54, 1448, 34, 16), S.VNET_BAD_GSO_TYPE),
    (TCP4, (1, 1, 54, 0, 34, 16), S.VNET_GSO_SIZE_ZERO),
    (TCP4, (1, 1, 54, 0xFFFF, 34, 16), S.VNET_GSO_SIZE_ZERO),   # GSO_BY_FRAGS
    # 3. csum offsets
    (TCP4, (1, 0, 0, 0, len(TCP4) - 1, 0), S.VNET_CSUM_OUTSIDE),
    (TCP4, (1, 0, 0, 0, len(TCP4) - 2, 0), S.OK),
    (TCP4, (1, 0, 0, 0, 34, 0xFFFF), S.VNET_CSUM_OUTSIDE),
    (TCP4, (1, 1, 0, 1448, len(TCP4) - 19, 16), S.VNET_CSUM_OUTSIDE),   # min TCP header past the end
    (TCP4, (1, 0, 0, 0, 19, 0), S.VNET_CSUM_START_LOW),
    (TCP4, (1, 0, 0, 0, 20, 0), S.OK),
    (TCP6, (1, 4, 0, 1440, 39, 16), S.VNET_CSUM_START_LOW),
    (TCP6, (1, 4, 0, 1440, 40, 16), S.OK),                      # the kernel trusts the offset
    (UDP4, (1, 1, 0, 1448, 34, 16), S.OK),                      # ...and not the protocol
    # 4. GSO without NEEDS_CSUM: the dissector must find the protocol
    (UDP4, (0, 1, 0, 1448, 0, 0), S.VNET_PROTO_MISMATCH),
    (TCP4, (0, 5, 0, 1400, 0, 0), S.VNET_PROTO_MISMATCH),
    (TCP6, (0, 1, 0, 1448, 0, 0), S.OK),                        # L3 not checked on AF_PACKET
    (TCP4[:40], (0, 1, 0, 1448, 0, 0), S.VNET_PROTO_MISMATCH),  # TCP header cut
    (raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q() / IP() / TCP()), (0, 1, 0, 1448, 0, 0), S.VNET_PROTO_MISMATCH),  # tagged
    (raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q() / IP() / TCP()), (1, 1, 0, 1448, 38, 16), S.OK),
    # 5. type specifics
    (UDP4, (0, 5, 0, 1400, 0, 0), S.VNET_USO_NO_CSUM),
    (UDP4, (1, 5, 0, 1400, 34, 16), S.VNET_BAD_CSUM_OFFSET),
    (UDP4, (1, 5 | 0x80, 0, 1400, 34, 6), S.VNET_USO_ECN),
    (UDP4, (1, 5, 0, 23, 34, 6), S.VNET_TOO_MANY_SEGS),         # 3008 > 23*128
    (UDP4, (1, 5, 0, 24, 34, 6), S.OK),                         # 3008 <= 24*128
    (TCP4, (1, 1, 0, 1448, 34, 6), S.VNET_BAD_CSUM_OFFSET),
    (TCP4, (0, 1, 0, 1448, 0, 6), S.OK),                        # offset ignored without NEEDS_CSUM
])
def test_each_rule(frame, hdr, want):
    got = verdict(frame, hdr)
    assert got == want, (S.NAMES.get(got), S.NAMES.get(want), V.describe_header(hdr))


def test_validate_batch_writes_codes_and_counts():
    b = PacketBatch.from_frames([TCP4, UDP4, TCP4], vnet=[(1, 1, 54, 1448, 34, 16), (0, 5, 0, 1400, 0, 0),
                                                          (1, 1, 54, 0, 34, 16)])
    st_ = V.validate_batch(b)
    assert st_.tolist() == [S.OK, S.VNET_USO_NO_CSUM, S.VNET_GSO_SIZE_ZERO]
    assert (b.meta["status"] == st_).all()


@pytest.mark.hostile
@HYP
@given(FS.mutated_frames(), FS.vnet_headers())
def test_validator_total_on_hostile_input(mf, hdr):
    b = PacketBatch.from_frames([mf.frame], vnet=[hdr], link=mf.link)
    parse_batch(b)
    v = V.validate_frames(b.len, b.meta)
    assert v in (0, 1)
    assert not vnet_verdict_violations(np.array([V.validate_one(len(mf.frame), b.meta, 0)]))


# ---------------------------------------------------------------- the kernel as the oracle
SOL_PACKET, PACKET_VNET_HDR = 263, 15


class _Sender:
    """One namespace with a veth pair (default offloads: GSO frames pass as they are) and a
    SOCK_RAW AF_PACKET socket with PACKET_VNET_HDR bound to one end."""

    def __init__(self):
        from offload import netns
        self._cm = netns.veth_pair(prefix="off-hostile", mtu=1500, dev_a="ohva0", dev_b="ohvb0")
        self.vp = self._cm.__enter__()
        try:
            with netns.in_netns(self.vp.ns_a):
                self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self.s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            self.s.bind(("ohva0", 0))
        except BaseException:
            self._cm.__exit__(None, None, None)
            raise
        self.other_errnos: dict[int, int] = {}

    def refuses(self, frame: bytes, hdr) -> bool:
        """True when the kernel refuses the header (EINVAL). Any other outcome (sent, or
        dropped later for another reason) means the header passed validation."""
        try:
            self.s.send(V.pack(*hdr) + frame)
            return False
        except OSError as e:
            if e.errno == errno.EINVAL:
                return True
            self.other_errnos[e.errno] = self.other_errnos.get(e.errno, 0) + 1
            return False

    def close(self):
        self.s.close()
        self._cm.__exit__(None, None, None)


@pytest.fixture(scope="module")
def kernel_sender():
    from conftest import require_netns
    require_netns()
    s = _Sender()
    yield s
    s.close()


def _dissector_blind_spot(frame: bytes, hdr, meta) -> bool:
    """GSO without NEEDS_CSUM on a frame whose L4 the kernel's flow dissector cannot reach
    the way the parser does (AH, headers after an IPv6 fragment header), or a frame the
    parser finds malformed (the dissector checks less): documented in validate_one."""
    if hdr[0] & 1 or hdr[1] == 0:
        return False
    if int(meta["status"]) not in (S.OK, S.TRUNC_PAYLOAD):
        return True
    try:
        p = FS.dissect(frame, LINK_ETHERNET)
    except Exception:
        return True
    names = [type(l).__name__ for l in p.iterpayloads()]
    if "AH" in names:
        return True
    if "IPv6ExtHdrFragment" in names:
        k = names.index("IPv6ExtHdrFragment")
        nxt = names[k + 1] if k + 1 < len(names) else ""
        if nxt.startswith("IPv6ExtHdr"):
            return True
    return False


@st.composite
def frame_and_headers(draw):
    """An Ethernet frame the veth accepts without GSO (<= 1514 bytes) and virtio headers
    biased to sit on the rules' edges of that frame."""
    if draw(st.integers(0, 3)) == 0:
        mf = draw(FS.mutated(FS.frames(links=(LINK_ETHERNET,), jumbo=False, max_payload=1200)))
        frame = mf.frame
    else:
        frame = draw(FS.frames(links=(LINK_ETHERNET,), jumbo=False, max_payload=1200, max_vlans=2)).frame
    assume(14 <= len(frame) <= 1514)
    b = PacketBatch.from_frames([frame])
    parse_batch(b)
    m = b.meta[0]
    n = len(frame)
    l4 = int(m["l4_off"]) if m["l4_off"] >= 0 else 34
    hdrs = []
    proto = int(m["l4_proto"])
    v6 = m["l3_proto"] == 0x86DD
    right = (4 if v6 else 1, 16) if proto == 6 else (5, 6)
    for _ in range(draw(st.integers(2, 5))):
        # a header that fits the frame (as Linux would write it), then one field changed
        h = [1, right[0], 0, draw(st.sampled_from([1448, 1400, 100, 9, 8, 4, 1])), l4, right[1]]
        k = draw(st.integers(0, 6))
        if k < 6:
            h[k] = draw(st.sampled_from({0: [0, 2, 3], 1: [0, 1, 3, 4, 5, 0x80 | right[0], 0x80, 7],
                                         2: [0, n, n + 1, l4 + 8], 3: [0, 1, 0xFFFF, 0xFFFE, 2, 3],
                                         4: [l4 - 1, l4 + 1, 19, 20, 39, 40, n - 8, n - 7, n - 2, n - 1],
                                         5: [0, 6, 16, 2, 18, n]}[k]))
        hdrs.append(tuple(h))
    for _ in range(draw(st.integers(2, 6))):
        gt = draw(st.sampled_from([0, 1, 4, 5, 3, 0x81, 0x84, 0x85, 0x83, 0x80, 2, 6, 0x7F]))
        flags = draw(st.sampled_from([0, 1, 1, 1, 2, 3]))
        cs = draw(st.one_of(st.sampled_from([l4, l4, 14, 19, 20, 34, 39, 40, 54, n - 2, n - 8, n - 20, n]),
                            st.integers(0, n + 4), st.integers(0, 0xFFFF)))
        co = draw(st.one_of(st.sampled_from([16, 6, 16, 6, 0, 2, 10, 18]), st.integers(0, 0xFFFF)))
        hl = draw(st.one_of(st.sampled_from([0, 0, 0, 0, l4 + 20, n, n + 1, 54]), st.integers(0, n + 8)))
        gsz = draw(st.one_of(st.sampled_from([1448, 1400, 1, 4, 8, 9, 10, 0, 0xFFFF, 0xFFFE]), st.integers(0, 0xFFFF)))
        hdrs.append(tuple(int(x) & 0xFFFF if k >= 2 else int(x) for k, x in enumerate((flags, gt, hl, gsz, cs, co))))
    return frame, hdrs


@pytest.mark.kernel
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame_and_headers())
def test_kernel_refuses_exactly_what_the_validator_refuses(kernel_sender, case):
    frame, hdrs = case
    b = PacketBatch.from_frames([frame] * len(hdrs), vnet=hdrs)
    parse_batch(b)
    for k, hdr in enumerate(hdrs):
        ours = int(V.validate_one(len(frame), b.meta, k))
        kernel = kernel_sender.refuses(frame, hdr)
        if kernel == (ours != S.OK):
            continue
        # where the validator cannot see what the flow dissector sees, ours may differ
        assert _dissector_blind_spot(frame, hdr, b.meta[k]), (
            f"kernel {'refuses' if kernel else 'accepts'}, validator says {S.NAMES[ours]} for "
            f"{V.describe_header(hdr)} on {len(frame)} B frame {frame[:80].hex()} "
            f"(parse {S.NAMES[int(b.meta[k]['status'])]})")
    assert not (set(kernel_sender.other_errnos) - {errno.ENOBUFS, errno.ENOMEM, errno.EMSGSIZE}), \
        kernel_sender.other_errnos


@pytest.mark.kernel
def test_kernel_agrees_on_each_rule_example(kernel_sender):
    """The rule examples above, sent through the kernel (frames of at most one MTU)."""
    small4 = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / TCP() / Raw(b"x" * 1400))
    small6 = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6() / TCP() / Raw(b"x" * 1400))
    smallu = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / UDP() / Raw(b"x" * 1400))
    vlan = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=5) / IP() / TCP() / Raw(b"x" * 1400))
    frag6 = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6() / IPv6ExtHdrFragment(nh=6, offset=0, m=1) / TCP() / Raw(b"y" * 800))
    cases = [
        (small4, (1, 1, 54, 1448, 34, 16)), (small4, (1, 1, 0, 0xFFFF, 34, 16)),
        (small4, (1, 1, 0, 0, 34, 16)), (small4, (1, 0x80, 0, 100, 34, 16)),
        (small4, (0, 0, len(small4) + 1, 0, 0, 0)), (small4, (0, 0, len(small4), 0, 0, 0)),
        (small4, (1, 0, 0, 0, 19, 0)), (small4, (1, 0, 0, 0, 20, 0)),
        (small6, (1, 4, 0, 100, 39, 16)), (small6, (1, 4, 0, 100, 40, 16)),
        (small6, (0, 1, 0, 100, 0, 0)), (smallu, (0, 1, 0, 100, 0, 0)),
        (smallu, (1, 5, 0, 10, 34, 6)), (smallu, (1, 5, 0, 11, 34, 6)),
        (smallu, (1, 0x85, 0, 100, 34, 6)), (smallu, (0, 5, 0, 100, 0, 0)),
        (smallu, (1, 5, 0, 100, 34, 16)), (small4, (1, 1, 0, 100, 34, 6)),
        (small4, (1, 0, 0, 0, len(small4) - 2, 0)), (small4, (1, 0, 0, 0, len(small4) - 1, 0)),
        (vlan, (0, 1, 0, 100, 0, 0)), (vlan, (1, 1, 0, 100, 38, 16)),
        (frag6, (0, 4, 0, 100, 0, 0)), (smallu, (0, 3, 0, 100, 0, 0)),
    ]
    for frame, hdr in cases:
        ours = verdict(frame, hdr)
        assert kernel_sender.refuses(frame, hdr) == (ours != S.OK), (V.describe_header(hdr), S.NAMES[ours])
