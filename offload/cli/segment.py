"""``offload segment IN OUT``: cut the TSO/USO super-frames of a capture into wire-size frames.

A sending host's capture holds TCP segments and UDP datagrams far larger than
the MTU (TSO/GSO/USO super-frames, often IPv4 total length 0 above 64 KB) with
partial checksums; replay tools refuse them. This command rewrites the capture
with every such frame cut as Linux's GSO would have cut it, checksums valid
(``--csum full``, the default; the input's L4 checksums are never trusted), and
every other frame copied unchanged, in order, timestamps kept.
"""

from __future__ import annotations

import json
import sys

from . import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from ._common import damage_line


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "segment", help="cut TSO/USO super-frames of a capture into MTU-size frames (Linux GSO rules)",
        description="Read a pcap/pcapng capture, cut every TCP super-frame (and UDP datagram, see --udp) "
                    "longer than the MTU the way Linux GSO does (sequence numbers, flags, IP IDs, lengths, "
                    "checksums), copy every other frame unchanged, and write the result.",
        epilog="Exit status: 0 ok; 1 some frames were refused (malformed super-frames, listed; they are "
               "copied unchanged unless --drop-refused); 2 usage error; 3 the input is unreadable or "
               "corrupt (the frames before the damage are still segmented and written).")
    p.add_argument("input", metavar="IN", help="pcap or pcapng file")
    p.add_argument("output", metavar="OUT", help="file to write (same format as IN unless --format)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--mtu", type=int, default=None,
                      help="IP packet bytes per output frame (default 1500); the MSS is derived per frame "
                           "from its IP and TCP/UDP header lengths")
    size.add_argument("--mss", type=int, default=None, help="payload bytes per segment for every super-frame")
    p.add_argument("--udp", choices=("uso", "ufo", "keep"), default="uso",
                   help="UDP datagrams over the size: cut into datagrams (uso, default), into IP fragments "
                        "(ufo), or leave them (keep)")
    p.add_argument("--csum", choices=("full", "partial"), default="full",
                   help="full: valid checksums on every segment (default); partial: leave the pseudo-header "
                        "sum in the L4 field (CHECKSUM_PARTIAL), for a consumer that offloads")
    p.add_argument("--fixedid", action="store_true",
                   help="keep the IPv4 ID of every TCP segment (default: ID + segment index, as Linux)")
    p.add_argument("--format", choices=("pcap", "pcapng"), default=None, help="output format (default: IN's)")
    p.add_argument("--drop-refused", action="store_true",
                   help="leave refused frames out of OUT (default: copy them unchanged)")
    p.add_argument("--max-frame", type=int, default=None, metavar="BYTES",
                   help="largest frame accepted from IN (default 256 KiB; raise for larger BIG TCP frames)")
    p.add_argument("--batch", type=int, default=1024, metavar="FRAMES", help="frames per burst (default 1024)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def segment_file(src: str, dst: str, mtu: int | None = 1500, mss: int | None = None, udp: str = "uso",
                 csum: str = "full", fixedid: bool = False, fmt: str | None = None,
                 drop_refused: bool = False, max_frame: int | None = None, batch_frames: int = 1024,
                 progress: bool = True) -> dict:
    """Segment capture ``src`` into ``dst``; returns the summary dict. A damaged input is
    segmented up to the damage, written, and reported in ``summary["error"]`` (offset, reason)."""
    import numpy as np

    from .. import gso, pcap
    from .. import status as S
    from ._common import Batches, open_capture

    if mss is None and mtu is None:
        mtu = 1500
    reader = open_capture(src, max_frame)
    opts = reader.writer_options()
    if fmt is not None and fmt != opts["format"]:
        opts = {"format": fmt, "byte_order": opts.get("byte_order", "<")}
        if "ts_resolution" in reader.writer_options():
            opts["ts_resolution"] = reader.writer_options()["ts_resolution"]
    opts["snaplen"] = max(int(opts.get("snaplen") or 0), pcap.DEFAULT_SNAPLEN, reader.max_frame)
    totals = dict.fromkeys(gso.COUNTER_NAMES, 0)
    refused: dict[str, int] = {}
    batches = Batches(reader, "segment", batch_frames, progress=progress,
                      note=lambda: f"{totals['segments']} segments")
    writer = None
    try:
        writer = pcap.PcapWriter(dst, **opts)
        for b in batches:
            r = gso.segment(b, mtu=mtu, mss=mss, udp=udp, csum=csum, fixedid=fixedid,
                            refused="drop" if drop_refused else "pass")
            out = r.out
            src_idx = out.meta["src"].astype(np.int64)
            cut = (out.meta["status"] == S.GSO_SEGMENTED) | (out.meta["status"] == S.GSO_FRAGMENTED)
            if b.wire_len is not None:
                # frames copied unchanged keep their original length (snaplen-cut captures)
                out.wire_len = np.where(cut, out.len, b.wire_len[src_idx])
            if b.iface is not None:
                out.iface = b.iface[src_idx]
            writer.write(out)
            for k, v in r.counters.items():
                totals[k] += int(v)
            for k, v in r.refused.items():
                refused[k] = refused.get(k, 0) + v
    finally:
        if writer is not None:
            writer.close()
    return {
        "input": src, "output": dst, "mtu": mtu, "mss": mss, "udp": udp, "csum": csum,
        "frames_in": totals["frames"], "super_frames": totals["super_frames"],
        "segments_written": totals["segments"], "passed_through": totals["passed"],
        "passed_oversize": totals["not_supported"], "refused": totals["refused"],
        "refused_reasons": refused, "refused_written": 0 if drop_refused else totals["refused"],
        "bytes_written": totals["bytes_out"], "error": batches.error,
    }


def render(s: dict) -> str:
    size = f"MSS {s['mss']}" if s["mss"] else f"MTU {s['mtu']}"
    lines = [
        f"input               {s['input']}",
        f"output              {s['output']}  ({size}, UDP {s['udp']}, checksums {s['csum']})",
        f"frames read         {s['frames_in']}",
        f"super-frames cut    {s['super_frames']}",
        f"segments written    {s['segments_written']}",
        f"frames passed       {s['passed_through']}" + (
            f"  ({s['passed_oversize']} over the MTU but not TCP/UDP or already fragments)"
            if s["passed_oversize"] else ""),
        f"frames refused      {s['refused']}" + (
            "  (copied unchanged)" if s["refused"] and s["refused_written"] else
            "  (left out)" if s["refused"] else ""),
    ]
    for reason, n in sorted(s["refused_reasons"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>8}  {reason}")
    if s["error"]:
        lines.append("input " + damage_line(s["error"], "frames before it were segmented and written"))
    return "\n".join(lines)


def run(args) -> int:
    from .. import pcap

    if args.mss is not None and args.mss < 1:
        print("offload segment: --mss must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.mtu is not None and args.mtu < 28:
        print("offload segment: --mtu must be at least 28", file=sys.stderr)
        return EXIT_USAGE
    if args.batch < 1:
        print("offload segment: --batch must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        s = segment_file(args.input, args.output, mtu=args.mtu, mss=args.mss, udp=args.udp, csum=args.csum,
                         fixedid=args.fixedid, fmt=args.format, drop_refused=args.drop_refused,
                         max_frame=args.max_frame, batch_frames=args.batch)
    except pcap.PcapError as e:
        print(f"offload segment: {args.input}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:
        print(f"offload segment: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(s) if args.json else render(s))
    if s["error"]:
        return EXIT_BAD_INPUT
    return EXIT_FINDINGS if s["refused"] else EXIT_OK
