"""``offload bench``: ns per packet next to the peers, on this machine, in one run.

Runs a short version of the comparison (our pytest-benchmark suite on the
workload frames, ``np.copyto`` and C ``memcpy`` of the same bytes, a careful-C
reference, DPDK's checksum/GSO/GRO, scapy, dpkt and, as root, the Linux kernel
over a veth pair) and prints one table: workload, unit, implementation, ns/pkt,
spread (IQR / median), ratio to ours, and what each row's output is. Writes
``results.json``, ``table.txt`` and ``bench.png`` to ``--out``.

Needs a source checkout (the ``bench/`` directory next to the package); the C
peers are built by ``make bench-peers`` (``make bench`` does all of it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from . import EXIT_OK, EXIT_USAGE

PEERS = ("c", "dpdk", "dpkt", "scapy", "kernel")


def register(sub) -> None:
    p = sub.add_parser("bench", help="ns/pkt benchmarks side by side with DPDK, C, the kernel, scapy, dpkt",
                       description="ns per packet next to DPDK, a careful-C reference, the Linux kernel, scapy "
                                   "and dpkt, on the same frames, in one run; writes results.json, table.txt and "
                                   "bench.png (see bench/RESULTS.md)")
    p.add_argument("--out", default=None, help="directory for results.json, table.txt, bench.png "
                   "(default: bench/out in the checkout)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout instead of the table")
    p.add_argument("--full", action="store_true", help="the long run (more rounds and repetitions)")
    p.add_argument("--suites", choices=("compare", "all"), default="compare",
                   help="'all' also runs every bench/test_*.py engine suite (listed in an appendix)")
    p.add_argument("--peers", default=",".join(PEERS),
                   help=f"comma-separated subset of {','.join(PEERS)} (default: all)")
    p.add_argument("--only", default=None, metavar="SUBSTR", help="only workloads whose name contains SUBSTR")
    p.add_argument("--markdown", default=None, metavar="PATH",
                   help="also write the Markdown report (e.g. bench/RESULTS.md) with the plot next to it")
    p.set_defaults(func=main)


def _repo_root() -> str | None:
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return here if os.path.exists(os.path.join(here, "bench", "runner.py")) else None


def main(args) -> int:
    root = _repo_root()
    if root is None:
        print("offload bench needs a source checkout (the bench/ directory); clone the repository and run "
              "`make bench`", file=sys.stderr)
        return EXIT_USAGE
    peers = tuple(x.strip() for x in args.peers.split(",") if x.strip())
    bad = [x for x in peers if x not in PEERS]
    if bad:
        print(f"unknown peer(s): {', '.join(bad)} (choose from {', '.join(PEERS)})", file=sys.stderr)
        return EXIT_USAGE
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench import runner

    out = args.out or os.path.join(root, "bench", "out")
    log = (lambda m: print(m, file=sys.stderr)) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    command = "offload bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 1 and sys.argv[1] == "bench" else None
    result = runner.run(out, short=not args.full, suites=args.suites, peers=peers, only=args.only, log=log,
                        command=command)
    if args.markdown:
        md_dir = os.path.dirname(os.path.abspath(args.markdown))
        plot_name = "bench.png"
        dst = os.path.join(md_dir, plot_name)
        if result.get("plot") and os.path.abspath(result["plot"]) != os.path.abspath(dst):
            shutil.copyfile(result["plot"], dst)
        with open(args.markdown, "w") as f:
            f.write(runner.results_md(result, plot_name))
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print(runner.text_table(result["rows"], result["skipped"], result["machine"]))
        print(f"\nwritten: {os.path.join(out, 'results.json')}, {os.path.join(out, 'table.txt')}"
              + (f", {result['plot']}" if result.get("plot") else _no_plot_reason())
              + (f", {args.markdown}" if args.markdown else ""))
    return EXIT_OK


def _no_plot_reason() -> str:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return " (no plot: pip install 'offload[plot]')"
    return " (no plot: no plottable rows in this selection)"
