"""``offload coalesce IN OUT``: GRO a capture file.

Segment trains in a pcap/pcapng capture are coalesced with Linux's GRO rules
(:mod:`offload.gro`) into super-frames, written to OUT in the input's format.
The capture timestamps drive the flush timeout (``--timeout-us``, like
``gro_flush_timeout``): an aggregate whose first frame is more than that older
than the frame being read is written out. Merged frames carry valid checksums
by default (``--csum full``); ``--csum partial`` writes what Linux hands up
(the pseudo-header sum in the L4 field), which checksum validators flag.

Limits: frames of all interfaces of a pcapng file share one table (Linux runs
GRO per device); frames longer than ``--slot-size`` pass alone. Memory: each
open flow's aggregate is built in a region of ``--slot-size`` + ``--max-size``
bytes (~68 KB by default), so the default 1024 flows take ~75 MB; with
``--max-size 524280`` (BIG TCP) each region is ~0.5 MB.
"""

from __future__ import annotations

import json
import sys

from . import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from ._common import damage_line


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "coalesce", help="merge TCP/UDP segment trains of a capture into super-frames (GRO)",
        description="Coalesce segment trains in a pcap/pcapng capture with Linux's GRO rules (TCP over "
                    "IPv4/IPv6, behind VLAN tags; UDP as the inverse of UDP_SEGMENT) and write the result "
                    "in the input's format.",
        epilog="Exit status: 0 ok; 1 done, but frames were refused for bad checksums or malformed headers "
               "(counted in the summary); 2 usage error; 3 the input is unreadable or damaged (frames "
               "before the damage are coalesced and written; the byte offset is named).")
    p.add_argument("input", help="pcap or pcapng file to read")
    p.add_argument("output", help="file to write (same format as the input)")
    p.add_argument("--max-size", type=int, default=65536, metavar="N",
                   help="an aggregate's IP packet stays below N bytes (default 65536, Linux gro_max_size; "
                        "up to 524280 for BIG TCP: IPv4 total length 0, IPv6 jumbo option)")
    p.add_argument("--timeout-us", type=float, default=None, metavar="N",
                   help="flush an aggregate once a frame N microseconds younger than its first frame is "
                        "read (capture time; default: no timeout, flush by the rules and at the end)")
    p.add_argument("--csum", choices=("full", "partial"), default="full",
                   help="checksums of merged frames: full (valid, default) or partial (Linux's CHECKSUM_PARTIAL)")
    p.add_argument("--cwr", choices=("6.18", "legacy", "accecn"), default="6.18",
                   help="which kernel's CWR rule to follow (default 6.18)")
    p.add_argument("--no-udp", action="store_true", help="do not coalesce UDP")
    p.add_argument("--no-verify", action="store_true", help="do not verify checksums before merging")
    p.add_argument("--max-flows", type=int, default=1024,
                   help="flows held at once (default 1024; each takes a region of --slot-size + --max-size "
                        "bytes: ~68 KB by default); when all are taken the oldest aggregate is written out")
    p.add_argument("--slot-size", type=int, default=2048, metavar="BYTES",
                   help="largest frame that can be held for merging (default 2048; raise for jumbo frames)")
    p.add_argument("--max-frame", type=int, default=None, metavar="BYTES",
                   help="largest frame accepted from the file (default 256 KiB)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def coalesce_file(src: str, dst: str, max_size: int = 65536, timeout_us: float | None = None,
                  csum: str = "full", cwr: str = "6.18", udp: bool = True, verify: bool = True,
                  max_flows: int = 1024, slot_size: int = 2048, max_frame: int | None = None,
                  progress: bool = True, batch_frames: int = 4096) -> dict:
    """Coalesce capture ``src`` into ``dst``; returns the summary dict (counters of
    :class:`offload.gro.GroTable` plus ``frames_read``, ``frames_written``, ``error``)."""
    from .. import gro, pcap
    from ._common import Batches, open_capture

    reader = open_capture(src, max_frame)
    opts = reader.writer_options()
    opts["snaplen"] = max(int(opts.get("snaplen") or 0), int(max_size) + 1024, 65535)
    timeout_ns = None if timeout_us is None else int(timeout_us * 1000)
    table = gro.GroTable(max_flows=max_flows, timeout_ns=timeout_ns, slot_size=slot_size, max_size=max_size,
                         csum=csum, cwr=cwr, udp=udp, verify=verify, max_held=max(64, max_flows * 4))
    read = written = 0
    batches = Batches(reader, "coalesce", batch_frames, progress=progress, note=lambda: f"{read} frames")
    last_ts = 0
    with pcap.PcapWriter(dst, **opts) as w:
        try:
            for b in batches:
                read += len(b)
                if b.ts is not None and len(b):
                    last_ts = int(b.ts[-1])
                out = table.push(b, now=last_ts)
                w.write(out)
                written += len(out)
        finally:
            out = table.flush(now=last_ts)
            w.write(out)
            written += len(out)
    c = table.counters
    return {"input": src, "output": dst, "frames_read": read, "frames_written": written, **c,
            "error": batches.error}


def render(s: dict) -> str:
    w = [f"{s['input']} -> {s['output']}",
         f"frames read     {s['frames_read']}",
         f"frames written  {s['frames_written']}",
         f"aggregates      {s['aggregates']} (from {s['aggregates'] + s['merged']} frames; {s['merged']} merged into earlier ones)"]
    from .. import status
    alone = {k: v for k, v in s["status"].items() if k not in ("GRO_HEAD", "GRO_HEAD_FIXEDID", "GRO_MERGED")}
    if alone:
        w.append("frames written unmerged, by reason:")
        for k, v in sorted(alone.items(), key=lambda kv: -kv[1]):
            code = getattr(status, k, None)
            w.append(f"  {status.describe(code) if code is not None else k:<44}{v:>10}")
    if s["flush"]:
        w.append("aggregates flushed by: " + ", ".join(f"{k} {v}" for k, v in s["flush"].items()))
    if s["refused"]:
        w.append("merges refused (a new aggregate started) by: " + ", ".join(f"{k} {v}" for k, v in s["refused"].items()))
    if s["error"]:
        w.append("input " + damage_line(s["error"], f"the {s['frames_read']} frames before it were coalesced and written"))
    return "\n".join(w)


def run(args) -> int:
    from ..pcap import PcapError
    if args.max_size < 64 or args.max_size > 8 * 65535:
        print("offload coalesce: --max-size must be in 64..524280", file=sys.stderr)
        return EXIT_USAGE
    if args.timeout_us is not None and args.timeout_us < 0:
        print("offload coalesce: --timeout-us must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    if args.max_flows < 1 or args.slot_size < 64:
        print("offload coalesce: --max-flows must be >= 1 and --slot-size >= 64", file=sys.stderr)
        return EXIT_USAGE
    try:
        s = coalesce_file(args.input, args.output, args.max_size, args.timeout_us, args.csum, args.cwr,
                          not args.no_udp, not args.no_verify, args.max_flows, args.slot_size, args.max_frame)
    except (PcapError, OSError) as e:
        print(f"offload coalesce: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(s, indent=2) if args.json else render(s))
    if s["error"]:
        print(f"offload coalesce: {args.input}: byte offset {s['error']['offset']}: {s['error']['reason']}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    bad = s["status"].get("GRO_BAD_CSUM", 0) + s["status"].get("GRO_MALFORMED", 0)
    return EXIT_FINDINGS if bad else EXIT_OK
