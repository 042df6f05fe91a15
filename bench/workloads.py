"""The frames every side of the comparison measures, built once and written to pcap.

One recipe, one file per workload: our pytest-benchmark comparison suite
(``bench/test_compare.py``) and the C peers (``bench/peers/``) read the *same*
pcap file, and both print an FNV-1a 64 hash of the frame bytes they loaded so
the runner can check they measured identical frames.

Frames (all deterministic, seeded):

* Ethernet 02:00:00:00:00:01 -> 02:00:00:00:00:02.
* IPv4 10.0.<flow>.1 -> 10.0.<flow>.2, DF, TTL 64, IP id +1 per frame of a flow;
  IPv6 fd00::<flow>:1 -> fd00::<flow>:2, hop limit 64, flow label 0x12345.
* TCP ports 40000+flow -> 5201, ACK, window 512, timestamps option (12 bytes,
  data offset 8) on GSO/GRO frames; checksum-only frames carry no options.
* Payload bytes from ``numpy.random.default_rng(seed)``.

Checksums: ``csum_*`` and ``gro_*`` inputs carry valid IPv4 and L4 checksums;
GSO super-frames carry the CHECKSUM_PARTIAL convention Linux and virtio use
(the L4 checksum field holds the folded pseudo-header sum, not inverted, over
the full L4 length) and a valid IPv4 header checksum.

Sizes in workload names and the ``size`` field are whole frame lengths in
bytes (Ethernet header included), except ``gso_*`` where ``size`` is the
super-frame length.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass, field

import numpy as np

from offload.csum import raw_sum

MAC_DST = bytes.fromhex("020000000002")
MAC_SRC = bytes.fromhex("020000000001")
TCP_ACK = 0x10
TCP_PSH = 0x08
TS_OPTION = bytes([1, 1, 8, 10]) + struct.pack("!II", 0x01020304, 0x05060708)
MSS = 1448
MSS6 = 1428


@dataclass
class Workload:
    """One measured data set.

    ``op`` is what is done to it (``raw``, ``verify4``, ``verify6``, ``fill4``,
    ``fill6``, ``complete4``, ``gso4``, ``gso6``, ``uso4``, ``gro4``, ``parse``, ``pcap``, ``pcapw``); ``size`` the
    frame length in bytes (see the module docstring); ``burst`` the number of
    frames handed over per call; ``params`` op parameters (``mss``, ``flows``).
    """

    name: str
    op: str
    size: int
    n_frames: int
    burst: int
    file: str = ""
    params: dict = field(default_factory=dict)
    n_bytes: int = 0
    fnv: str = ""
    label: str = ""


def _fold(x: int) -> int:
    while x >> 16:
        x = (x & 0xFFFF) + (x >> 16)
    return x


def _ip4(flow: int, proto: int, l4_len: int, ip_id: int) -> bytes:
    src = bytes([10, 0, flow >> 8 & 0xFF, flow & 0xFF])
    dst = bytes([10, 1, flow >> 8 & 0xFF, flow & 0xFF])
    tot = 20 + l4_len
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot if tot <= 0xFFFF else 0, ip_id & 0xFFFF, 0x4000,
                      64, proto, 0, src, dst)
    c = (~raw_sum(hdr)) & 0xFFFF
    return hdr[:10] + struct.pack("!H", c) + hdr[12:]


def _ip6(flow: int, proto: int, l4_len: int) -> bytes:
    src = bytes.fromhex("fd000000000000000000") + struct.pack("!H", flow) + bytes.fromhex("00000001")
    dst = bytes.fromhex("fd000000000000000000") + struct.pack("!H", flow) + bytes.fromhex("00000002")
    return struct.pack("!IHBB", (6 << 28) | 0x12345, l4_len, proto, 64) + src + dst


def _pseudo(ip: bytes, v6: bool, proto: int, l4_len: int) -> int:
    if v6:
        return raw_sum(ip[8:40] + struct.pack("!IxxxB", l4_len, proto))
    # a BIG TCP length (> 65535) enters the sum as two 16-bit words, as Linux adds a u32 length
    return raw_sum(ip[12:20] + struct.pack("!xBHH", proto, l4_len & 0xFFFF, l4_len >> 16))


def tcp_frame(payload: bytes, *, v6=False, flow=0, seq=1000, ip_id=0, flags=TCP_ACK, ts=True,
              partial=False) -> bytes:
    """One Ethernet/IP/TCP frame. ``partial``: L4 checksum field = pseudo-header sum
    (CHECKSUM_PARTIAL); otherwise a full valid checksum."""
    opts = TS_OPTION if ts else b""
    doff = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", 40000 + flow, 5201, seq & 0xFFFFFFFF, 1, doff << 4, flags, 512, 0, 0) + opts
    l4_len = len(tcp) + len(payload)
    ip = _ip6(flow, 6, l4_len) if v6 else _ip4(flow, 6, l4_len, ip_id)
    ps = _pseudo(ip, v6, 6, l4_len)
    c = ps if partial else (~_fold(ps + raw_sum(tcp + payload))) & 0xFFFF
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    eth = MAC_DST + MAC_SRC + struct.pack("!H", 0x86DD if v6 else 0x0800)
    return eth + ip + tcp + payload


def udp_frame(payload: bytes, *, v6=False, flow=0, ip_id=0, partial=False) -> bytes:
    l4_len = 8 + len(payload)
    udp = struct.pack("!HHHH", 40000 + flow, 5201, l4_len, 0)
    ip = _ip6(flow, 17, l4_len) if v6 else _ip4(flow, 17, l4_len, ip_id)
    ps = _pseudo(ip, v6, 17, l4_len)
    c = ps if partial else ((~_fold(ps + raw_sum(udp + payload))) & 0xFFFF or 0xFFFF)
    udp = udp[:6] + struct.pack("!H", c)
    eth = MAC_DST + MAC_SRC + struct.pack("!H", 0x86DD if v6 else 0x0800)
    return eth + ip + udp + payload


def _payload(rng, n: int) -> bytes:
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


# --- pcap (classic, microsecond, LINKTYPE_ETHERNET) -------------------------------------------

def write_pcap(path: str, frames) -> None:
    """Write ``frames`` as a little-endian microsecond pcap, snaplen 262144."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 1_000_000, i % 1_000_000, len(fr), len(fr)))
            f.write(fr)


def read_pcap(path: str) -> list[bytes]:
    """The frames of a pcap written by :func:`write_pcap` (little-endian, classic)."""
    data = open(path, "rb").read()
    if len(data) < 24 or struct.unpack_from("<I", data)[0] != 0xA1B2C3D4:
        raise ValueError(f"{path}: not a little-endian classic pcap")
    out, p = [], 24
    while p + 16 <= len(data):
        incl = struct.unpack_from("<I", data, p + 8)[0]
        out.append(data[p + 16:p + 16 + incl])
        p += 16 + incl
    return out


def fnv1a64(frames) -> str:
    """FNV-1a 64 of the frames' bytes concatenated, as 16 hex digits (the C peers print
    the same hash of what they loaded)."""
    from ._fnv import fnv1a64_bytes
    h = np.uint64(0xCBF29CE484222325)
    for fr in frames:
        h = np.uint64(fnv1a64_bytes(np.frombuffer(fr, np.uint8), h))
    return f"{int(h):016x}"


# --- the workload set ---------------------------------------------------------------------------

def _csum_frames(size: int, v6: bool, n: int, rng) -> list[bytes]:
    hdr = 14 + (40 if v6 else 20) + 20
    return [tcp_frame(_payload(rng, size - hdr), v6=v6, flow=i % 8, seq=1000 + i, ip_id=i, ts=False)
            for i in range(n)]


def _gro_frames(flows: int, per_flow: int, rng, v6=False) -> list[bytes]:
    pay = [_payload(rng, MSS) for _ in range(per_flow)]  # the same payloads in every flow
    frames = []
    for k in range(per_flow):
        for fl in range(flows):
            frames.append(tcp_frame(pay[k], v6=v6, flow=fl, seq=1000 + k * MSS, ip_id=k))
    return frames


def build(short: bool = True) -> list[tuple[Workload, list[bytes]]]:
    """Every workload with its frames. ``short`` keeps the data sets small enough to
    stay in the L2/L3 caches and run in seconds."""
    rng = np.random.default_rng(20261126)
    out = []

    def add(w: Workload, frames):
        w.n_frames = len(frames)
        w.n_bytes = int(sum(len(f) for f in frames))
        out.append((w, frames))

    for size, n in ((64, 256), (1500, 256), (9000, 64), (65536, 8)):
        add(Workload(f"raw_{size}", "raw", size, 0, n, label=f"raw sum, {size} B spans"),
            [_payload(rng, size) for _ in range(n)])
    for v6 in (False, True):
        fam = "tcp6" if v6 else "tcp4"
        for size in ((80 if v6 else 64), 1500):
            frames = _csum_frames(size, v6, 256, rng)
            for burst in (32, 256):
                op = "verify6" if v6 else "verify4"
                add(Workload(f"verify_{fam}_{size}_b{burst}", op, size, 0, burst,
                             label=f"verify IP+TCP checksums, TCP/IPv{6 if v6 else 4}, burst {burst}"), frames)
            add(Workload(f"fill_{fam}_{size}_b256", "fill6" if v6 else "fill4", size, 0, 256,
                         label=f"write IP+TCP checksums, TCP/IPv{6 if v6 else 4}, burst 256"), frames)
    # CHECKSUM_PARTIAL frames (virtio NEEDS_CSUM, csum_start = L4 offset, csum_offset = 16): the
    # L4 field holds the pseudo-header sum; completion sums from csum_start to the end
    for size in (64, 1500):
        frames = [tcp_frame(_payload(rng, size - 54), flow=i % 8, seq=1000 + i, ip_id=i, ts=False, partial=True)
                  for i in range(256)]
        add(Workload(f"complete_tcp4_{size}_b256", "complete4", size, 0, 256,
                     params={"csum_start": 34, "csum_offset": 16},
                     label="complete CHECKSUM_PARTIAL TCP/IPv4 (skb_checksum_help), burst 256"), frames)
    # MSS: segments fit a 1500-byte MTU with timestamps (IPv6's header is 20 bytes longer)
    for name, op, v6, mss, pay_len in (("gso_tcp4_16k", "gso4", False, MSS, 16384),
                                       ("gso_tcp4_64k", "gso4", False, MSS, 45 * MSS),
                                       ("gso_tcp6_64k", "gso6", True, MSS6, 45 * MSS6)):
        reps = 8
        frames = [tcp_frame(_payload(rng, pay_len), v6=v6, seq=1000 + i, ip_id=100 * i, partial=True,
                            flags=TCP_ACK | TCP_PSH) for i in range(reps)]
        add(Workload(name, op, len(frames[0]), 0, reps, params={"mss": mss},
                     label=f"GSO TCP/IPv{6 if v6 else 4}, MSS {mss}, flat output, full checksums"), frames)
    # BIG TCP: a 185 344-byte IPv4 super-packet (total length 0, as Linux sends it); only
    # software that handles more than 64 KB per packet can take it
    frames = [tcp_frame(_payload(rng, 128 * MSS), seq=1000 + i, ip_id=100 * i, partial=True,
                        flags=TCP_ACK | TCP_PSH) for i in range(4)]
    add(Workload("gso_tcp4_big", "gso4", len(frames[0]), 0, 4, params={"mss": MSS},
                 label=f"GSO BIG TCP/IPv4 (IP total length 0), MSS {MSS}, flat output, full checksums"), frames)
    frames = [udp_frame(_payload(rng, 64000), ip_id=i, partial=True) for i in range(8)]
    add(Workload("gso_udp4_64k", "uso4", len(frames[0]), 0, 8, params={"mss": 1472},
                 label="USO UDP/IPv4 (DPDK: IP fragments, UFO), 1472 B datagrams"), frames)
    for flows, per_flow in ((1, 512), (64, 16), (1024, 4)):
        frames = _gro_frames(flows, per_flow, rng)
        for burst in (32, 256):
            add(Workload(f"gro_tcp4_f{flows}_b{burst}", "gro4", len(frames[0]), 0, burst,
                         params={"flows": flows},
                         label=f"GRO TCP/IPv4 in order, {flows} flow(s), burst {burst}"), frames)
    # 64 flows, in order but every pair of segments of a flow swapped (1,0,3,2,...), and the
    # in-order train with a non-mergeable frame (pure ACK or small UDP datagram) after every 3
    frames = _gro_frames(64, 16, rng)
    swapped = []
    for k in range(0, 16, 2):
        swapped += frames[(k + 1) * 64:(k + 2) * 64] + frames[k * 64:(k + 1) * 64]
    add(Workload("gro_tcp4_f64_reorder_b256", "gro4", len(frames[0]), 0, 256, params={"flows": 64},
                 label="GRO TCP/IPv4, 64 flows, segment pairs swapped, burst 256"), swapped)
    noise = []
    for i, f in enumerate(frames):
        noise.append(f)
        if i % 3 == 2:
            noise.append(tcp_frame(b"", flow=1000 + i % 50, seq=5, ip_id=i) if i % 2 else
                         udp_frame(_payload(rng, 100), flow=1000 + i % 50, ip_id=i))
    add(Workload("gro_tcp4_f64_mixed_b256", "gro4", len(frames[0]), 0, 256, params={"flows": 64},
                 label="GRO TCP/IPv4, 64 flows in order + 1 non-mergeable frame per 3, burst 256"), noise)
    mixed = []
    for i in range(4096 if short else 65536):
        k = i % 4
        if k == 0:
            mixed.append(tcp_frame(_payload(rng, MSS), flow=i % 64, seq=i, ip_id=i))
        elif k == 1:
            mixed.append(tcp_frame(b"", flow=i % 64, seq=i, ip_id=i))
        elif k == 2:
            mixed.append(udp_frame(_payload(rng, 100 + i % 400), v6=True, flow=i % 64))
        else:
            mixed.append(tcp_frame(_payload(rng, 512), v6=True, flow=i % 64, seq=i))
    add(Workload("parse_mixed", "parse", 0, 0, 256,
                 label="parse Ethernet/IPv4|IPv6/TCP|UDP, mixed sizes, burst 256"), mixed)
    add(Workload("pcap_mixed", "pcap", 0, 0, len(mixed),
                 label="read a pcap file (page cache) and parse every frame"), mixed)
    add(Workload("pcapw_mixed", "pcapw", 0, 0, len(mixed),
                 label="write every frame to a pcap in memory (classic pcap, microsecond)"), mixed)
    return out


def materialize(workdir: str, short: bool = True) -> list[Workload]:
    """Write every workload's pcap under ``workdir`` (skipped when an identical one is
    there) and ``manifest.json``; return the workloads."""
    os.makedirs(workdir, exist_ok=True)
    ws = []
    for w, frames in build(short):
        w.file = os.path.join(workdir, w.name + ".pcap")
        w.fnv = fnv1a64(frames)
        if w.op in ("parse", "pcap", "pcapw"):
            w.size = int(round(w.n_bytes / w.n_frames))
        tmp = w.file + ".tmp"
        write_pcap(tmp, frames)
        if not (os.path.exists(w.file) and _same(tmp, w.file)):
            os.replace(tmp, w.file)
        else:
            os.remove(tmp)
        ws.append(w)
    with open(os.path.join(workdir, "manifest.json"), "w") as f:
        json.dump([asdict(w) for w in ws], f, indent=1)
    return ws


def _same(a: str, b: str) -> bool:
    return hashlib.sha256(open(a, "rb").read()).digest() == hashlib.sha256(open(b, "rb").read()).digest()


def load_manifest(workdir: str) -> list[Workload]:
    with open(os.path.join(workdir, "manifest.json")) as f:
        return [Workload(**d) for d in json.load(f)]


def default_workdir() -> str:
    return os.environ.get("OFFLOAD_BENCH_WORKDIR") or os.path.join(os.path.dirname(__file__), "out", "work")
