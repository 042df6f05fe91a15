"""``offload stats FILE``: what is in a capture.

Frames, bytes, link types, the L3/L4 protocol mix, super-frames (IP packets
longer than the MTU, as a sending host's capture of TSO/USO or a receiving
host's capture of GRO shows them) and malformed frames by reason. Reads the
file in batches (bounded memory); nothing is compiled but the pcap walker and
the parser.
"""

from __future__ import annotations

import json
import sys

from . import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK
from ._common import damage_line

LINK_NAMES = {
    0: "BSD loopback", 1: "Ethernet", 9: "PPP", 12: "raw IP", 14: "raw IP", 101: "raw IP",
    105: "802.11", 108: "OpenBSD loopback", 113: "Linux cooked v1", 127: "802.11 radiotap",
    228: "raw IPv4", 229: "raw IPv6", 276: "Linux cooked v2",
}
L4_NAMES = {
    1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP",
    51: "AH", 58: "ICMPv6", 59: "no next header", 89: "OSPF", 103: "PIM", 112: "VRRP", 132: "SCTP",
}


def link_name(link: int) -> str:
    return f"{LINK_NAMES.get(link, 'LINKTYPE')} ({link})"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stats", help="count frames, protocols, super-frames and malformed frames in a capture",
        description="Summarise a pcap/pcapng capture: frames, bytes, link types, the L3/L4 protocol mix, "
                    "super-frames (IP packets longer than --mtu) and malformed frames by reason.",
        epilog="Exit status: 0 ok; 1 the capture has malformed frames (listed); 2 usage error; "
               "3 the file is unreadable or corrupt (what was read before the damage is reported, "
               "with the byte offset of the damage).")
    p.add_argument("file", help="pcap or pcapng file")
    p.add_argument("--mtu", type=int, default=1500,
                   help="IP MTU in bytes; IP packets longer than this are counted as super-frames (default 1500)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--max-frame", type=int, default=None, metavar="BYTES",
                   help="largest frame accepted from the file (default 256 KiB; raise for BIG TCP captures)")
    p.set_defaults(func=run)


def _proto_label(l3: int, l4: int) -> str:
    if l3 == 0:
        return "not IP"
    name = "IPv4" if l3 == 1 else "IPv6"
    if l4 < 0:
        return name
    return f"{name}/{L4_NAMES.get(l4, f'proto {l4}')}"


def collect(path: str, mtu: int = 1500, max_frame: int | None = None, progress: bool = True,
            batch_frames: int = 65536) -> dict:
    """Read ``path`` and return the statistics as a JSON-ready dict.

    A damaged file still returns what was read before the damage, with
    ``error = {"offset": byte offset, "reason": text}``; unreadable headers
    raise :class:`offload.pcap.PcapError`.
    """
    import numpy as np

    from .. import status
    from ._common import Batches, open_capture

    reader = open_capture(path, max_frame)
    links = np.zeros(65536, np.int64)
    stat = np.zeros(65536, np.int64)
    mix_frames = np.zeros(3 * 257, np.int64)
    mix_bytes = np.zeros(3 * 257, np.int64)
    sup = np.zeros(3 * 257, np.int64)
    sup_max = np.zeros(3 * 257, np.int64)
    frames = cap_bytes = wire_bytes = 0
    batches = Batches(reader, "stats", batch_frames, parse=True, progress=progress, note=lambda: f"{frames} frames")
    for b in batches:
        m = b.meta
        frames += len(b)
        cap_bytes += int(b.len.sum())
        wire_bytes += int(b.wire_len.sum())
        links += np.bincount(m["link"], minlength=65536)
        stat += np.bincount(m["status"], minlength=65536)
        l3 = np.where(m["l3_proto"] == 0x0800, 1, np.where(m["l3_proto"] == 0x86DD, 2, 0))
        l4 = np.where((l3 > 0) & ((m["l4_off"] >= 0) | (m["l4_proto"] != 0)), m["l4_proto"].astype(np.int64), 256)
        key = l3 * 257 + np.where(l3 > 0, l4, 256)
        mix_frames += np.bincount(key, minlength=3 * 257)
        mix_bytes += np.bincount(key, weights=b.wire_len, minlength=3 * 257).astype(np.int64)
        iplen = np.where((l3 > 0) & (m["l3_end"] > m["l3_off"]), m["l3_end"].astype(np.int64) - m["l3_off"], 0)
        big = iplen > mtu
        if big.any():
            sup += np.bincount(key[big], minlength=3 * 257)
            np.maximum.at(sup_max, key[big], iplen[big])

    def mix_rows(counts, extra=None):
        rows = []
        for k in np.flatnonzero(counts).tolist():
            l3, l4 = divmod(k, 257)
            row = {"protocol": _proto_label(l3, -1 if l4 == 256 else l4), "frames": int(counts[k])}
            if extra is not None:
                row.update(extra(k))
            rows.append(row)
        return sorted(rows, key=lambda r: -r["frames"])

    malformed = {status.describe(c): int(stat[c]) for c in np.flatnonzero(stat).tolist() if status.is_parse_error(c)}
    out = {
        "file": path,
        "format": reader.format,
        "byte_order": "big-endian" if reader.byte_order == ">" else "little-endian",
        "file_bytes": reader.size,
        "frames": frames,
        "bytes": cap_bytes,
        "wire_bytes": wire_bytes,
        "link_types": {link_name(k): int(links[k]) for k in np.flatnonzero(links).tolist()},
        "protocols": mix_rows(mix_frames, lambda k: {"bytes": int(mix_bytes[k])}),
        "mtu": mtu,
        "super_frames": sum(int(x) for x in sup),
        "super_frames_by_protocol": mix_rows(sup, lambda k: {"largest_ip_packet": int(sup_max[k])}),
        "malformed": sum(malformed.values()),
        "malformed_by_reason": dict(sorted(malformed.items(), key=lambda kv: -kv[1])),
        "error": batches.error,
    }
    return out


def render(s: dict) -> str:
    """The statistics as a plain text table."""
    w = []
    w.append(f"file          {s['file']} ({s['format']}, {s['byte_order']}, {s['file_bytes']} bytes)")
    w.append(f"frames        {s['frames']}")
    w.append(f"bytes         {s['bytes']} captured, {s['wire_bytes']} on the wire")
    w.append("link types    " + (", ".join(f"{k}: {v}" for k, v in s["link_types"].items()) or "-"))
    if s["protocols"]:
        w.append("")
        w.append(f"{'protocol':<24}{'frames':>10}{'wire bytes':>14}")
        for r in s["protocols"]:
            w.append(f"{r['protocol']:<24}{r['frames']:>10}{r['bytes']:>14}")
    w.append("")
    w.append(f"super-frames (IP packet longer than the MTU of {s['mtu']} bytes): {s['super_frames']}")
    for r in s["super_frames_by_protocol"]:
        w.append(f"  {r['protocol']:<22}{r['frames']:>10}   largest IP packet {r['largest_ip_packet']} bytes")
    w.append(f"malformed frames: {s['malformed']}")
    for reason, n in s["malformed_by_reason"].items():
        w.append(f"  {reason:<44}{n:>8}")
    if s["error"]:
        w.append("")
        w.append("file " + damage_line(s["error"], f"the {s['frames']} frames before it are counted above"))
    return "\n".join(w)


def run(args) -> int:
    from ..pcap import PcapError
    try:
        s = collect(args.file, args.mtu, args.max_frame)
    except PcapError as e:
        print(f"offload stats: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:
        print(f"offload stats: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(s, indent=2) if args.json else render(s))
    if s["error"]:
        print(f"offload stats: {args.file}: byte offset {s['error']['offset']}: {s['error']['reason']}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_FINDINGS if s["malformed"] else EXIT_OK
