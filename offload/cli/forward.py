"""``offload forward A B``: the offloading datapath between two ports."""

from __future__ import annotations

import json
import signal
import sys

from . import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE


def register(sub) -> None:
    p = sub.add_parser(
        "forward", help="forward frames between two ports (AF_XDP, tap, AF_PACKET) with GSO/GRO/checksum",
        description="Forward frames from port A to port B and back. Ports: afxdp:IFNAME[:QUEUE], tap:NAME, "
                    "packet:IFNAME (options as ,key=value). On SIGINT/SIGTERM the forwarder stops cleanly and "
                    "prints its counters as JSON on stdout.")
    p.add_argument("a", metavar="A", help="first port spec")
    p.add_argument("b", metavar="B", help="second port spec")
    p.add_argument("--gso", action="store_true", help="segment super-packets for a port that cannot take them")
    p.add_argument("--gro", action="store_true", help="coalesce received frames for a port that takes super-packets")
    p.add_argument("--csum", action="store_true", help="complete partial checksums for a port that cannot take them")
    p.add_argument("--burst", type=int, default=64, help="frames per receive burst (default 64)")
    p.add_argument("--netns", help="open the ports inside this network namespace")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--busy-poll", action="store_true", help="spin instead of sleeping in poll() when idle")
    p.set_defaults(func=run)


def _tap_offload(spec: str, other: str, args) -> dict:
    """A tap advertises offloads to its kernel only where the datapath can honour them."""
    if not spec.startswith("tap:") or ",offload=" in spec:
        return {}
    other_takes = other.startswith(("tap:", "packet:")) and "vnet_hdr=0" not in other
    if other_takes or args.gso:
        return {"offload": True}
    return {"offload": "csum" if args.csum else False}


def run(args) -> int:
    from ..nic_shim import Forwarder, open_port

    if args.burst < 1 or args.burst > 256:
        print("offload forward: --burst must be 1..256", file=sys.stderr)
        return EXIT_USAGE
    ports = []
    try:
        try:
            a = open_port(args.a, netns=args.netns, **_tap_offload(args.a, args.b, args))
            ports.append(a)
            b = open_port(args.b, netns=args.netns, **_tap_offload(args.b, args.a, args))
            ports.append(b)
            fwd = Forwarder(a, b, gso=args.gso, gro=args.gro, csum=args.csum, burst=args.burst,
                            busy_poll=args.busy_poll)
        except (OSError, ValueError, RuntimeError, NotImplementedError) as e:
            print(f"offload forward: {e}", file=sys.stderr)
            return EXIT_USAGE
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: fwd.stop())
        print(json.dumps({"ready": True, "a": repr(a), "b": repr(b),
                          "pipeline": {"a_to_b": fwd.ab_desc(fwd.ab), "b_to_a": fwd.ab_desc(fwd.ba)}}), flush=True)
        stats = fwd.run(duration=args.duration)
        leak = None
        try:
            stats["frames"] = fwd.check_frames()
        except AssertionError as e:
            leak = str(e)
            stats["leak"] = leak
        print(json.dumps(stats), flush=True)
        return EXIT_FINDINGS if leak else EXIT_OK
    finally:
        for p in ports:
            p.close()
