"""``offload demo``: the bundled example capture, its statistics, and what ``offload segment`` makes of it."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile

from . import EXIT_BAD_INPUT, EXIT_OK

ABOUT = """\
The example capture ({path}, {size} bytes) is what tcpdump shows on a sending
host whose NIC does TSO/USO: the kernel hands the driver super-frames of up to
64 KB, and the capture sees them before the NIC cuts them into MTU-sized
packets. It holds
  * TCP super-frames over IPv4 (43 KB and 14 KB of payload) and IPv6 (20 KB),
    IP length fields covering the whole frame, TCP checksum holding only the
    pseudo-header sum (CHECKSUM_PARTIAL: the NIC would finish it);
  * a BIG TCP frame of 66 KB whose IPv4 total length is 0;
  * UDP super-frames (USO) over IPv4 (12 x 1200 bytes) and IPv6 (8 x 1232);
  * ordinary traffic: TCP handshakes with MSS options and ACKs, DNS, ICMP,
    ICMPv6 echo and ARP.
Replaying it as is fails ("Message too long"); `offload segment` turns every
super-frame into the packets the wire carried.
It is rebuilt by `python tools/make_example.py` (scapy)."""


def example_path() -> str:
    """Path of the bundled example capture (installed as package data)."""
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples", "example.pcap")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="show the bundled example capture and segment its super-frames",
        description="Describe the bundled example capture of TSO/USO super-frames, print its statistics, "
                    "run `offload segment` on it into a temporary file and print the statistics of the result.",
        epilog="Exit status: 0 ok, 1 problems found, 3 the example is missing or corrupt.")
    p.add_argument("--keep", metavar="OUT", help="write the segmented capture to OUT instead of a temporary file")
    p.set_defaults(func=run)


def _segment_available() -> bool:
    return (importlib.util.find_spec("offload.gso") is not None
            and importlib.util.find_spec("offload.cli.segment") is not None)


def run(args) -> int:
    from . import main as cli_main
    from .stats import collect, render

    path = example_path()
    if not os.path.exists(path):
        print(f"offload demo: the example capture {path} is missing (python tools/make_example.py rebuilds it)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    rel = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    print(ABOUT.format(path=rel, size=os.path.getsize(path)))
    print()
    print(f"== offload stats {rel}")
    before = collect(path)
    print(render(before))
    if before["error"]:
        return EXIT_BAD_INPUT
    print()
    if not _segment_available():
        print("Segmentation is not built yet in this checkout (offload.gso / `offload segment` are missing),")
        print("so the demo stops at the statistics above.")
        return EXIT_OK
    with tempfile.TemporaryDirectory(prefix="offload-demo-") as tmp:
        out = args.keep or os.path.join(tmp, "example-segmented.pcap")
        print(f"== offload segment {rel} {out}")
        sys.stdout.flush()
        rc = cli_main(["segment", path, out])
        sys.stdout.flush()
        if rc not in (0, 1) or not os.path.exists(out):
            print(f"offload demo: `offload segment` failed (exit status {rc})", file=sys.stderr)
            return rc or EXIT_BAD_INPUT
        print()
        print(f"== offload stats {out}")
        after = collect(out)
        print(render(after))
        print()
        print(f"{before['frames']} frames ({before['super_frames']} super-frames) became {after['frames']} frames "
              f"({after['super_frames']} longer than the MTU of {after['mtu']} bytes).")
        return rc
