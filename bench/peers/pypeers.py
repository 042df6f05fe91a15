"""scapy and dpkt on the same workload frames, for what they can do.

What each measures (every row's ``notes`` says it again):

* checksums: scapy and dpkt have no verify call; a user rebuilds the packet with the
  checksum fields cleared and compares (verify) or keeps the rebuild (fill). That is
  parse + serialise + checksum, per packet, in Python.
* raw sum: ``scapy.utils.checksum`` and ``dpkt.in_cksum`` over each span.
* USO/UFO: scapy's ``fragment()`` cuts the UDP/IPv4 super-datagram into IP fragments
  (UFO, not USO: one UDP header, IPv4 fragments; checksums of the IP headers written).
* parse: ``dpkt.ethernet.Ethernet(frame)`` with the L4 layer touched; scapy ``Ether(frame)``.
* TCP segmentation (GSO) and GRO: neither library has them: reported as skipped.

Both libraries are orders of magnitude slower than the C peers, so they run on a
prefix of the workload (``max_frames``), stated in ``pkts_per_rep``.
"""

from __future__ import annotations

import statistics
import time

SKIP = object()


def _dpkt_rows(w, frames):
    import dpkt

    def rebuild(fr):
        eth = dpkt.ethernet.Ethernet(fr)
        ip = eth.data
        found_ip = getattr(ip, "sum", None)
        found_l4 = ip.data.sum
        if isinstance(ip, dpkt.ip.IP):
            ip.sum = 0
        ip.data.sum = 0
        out = bytes(eth)
        return out, found_ip, found_l4, eth

    if w.op in ("verify4", "verify6"):
        def one(fr):
            before = bytes(fr)
            out, _, _, _ = rebuild(fr)
            return out == before
        return one, "dpkt: parse, clear IP+TCP sums, bytes() recomputes them, compare with the frame", True
    if w.op in ("fill4", "fill6"):
        def one(fr):
            return rebuild(fr)[0]
        return one, "dpkt: parse, clear IP+TCP sums, bytes() recomputes them (new bytes object)", None
    if w.op == "raw":
        return dpkt.in_cksum, "dpkt.in_cksum over each span (inverted checksum)", None
    if w.op == "parse":
        def one(fr):
            eth = dpkt.ethernet.Ethernet(fr)
            return eth.data.data
        return one, "dpkt.ethernet.Ethernet(frame): Ethernet/IP/L4 objects built eagerly", None
    if w.op == "pcap":
        def whole(path, limit):
            n = 0
            with open(path, "rb") as f:
                for _ts, buf in dpkt.pcap.Reader(f):
                    dpkt.ethernet.Ethernet(buf)
                    n += 1
                    if n == limit:
                        break
            return n
        whole.file = True
        return whole, "dpkt.pcap.Reader over the file + dpkt.ethernet.Ethernet(frame) per record", None
    if w.op == "pcapw":
        import io

        def whole(_path, limit):
            f = io.BytesIO()
            wr = dpkt.pcap.Writer(f)
            for i, fr in enumerate(frames[:limit]):
                wr.writepkt(fr, ts=1_700_000_000 + i * 1e-6)
            return limit
        whole.file = True
        return whole, "dpkt.pcap.Writer.writepkt per frame into a BytesIO", None
    return SKIP, f"dpkt has no {w.op}", None


def _scapy_rows(w, frames):
    from scapy.layers.inet import IP, TCP, UDP, fragment
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import checksum

    def rebuild(fr):
        p = Ether(fr)
        if IP in p:
            del p[IP].chksum
        if TCP in p:
            del p[TCP].chksum
        elif UDP in p:
            del p[UDP].chksum
        return bytes(p)

    if w.op in ("verify4", "verify6"):
        return (lambda fr: rebuild(fr) == bytes(fr),
                "scapy: Ether(frame), del IP/TCP chksum, bytes() rebuilds them, compare", True)
    if w.op in ("fill4", "fill6"):
        return rebuild, "scapy: Ether(frame), del IP/TCP chksum, bytes() rebuilds them", None
    if w.op == "raw":
        return checksum, "scapy.utils.checksum over each span", None
    if w.op == "parse":
        return Ether, "scapy Ether(frame): full dissection into layer objects", None
    if w.op == "pcap":
        from scapy.utils import PcapReader

        def whole(path, limit):
            n = 0
            with PcapReader(path) as r:
                for _p in r:
                    n += 1
                    if n == limit:
                        break
            return n
        whole.file = True
        return whole, "scapy PcapReader over the file (every record dissected into layer objects)", None
    if w.op == "pcapw":
        import io

        from scapy.utils import RawPcapWriter

        def whole(_path, limit):
            f = io.BytesIO()
            wr = RawPcapWriter(f, linktype=1, sync=True)
            for fr in frames[:limit]:
                wr.write(fr)
            wr.flush()
            return limit
        whole.file = True
        return whole, "scapy RawPcapWriter.write per frame (bytes, no dissection) into a BytesIO", None
    if w.op == "uso4":
        def one(fr):
            p = Ether(fr)
            mss = w.params.get("mss", 1472)
            return [bytes(x) for x in fragment(p[IP], fragsize=(mss + 8) // 8 * 8)]
        one.out_units = True
        return one, ("scapy fragment(): IP fragments (UFO, not USO), fragment headers and IP checksums "
                     "written, serialised to bytes"), None
    if w.op in ("gso4", "gso6"):
        return SKIP, "scapy has no TCP segmentation", None
    if w.op == "gro4":
        return SKIP, "scapy has no receive coalescing", None
    _ = IPv6
    return SKIP, f"scapy has no {w.op}", None


def measure(w, frames, peer: str, reps: int = 5, min_time: float = 0.05, max_frames: int = 256) -> dict:
    """One result row (dict as the C peers print) for ``peer`` in ``{"scapy", "dpkt"}``."""
    maker = _scapy_rows if peer == "scapy" else _dpkt_rows
    try:
        fn, notes, expect = maker(w, frames)
    except ImportError as e:
        return {"peer": peer, "op": w.op, "workload": w.name, "skipped": f"{peer} not installed: {e}"}
    if fn is SKIP:
        return {"peer": peer, "op": w.op, "workload": w.name, "skipped": notes}
    if getattr(fn, "file", False):
        return _measure_file(w, frames, peer, fn, notes, reps, min_time, max_frames)
    sub = [bytes(f) for f in frames[:max_frames]]
    if expect is not None:
        bad = sum(1 for f in sub if fn(f) != expect)
        if bad:
            return {"peer": peer, "op": w.op, "workload": w.name,
                    "skipped": f"{peer} disagreed with the frames on {bad} of {len(sub)}: not timed"}
    out_units = 0
    if getattr(fn, "out_units", False):
        out_units = sum(len(fn(f)) for f in sub)
    fn(sub[0])
    t0 = time.perf_counter()
    for f in sub:
        fn(f)
    one = time.perf_counter() - t0
    loops = max(1, int(min_time / max(one, 1e-9)))
    ns = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        for _ in range(loops):
            for f in sub:
                fn(f)
        ns.append((time.perf_counter_ns() - t0) / (loops * len(sub)))
    ns.sort()
    q = statistics.quantiles(ns, n=4) if len(ns) > 1 else [ns[0]] * 3
    row = {"peer": peer, "impl": peer, "op": w.op, "workload": w.name, "size": w.size, "unit": "pkt",
           "ns_per_pkt": statistics.median(ns), "min": ns[0], "max": ns[-1], "iqr": q[2] - q[0],
           "reps": reps, "pkts_per_rep": loops * len(sub), "notes": notes + f" (first {len(sub)} frames)",
           "extra": out_units / len(sub) if out_units else 0.0}
    from bench.workloads import fnv1a64
    row["fnv"] = fnv1a64(frames)
    return row


def _measure_file(w, frames, peer, fn, notes, reps, min_time, max_frames) -> dict:
    """Whole-file readers: time reading the first ``limit`` records of the workload pcap."""
    limit = min(len(frames), max_frames * 8)
    got = fn(w.file, limit)
    if got != limit:
        return {"peer": peer, "op": w.op, "workload": w.name, "skipped": f"{peer} read {got} of {limit} records"}
    t0 = time.perf_counter()
    fn(w.file, limit)
    loops = max(1, int(min_time / max(time.perf_counter() - t0, 1e-9)))
    ns = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        for _ in range(loops):
            fn(w.file, limit)
        ns.append((time.perf_counter_ns() - t0) / (loops * limit))
    ns.sort()
    q = statistics.quantiles(ns, n=4) if len(ns) > 1 else [ns[0]] * 3
    from bench.workloads import fnv1a64
    return {"peer": peer, "impl": peer, "op": w.op, "workload": w.name, "size": w.size, "unit": "pkt",
            "ns_per_pkt": statistics.median(ns), "min": ns[0], "max": ns[-1], "iqr": q[2] - q[0], "reps": reps,
            "pkts_per_rep": loops * limit, "notes": notes + f" (first {limit} records)", "extra": 0.0,
            "fnv": fnv1a64(frames)}
