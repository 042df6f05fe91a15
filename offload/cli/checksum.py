"""``offload checksum verify FILE`` and ``offload checksum fix IN OUT``.

``verify`` checks the IPv4 header checksum and the TCP/UDP/ICMP/ICMPv6
checksum of every frame of a pcap/pcapng capture and prints a summary table
and the first bad frames (index, flow, found vs expected). Frames captured on
the sending host under checksum offload carry the pseudo-header sum in the L4
field (CHECKSUM_PARTIAL): they are reported as ``partial``, not as corrupt.

``fix`` writes a copy of the capture with every checksum that can be
computed recomputed (UDP results of 0 stored as 0xFFFF) and says what it left
alone and why: fragments, truncated (snaplen) or malformed frames, protocols
without a checksum this engine knows, and UDP/IPv4 datagrams sent without a
checksum (kept as 0 unless ``--udp-zero fill``).
"""

from __future__ import annotations

import ipaddress
import json
import sys

from . import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from ._common import damage_line


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "checksum", help="verify or fix the IPv4/TCP/UDP/ICMP checksums of a capture",
        description="Verify (verify FILE) or recompute (fix IN OUT) the IPv4 header and TCP/UDP/ICMP/ICMPv6 "
                    "checksums of every frame of a pcap/pcapng capture.")
    sub = p.add_subparsers(dest="checksum_command", metavar="ACTION")
    sub.required = True
    v = sub.add_parser(
        "verify", help="check every checksum; exit status 1 when any is wrong",
        description="Check the IPv4 header checksum and the L4 checksum (TCP, UDP, ICMP over IPv4; TCP, UDP, "
                    "ICMPv6 over IPv6, pseudo-header with the routing header's final destination) of every "
                    "frame. Frames whose L4 field holds the pseudo-header sum (captured on the sender with "
                    "checksum offload) are reported as partial, not as bad.",
        epilog="Exit status: 0 no bad checksum; 1 at least one bad checksum (or a UDP checksum of 0 over "
               "IPv6; with --strict also partial ones); 2 usage error; 3 unreadable or corrupt file (the "
               "frames before the damage are still checked and reported).")
    v.add_argument("file", metavar="FILE", help="pcap or pcapng file")
    v.add_argument("--show", type=int, default=10, metavar="N", help="list the first N bad frames (default 10)")
    v.add_argument("--strict", action="store_true", help="count partial checksums as bad")
    v.add_argument("--max-frame", type=int, default=None, metavar="BYTES",
                   help="largest frame accepted (default 256 KiB)")
    v.add_argument("--batch", type=int, default=4096, metavar="FRAMES", help="frames per burst (default 4096)")
    v.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    v.set_defaults(func=run_verify)
    f = sub.add_parser(
        "fix", help="write a copy with every computable checksum recomputed",
        description="Copy IN to OUT with the IPv4 header checksum and the L4 checksum of every frame "
                    "recomputed where the frame allows it (UDP results of 0 stored as 0xFFFF). Fragments, "
                    "truncated or malformed frames and unknown protocols are copied unchanged and counted.",
        epilog="Exit status: 0 done; 2 usage error; 3 unreadable or corrupt input (the frames before the "
               "damage are still fixed and written).")
    f.add_argument("input", metavar="IN", help="pcap or pcapng file")
    f.add_argument("output", metavar="OUT", help="file to write (same format as IN unless --format)")
    f.add_argument("--udp-zero", choices=("keep", "fill"), default="keep",
                   help="UDP over IPv4 sent without checksum (field 0): keep it (default) or compute one")
    f.add_argument("--format", choices=("pcap", "pcapng"), default=None, help="output format (default: IN's)")
    f.add_argument("--max-frame", type=int, default=None, metavar="BYTES",
                   help="largest frame accepted (default 256 KiB)")
    f.add_argument("--batch", type=int, default=4096, metavar="FRAMES", help="frames per burst (default 4096)")
    f.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    f.set_defaults(func=run_fix)


# --- helpers ------------------------------------------------------------------------

def _flow(batch, i: int) -> str:
    """``proto src[:port] > dst[:port]`` of frame ``i`` from the parsed layout."""
    m = batch.meta[i]
    fr = batch.frame(i)
    l3 = int(m["l3_off"])
    l3p = int(m["l3_proto"])
    try:
        if l3p == 0x0800:
            src = str(ipaddress.IPv4Address(fr[l3 + 12:l3 + 16].tobytes()))
            dst = str(ipaddress.IPv4Address(fr[l3 + 16:l3 + 20].tobytes()))
        elif l3p == 0x86DD:
            src = str(ipaddress.IPv6Address(fr[l3 + 8:l3 + 24].tobytes()))
            d = int(m["dst_off"]) if int(m["dst_off"]) >= 0 else l3 + 24
            dst = str(ipaddress.IPv6Address(fr[d:d + 16].tobytes()))
        else:
            return "non-IP"
    except (ValueError, ipaddress.AddressValueError):
        return "?"
    proto = int(m["l4_proto"])
    name = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(proto, f"proto {proto}")
    l4 = int(m["l4_off"])
    if proto in (6, 17) and 0 <= l4 and l4 + 4 <= fr.size:
        sp = int(fr[l4]) << 8 | int(fr[l4 + 1])
        dp = int(fr[l4 + 2]) << 8 | int(fr[l4 + 3])
        if l3p == 0x86DD:
            return f"{name} [{src}]:{sp} > [{dst}]:{dp}"
        return f"{name} {src}:{sp} > {dst}:{dp}"
    return f"{name} {src} > {dst}"


def _count(counter: dict, codes) -> None:
    import numpy as np
    vals, cnt = np.unique(codes, return_counts=True)
    for v, c in zip(vals.tolist(), cnt.tolist()):
        counter[v] = counter.get(v, 0) + c


# --- verify -------------------------------------------------------------------------

def verify_file(path: str, show: int = 10, max_frame: int | None = None, batch_frames: int = 4096,
                progress: bool = True) -> dict:
    """Verify every frame of capture ``path``; returns the summary dict (``by_status``:
    frame count per overall verdict name; ``ip``/``l4``: per-layer counts; ``bad``: the
    first ``show`` bad frames). A damaged file is checked up to the damage, reported in
    ``summary["error"]``."""
    import numpy as np

    from .. import csum
    from .. import status as S
    from ._common import Batches, open_capture

    reader = open_capture(path, max_frame)
    by_status: dict[int, int] = {}
    ip: dict[int, int] = {}
    l4: dict[int, int] = {}
    bad_list = []
    partial_first = []
    frames = 0
    batches = Batches(reader, "verify", batch_frames, parse=True, progress=progress)
    bad_codes = (S.CSUM_BAD_IP, S.CSUM_BAD_L4, S.CSUM_UDP_ZERO_V6)
    try:
        for b in batches:
            r = csum.verify_batch(b, parse=False)
            _count(by_status, r.status)
            _count(ip, r.ip)
            _count(l4, r.l4)
            if len(bad_list) < show:
                for i in np.flatnonzero(np.isin(r.status, bad_codes))[: show - len(bad_list)].tolist():
                    bad_list.append(_bad_entry(b, r, i, frames + i))
            if len(partial_first) < 3:
                for i in np.flatnonzero(r.status == S.CSUM_PARTIAL)[: 3 - len(partial_first)].tolist():
                    partial_first.append(_bad_entry(b, r, i, frames + i))
            frames += len(b)
    finally:
        reader.close()
    name = lambda d: {S.NAMES.get(k, str(k)): v for k, v in sorted(d.items())}  # noqa: E731
    nbad = sum(by_status.get(c, 0) for c in bad_codes)
    return {
        "file": path, "frames": frames, "bad": nbad, "partial": by_status.get(S.CSUM_PARTIAL, 0),
        "good": by_status.get(S.OK, 0), "by_status": name(by_status), "ip": name(ip), "l4": name(l4),
        "first_bad": bad_list, "first_partial": partial_first, "error": batches.error,
    }


def _bad_entry(b, r, i: int, index: int) -> dict:
    from .. import status as S
    e = {"index": index, "flow": _flow(b, i), "status": S.NAMES.get(int(r.status[i]), str(int(r.status[i])))}
    if int(r.ip[i]) == S.CSUM_BAD_IP:
        e["ip_found"] = int(r.ip_found[i])
        e["ip_expected"] = int(r.ip_want[i])
    if int(r.l4[i]) in (S.CSUM_BAD_L4, S.CSUM_PARTIAL, S.CSUM_UDP_ZERO_V6):
        e["l4_found"] = int(r.l4_found[i])
        e["l4_expected"] = int(r.l4_want[i])
    return e


def _entry_text(e: dict) -> str:
    parts = []
    if "ip_found" in e:
        parts.append(f"IPv4 header 0x{e['ip_found']:04x}, expected 0x{e['ip_expected']:04x}")
    if "l4_found" in e:
        parts.append(f"L4 0x{e['l4_found']:04x}, expected 0x{e['l4_expected']:04x}")
    return f"  #{e['index']:<8} {e['flow']}  " + "; ".join(parts)


def render_verify(s: dict) -> str:
    from .. import status as S
    codes = {v: k for k, v in S.NAMES.items()}
    checked = s["good"] + s["bad"] + s["partial"] + s["by_status"].get("CSUM_NONE", 0)
    lines = [f"file        {s['file']}", f"frames      {s['frames']}",
             f"verdict     {s['good']} good, {s['bad']} bad, {s['partial']} partial, "
             f"{s['frames'] - checked} not checked", "", f"{'frames':>10}  verdict"]
    for nm, n in sorted(s["by_status"].items(), key=lambda kv: -kv[1]):
        lines.append(f"{n:>10}  {S.describe(codes.get(nm, -1)) if nm in codes else nm}")
    ip_bad = s["ip"].get("CSUM_BAD_IP", 0)
    ip_ok = s["ip"].get("OK", 0)
    l4 = s["l4"]
    lines += ["", f"IPv4 header checksums   {ip_ok} good, {ip_bad} bad",
              f"L4 checksums            {l4.get('OK', 0)} good, {l4.get('CSUM_BAD_L4', 0)} bad, "
              f"{l4.get('CSUM_PARTIAL', 0)} partial, {l4.get('CSUM_NONE', 0)} UDP/IPv4 without checksum, "
              f"{l4.get('CSUM_UDP_ZERO_V6', 0)} UDP/IPv6 with checksum 0"]
    if s["first_bad"]:
        lines += ["", "first bad frames (index from 0):"]
        lines += [_entry_text(e) for e in s["first_bad"]]
    if s["first_partial"]:
        lines += ["", "partial checksums (the L4 field holds the pseudo-header sum: captured on the sender "
                      "with checksum offload), e.g.:"]
        lines += [_entry_text(e) for e in s["first_partial"]]
    if s["error"]:
        lines.append("\nfile " + damage_line(s["error"], "the frames before it were checked"))
    return "\n".join(lines)


def run_verify(args) -> int:
    from .. import pcap
    if args.show < 0 or args.batch < 1:
        print("offload checksum verify: --show must be >= 0 and --batch >= 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        s = verify_file(args.file, show=args.show, max_frame=args.max_frame, batch_frames=args.batch)
    except (pcap.PcapError, OSError) as e:
        print(f"offload checksum verify: {args.file}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(s) if args.json else render_verify(s))
    if s["error"]:
        return EXIT_BAD_INPUT
    return EXIT_FINDINGS if s["bad"] or (args.strict and s["partial"]) else EXIT_OK


# --- fix ----------------------------------------------------------------------------

def fix_file(src: str, dst: str, udp_zero: str = "keep", fmt: str | None = None, max_frame: int | None = None,
             batch_frames: int = 4096, progress: bool = True) -> dict:
    """Copy capture ``src`` to ``dst`` with every computable checksum recomputed; returns
    the summary dict (``changed_ip``/``changed_l4``: checksums that were wrong and were
    rewritten; ``left_alone``: frame count per reason a checksum was not computed)."""

    from .. import csum, pcap
    from .. import status as S
    from ._common import Batches, open_capture

    reader = open_capture(src, max_frame)
    opts = reader.writer_options()
    if fmt is not None and fmt != opts["format"]:
        keep = {k: opts[k] for k in ("byte_order", "ts_resolution") if k in opts}
        opts = {"format": fmt, **keep}
    frames = changed_ip = changed_l4 = frames_changed = 0
    left: dict[int, int] = {}
    batches = Batches(reader, "fix", batch_frames, parse=True, progress=progress)
    writer = None
    try:
        writer = pcap.PcapWriter(dst, **opts)
        for b in batches:
            # the reader's frames are views of the (read-only) mapped file: fix a copy
            out = b.compact()
            r = csum.fill_batch(out, parse=False, keep_udp_none=(udp_zero == "keep"))
            ipc = (r.ip == S.OK) & (r.ip_found != r.ip_want)
            l4c = (r.l4 == S.OK) & (r.l4_found != r.l4_want)
            changed_ip += int(ipc.sum())
            changed_l4 += int(l4c.sum())
            frames_changed += int((ipc | l4c).sum())
            _count(left, r.l4[r.l4 != S.OK])
            writer.write(out)
            frames += len(b)
    finally:
        if writer is not None:
            writer.close()
        reader.close()
    return {
        "input": src, "output": dst, "frames": frames, "frames_changed": frames_changed,
        "changed_ip": changed_ip, "changed_l4": changed_l4,
        "left_alone": {S.NAMES.get(k, str(k)): v for k, v in sorted(left.items())}, "error": batches.error,
    }


def render_fix(s: dict) -> str:
    from .. import status as S
    codes = {v: k for k, v in S.NAMES.items()}
    lines = [f"input             {s['input']}", f"output            {s['output']}",
             f"frames            {s['frames']}",
             f"frames changed    {s['frames_changed']}  ({s['changed_ip']} IPv4 header checksums, "
             f"{s['changed_l4']} L4 checksums rewritten)"]
    left = {k: v for k, v in s["left_alone"].items()}
    if left:
        lines += ["", "L4 checksum left alone (frame copied as it was):"]
        for nm, n in sorted(left.items(), key=lambda kv: -kv[1]):
            lines.append(f"{n:>10}  {S.describe(codes[nm]) if nm in codes else nm}")
    if s["error"]:
        lines.append("\ninput " + damage_line(s["error"], "the frames before it were fixed and written"))
    return "\n".join(lines)


def run_fix(args) -> int:
    from .. import pcap
    if args.batch < 1:
        print("offload checksum fix: --batch must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        s = fix_file(args.input, args.output, udp_zero=args.udp_zero, fmt=args.format,
                     max_frame=args.max_frame, batch_frames=args.batch)
    except (pcap.PcapError, OSError) as e:
        print(f"offload checksum fix: {args.input}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(s) if args.json else render_fix(s))
    return EXIT_BAD_INPUT if s["error"] else EXIT_OK
