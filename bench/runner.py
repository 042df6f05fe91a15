"""Run the comparison: our pytest-benchmark suite and every peer, in one process tree,
then one table (text, JSON, Markdown) and one plot.

Used by ``offload bench`` (``offload/cli/bench.py``) and ``make bench``. Steps:

1. write the workload pcaps (:mod:`bench.workloads`);
2. run ``pytest bench/test_compare.py --benchmark-json`` (ours + ``np.copyto``);
   with ``--suites all`` every ``bench/test_*.py`` too (listed in an appendix);
3. run the C peers (``bench/peers/build/cref``, ``dpdk_peer``), scapy and dpkt, and,
   when root, the Linux kernel over a veth pair;
4. check every peer loaded the same frames (FNV-1a 64 against the manifest);
5. merge into rows: one per (workload, implementation), ns per packet = median
   over repetitions, spread = IQR / median, ratio = peer / ours from this run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

from bench import workloads as W

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS_BUILD = os.path.join(ROOT, "bench", "peers", "build")

# Short tags: how each implementation's output differs (the notes say it in full).
FORM = {
    ("raw", None): "sum only",
    ("verify", "offload"): "parsed + verified in place",
    ("fill", "offload"): "parsed + written in place",
    ("verify", None): "verified in place (layout known, no parse)",
    ("verify", "dpkt"): "rebuilt to new bytes, compared",
    ("verify", "scapy"): "rebuilt to new bytes, compared",
    ("fill", "dpkt"): "rebuilt to new bytes",
    ("fill", "scapy"): "rebuilt to new bytes",
    ("raw", "dpkt"): "checksum only (Python)",
    ("raw", "scapy"): "checksum only (Python)",
    ("fill", None): "written in place (layout known, no parse)",
    ("complete", None): "partial csum completed in place",
    ("gso", "offload"): "parsed, flat segments, csums written",
    ("gso", "careful-c"): "flat segments, csums written (copy, then sum)",
    ("gso", "dpdk-bare"): "zero-copy mbuf chains, no csums; lengths preset",
    ("gso", "dpdk-full"): "flat segments, csums written; lengths preset",
    ("gso", "kernel"): "skbs through veth, csums written, +1 syscall/super-pkt",
    ("gso", "scapy"): "IP fragments (UFO), bytes objects",
    ("uso", "offload"): "parsed, flat datagrams, csums written",
    ("uso", "careful-c"): "flat datagrams, csums written (copy, then sum)",
    ("uso", "dpdk-bare"): "IP fragments (UFO), zero-copy chains, no csums",
    ("uso", "dpdk-full"): "IP fragments (UFO), flat, csums written",
    ("uso", "kernel"): "skbs through veth, csums written, +1 syscall/super-pkt",
    ("uso", "scapy"): "IP fragments (UFO), bytes objects",
    ("gro", "offload"): "parsed, inputs verified, flat output, csums written, per burst",
    ("gro", "offload-table"): "parsed, inputs verified, flat output, csums written, table",
    ("uso", "offload-ufo"): "parsed, IP fragments (UFO), flat, csums written",
    ("gro", "dpdk-bare"): "zero-copy chains, nothing verified or written, per burst; ptype preset",
    ("gro", "dpdk-table-bare"): "zero-copy chains, nothing verified, table across bursts; ptype preset",
    ("gro", "dpdk-full"): "inputs verified, flat output, csums written, per burst; ptype preset",
    ("gro", "dpdk-table-full"): "inputs verified, flat output, csums written, table; ptype preset",
    ("gro", "kernel"): "sendto per frame + veth + GRO, not separable",
    ("parse", "offload"): "offsets/lengths into meta",
    ("parse", "dpkt"): "Python objects per layer",
    ("parse", "scapy"): "Python objects per layer",
    ("pcap", "offload"): "mmap'd file -> batch view + offsets in meta",
    ("pcap", "dpkt"): "file read + Python objects per layer",
    ("pcap", "scapy"): "file read + Python objects per layer",
    ("pcapw", None): "pcap bytes in memory",
    (None, "memcpy-numpy"): "reference: np.copyto, same bytes",
    (None, "memcpy"): "reference: C memcpy, same bytes",
}
IMPL_ORDER = ["offload", "offload-table", "offload-ufo", "memcpy-numpy", "memcpy", "careful-c", "dpdk-bare", "dpdk-full", "dpdk-table-bare",
              "dpdk-table-full", "kernel", "dpkt", "scapy"]
IMPL_LABEL = {"offload": "offload (ours)", "offload-table": "offload table", "offload-ufo": "offload UFO", "memcpy-numpy": "np.copyto", "memcpy": "C memcpy",
              "careful-c": "careful C", "dpdk-bare": "DPDK bare", "dpdk-full": "DPDK full",
              "dpdk-table-bare": "DPDK table bare", "dpdk-table-full": "DPDK table full",
              "kernel": "Linux kernel", "dpkt": "dpkt", "scapy": "scapy"}


def _family(op: str) -> str:
    for k in ("verify", "fill", "complete", "gso", "uso", "gro", "raw", "parse", "pcapw", "pcap"):
        if op.startswith(k):
            return k
    return op


def form_of(op: str, impl: str) -> str:
    fam = _family(op)
    for key in ((fam, impl), (None, impl), (fam, None)):
        if key in FORM:
            return FORM[key]
    return ""


# --- machine ----------------------------------------------------------------------------------

def machine() -> dict:
    info = {"python": platform.python_version(), "kernel": platform.release(), "cores": os.cpu_count()}
    cpu, flags = "", []
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    except OSError:
        cpu = platform.processor()
    info["cpu"] = cpu
    info["flags_simd"] = [f for f in flags if f.startswith(("sse", "ssse", "avx", "fma", "bmi", "erms", "fsrm"))]
    info["flags"] = flags
    for mod in ("numpy", "numba", "scapy", "dpkt", "pytest_benchmark", "matplotlib"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", getattr(m, "VERSION", "?"))
        except Exception:
            info[mod] = None
    info["dpdk"] = _pkg_version("libdpdk")
    try:
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        info["loadavg"] = None
    info["cc"] = _cmd_out(["cc", "--version"]).split("\n", 1)[0]
    return info


def _cmd_out(argv) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def _pkg_version(name) -> str | None:
    return _cmd_out(["pkg-config", "--modversion", name]) or None


# --- our side: pytest-benchmark -----------------------------------------------------------------

def run_pytest(workdir: str, outdir: str, short: bool, suites: str, log,
               only: str | None = None) -> tuple[list[dict], list[dict]]:
    """Returns (rows of the comparison suite, raw benchmarks of the other suites)."""
    jpath = os.path.join(outdir, "pytest-benchmark.json")
    targets = [os.path.join("bench", "test_compare.py")]
    if suites == "all":
        targets = ["bench"]
    argv = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider", f"--benchmark-json={jpath}",
            "--benchmark-warmup=on", "--benchmark-sort=name", "--benchmark-columns=median,iqr,rounds"]
    if only:
        argv += ["-k", only]
    argv += (["--benchmark-min-rounds=7", "--benchmark-max-time=0.1", "--benchmark-warmup-iterations=3"] if short
             else ["--benchmark-min-rounds=25", "--benchmark-max-time=1.0"])
    env = dict(os.environ, OFFLOAD_BENCH_WORKDIR=workdir, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log(f"running: {' '.join(argv[2:])}")
    p = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode not in (0, 5) and not os.path.exists(jpath):
        raise RuntimeError(f"pytest failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}")
    if p.returncode != 0:
        log(f"pytest exit {p.returncode} (failures are listed below; their rows are missing)\n{_tail(p.stdout)}")
    data = json.load(open(jpath))
    rows, others = [], []
    for b in data.get("benchmarks", []):
        ei = b.get("extra_info", {})
        st = b["stats"]
        if "workload" in ei and "units" in ei:
            k = 1e9 / float(ei["units"])
            rows.append({"peer": "ours" if ei["impl"].startswith("offload") else "numpy", "impl": ei["impl"],
                         "op": ei["op"], "workload": ei["workload"], "size": ei["size"],
                         "unit": ei.get("unit", "pkt"), "ns_per_pkt": st["median"] * k, "min": st["min"] * k,
                         "max": st["max"] * k, "iqr": st["iqr"] * k, "reps": st["rounds"],
                         "pkts_per_rep": int(ei["units"]) * int(st.get("iterations", 1) or 1),
                         "fnv": ei.get("fnv", ""), "notes": ei.get("notes", ""),
                         "extra": float(ei.get("out_units", 0)) / float(ei["units"]) if ei.get("out_units") else 0.0})
        else:
            others.append({"name": b["fullname"], "group": b.get("group"), "median_s": st["median"],
                           "iqr_s": st["iqr"], "rounds": st["rounds"], "extra_info": ei})
    return rows, others


def _tail(s: str, n: int = 25) -> str:
    return "\n".join(s.strip().splitlines()[-n:])


# --- C peers ---------------------------------------------------------------------------------

def build_peers(log) -> dict[str, str | None]:
    """Build the C peers with ``make bench-peers``; returns {name: path or None} and logs why not."""
    out = {"cref": None, "dpdk_peer": None}
    if shutil.which("make") and os.path.exists(os.path.join(ROOT, "Makefile")):
        p = subprocess.run(["make", "-s", "-C", ROOT, "bench-peers"], capture_output=True, text=True)
        for line in (p.stdout + p.stderr).splitlines():
            if line.strip():
                log(line)
    for name in out:
        path = os.path.join(PEERS_BUILD, name)
        if os.access(path, os.X_OK):
            out[name] = path
    if not out["cref"]:
        log("careful-C reference not built (no C compiler?): its rows are missing")
    if not out["dpdk_peer"]:
        log("DPDK peer not built (libdpdk-dev not installed, see `make bench-peers`): DPDK rows are missing")
    return out


def run_c_peer(binary: str, w: W.Workload, reps: int, min_ns: int, log) -> list[dict]:
    argv = [binary, w.op, w.name, str(w.size), w.file]
    if os.path.basename(binary).startswith("dpdk"):
        argv.append(str(w.burst))
    if "mss" in w.params:
        argv.append(str(w.params["mss"]))
    env = dict(os.environ, OFFLOAD_BENCH_REPS=str(reps), OFFLOAD_BENCH_MIN_NS=str(min_ns))
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    rows = []
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            rows.append(json.loads(line))
    if p.returncode != 0:
        log(f"{os.path.basename(binary)} {w.name}: exit {p.returncode}: {p.stderr.strip()[-500:]}")
    return rows


# --- merge and present ---------------------------------------------------------------------------

def merge(ws: list[W.Workload], raw: list[dict]) -> list[dict]:
    """Rows: one per (workload, impl, unit) with ns_per_pkt, spread and the ratio to ours."""
    by_w = {w.name: w for w in ws}
    rows = []
    for r in raw:
        if "skipped" in r or r.get("workload") not in by_w:
            continue
        w = by_w[r["workload"]]
        row = dict(r)
        row["size"] = w.size
        row["burst"] = w.burst
        row["label"] = w.label
        row["form"] = form_of(w.op, r["impl"])
        row["same_frames"] = (r.get("fnv") == w.fnv)
        row["spread_pct"] = 100.0 * r["iqr"] / r["ns_per_pkt"] if r["ns_per_pkt"] else 0.0
        # input bytes per ns = GB/s (per input packet; a segment row keeps its packet's rate)
        row["gbps"] = (w.n_bytes / w.n_frames) / r["ns_per_pkt"] if r["ns_per_pkt"] and w.n_frames else 0.0
        rows.append(row)
    # per-segment rows for ours and the Python peers from out_units (the C peers print their own)
    for row in list(rows):
        if row["unit"] == "pkt" and row.get("extra") and _family(row["op"]) in ("gso", "uso") \
                and row["peer"] in ("ours", "scapy", "kernel"):
            seg = dict(row)
            seg["unit"] = "seg"
            for k in ("ns_per_pkt", "min", "max", "iqr"):
                seg[k] = row[k] / row["extra"]
            rows.append(seg)
    ours = {(r["workload"], r["unit"]): r["ns_per_pkt"] for r in rows if r["impl"] == "offload"}
    for r in rows:
        o = ours.get((r["workload"], r["unit"]))
        r["x_ours"] = (r["ns_per_pkt"] / o) if o else None
    order = {w.name: i for i, w in enumerate(ws)}
    rows.sort(key=lambda r: (order[r["workload"]], r["unit"] != "pkt",
                             IMPL_ORDER.index(r["impl"]) if r["impl"] in IMPL_ORDER else 99))
    return rows


def _fmt_ns(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} ms"
    if x >= 1e4:
        return f"{x / 1e3:.1f} us"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.1f}"


def text_table(rows, skipped, info) -> str:
    out = [f"CPU: {info['cpu']} ({info['cores']} cores), SIMD flags: {' '.join(info['flags_simd'])}",
           f"load average at start/end: {info.get('loadavg')} / {info.get('loadavg_end')}",
           f"Linux {info['kernel']}, Python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
           f"DPDK {info['dpdk'] or 'not installed'}",
           "ns/pkt = median over repetitions (unit 'seg' = per output segment); spread = IQR/median; "
           "x ours = that row / our row, same run. '!' = peer loaded different frames.", ""]
    out += ["Summary: ns per packet (ours with its spread; peers with peer/ours in brackets, above 1x we are",
            "faster). Forms differ per column; the detailed table below says what each row's output is.", "",
            wide_text(rows), "", "Detailed:", ""]
    ww = max([len("workload")] + [len(r["workload"]) for r in rows])
    hdr = (f"{'workload':<{ww}} {'unit':<4} {'implementation':<16} {'ns/pkt':>9} {'spread':>7} {'x ours':>7} "
           f"{'GB/s':>6}  what is measured")
    out += [hdr, "-" * len(hdr)]
    last = None
    for r in rows:
        if last and r["workload"] != last:
            out.append("")
        last = r["workload"]
        x = _fmt_x(r["x_ours"]) if r["x_ours"] is not None else "-"
        flag = "" if r["same_frames"] else " !"
        out.append(f"{r['workload']:<{ww}} {r['unit']:<4} {IMPL_LABEL.get(r['impl'], r['impl']):<16} "
                   f"{_fmt_ns(r['ns_per_pkt']):>9} {r['spread_pct']:>6.1f}% {x:>7} {r.get('gbps', 0):>6.2f}  "
                   f"{r['form']}{flag}")
    if skipped:
        out += ["", "Not measured:"]
        seen = set()
        for s in skipped:
            key = (s.get("peer"), s.get("op"), s["skipped"])
            if key not in seen:
                seen.add(key)
                out.append(f"  {s.get('peer')}: {s.get('op')}: {s['skipped']}")
    return "\n".join(out)


WIDE_COLS = ["offload", "memcpy-numpy", "memcpy", "careful-c", "dpdk-full", "dpdk-bare", "kernel", "dpkt", "scapy"]


def wide_rows(rows) -> list[list[str]]:
    """One line per (workload, unit): our ns/pkt with its spread, then each peer's ns/pkt
    with its ratio to ours (peer / ours: above 1 we are faster)."""
    keys = []
    for r in rows:
        k = (r["workload"], r["unit"])
        if k not in keys:
            keys.append(k)
    out = []
    for wl, unit in keys:
        cells = {r["impl"]: r for r in rows if r["workload"] == wl and r["unit"] == unit}
        line = [wl, unit]
        for c in WIDE_COLS:
            r = cells.get(c)
            if r is None:
                line.append("-")
            elif c == "offload":
                line.append(f"{_fmt_ns(r['ns_per_pkt'])} ±{r['spread_pct']:.0f}%")
            elif r["x_ours"] is not None:
                line.append(f"{_fmt_ns(r['ns_per_pkt'])} ({_fmt_x(r['x_ours'])})")
            else:
                line.append(_fmt_ns(r["ns_per_pkt"]))
        out.append(line)
    return out


def _fmt_x(x: float) -> str:
    if x < 0.1:
        return f"{x:.3f}x"
    return f"{x:.2f}x" if x < 10 else f"{x:.0f}x"


def wide_text(rows) -> str:
    head = ["workload", "unit"] + [IMPL_LABEL[c] for c in WIDE_COLS]
    body = wide_rows(rows)
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    fmt = lambda cols: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    return "\n".join([fmt(head), "-" * (sum(widths) + 2 * len(widths))] + [fmt(b) for b in body])


def wide_markdown(rows) -> str:
    head = ["workload", "unit"] + [IMPL_LABEL[c] for c in WIDE_COLS]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * len(WIDE_COLS)]
    out += ["| " + " | ".join(b) + " |" for b in wide_rows(rows)]
    return "\n".join(out)


def markdown_table(rows) -> str:
    out = ["| workload | unit | implementation | ns/pkt | spread (IQR) | × ours | GB/s in | output / what is measured |",
           "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        x = _fmt_x(r["x_ours"]) if r["x_ours"] is not None else "–"
        out.append(f"| {r['workload']} | {r['unit']} | {IMPL_LABEL.get(r['impl'], r['impl'])} | "
                   f"{_fmt_ns(r['ns_per_pkt'])} | {r['spread_pct']:.1f}% | {x} | {r.get('gbps', 0):.2f} | "
                   f"{r['form'] or r['notes']} |")
    return "\n".join(out)


def notes_table(rows) -> str:
    seen, out = set(), ["| implementation | op | exactly what is timed |", "|---|---|---|"]
    for r in rows:
        key = (r["impl"], r["op"])
        if key in seen or not r.get("notes"):
            continue
        seen.add(key)
        out.append(f"| {IMPL_LABEL.get(r['impl'], r['impl'])} | {r['op']} | {r['notes']} |")
    return "\n".join(out)


def plot(rows, path: str) -> str | None:
    """ns/pkt against packet size, one panel per operation family, log-log. Returns the
    path, or None (with the reason printed by the caller) when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [("raw", "raw sum (per span)"), ("verify", "verify IPv4+TCP checksums (burst 256)"),
              ("fill", "write IPv4+TCP checksums (burst 256)"), ("gso", "GSO TCP/IPv4 (per output segment)"),
              ("gro", "GRO TCP/IPv4, 1 flow (per input frame)"),
              ("parse", "parse; read pcap + parse; write pcap (per frame)")]
    panels = [p for p in panels if any(_family(r["op"]) == p[0] for r in rows)]
    if not panels:
        return None
    ncol = 3
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.0 * nrow), squeeze=False)
    colors = {"offload": "C3", "offload-table": "tab:brown", "offload-ufo": "tab:pink", "memcpy-numpy": "0.55", "memcpy": "0.25", "careful-c": "C2", "dpdk-bare": "C0",
              "dpdk-full": "C9", "dpdk-table-bare": "C4", "dpdk-table-full": "C6", "kernel": "C1", "dpkt": "C5",
              "scapy": "C8"}
    for ax, (fam, title) in zip(axes.flat, panels):
        if fam == "parse":
            _bars(ax, [r for r in rows if _family(r["op"]) in ("parse", "pcap", "pcapw")], colors)
            ax.set_title(title, fontsize=10)
            continue
        sel = [r for r in rows if _family(r["op"]) == fam]
        if fam in ("verify", "fill"):
            sel = [r for r in sel if r["burst"] == 256 and r["op"].endswith("4")]
        if fam == "gso":
            sel = [r for r in sel if r["unit"] == "seg" and r["op"] == "gso4"]
        if fam == "gro":
            sel = [r for r in sel if r["workload"].startswith("gro_tcp4_f1_")]
        impls = [i for i in IMPL_ORDER if any(r["impl"] == i for r in sel)]
        for impl in impls:
            pts = sorted((r["size"], r["ns_per_pkt"], r["iqr"]) for r in sel if r["impl"] == impl)
            if fam == "gro":  # x = burst size instead of frame size
                pts = sorted((r["burst"], r["ns_per_pkt"], r["iqr"]) for r in sel if r["impl"] == impl)
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            # half the IQR each side, clipped so a noisy point does not run off a log axis
            errs = [[min(p[2] / 2, 0.5 * p[1]) for p in pts], [p[2] / 2 for p in pts]]
            ax.errorbar(xs, ys, yerr=errs, marker="o", ms=4, lw=1.6 if impl == "offload" else 1.0,
                        color=colors.get(impl), label=IMPL_LABEL.get(impl, impl), capsize=2,
                        ls="--" if impl.startswith("memcpy") else "-")
        ax.set_title(title, fontsize=10)
        ax.set_xscale("log")
        ticks = sorted({(r["burst"] if fam == "gro" else r["size"]) for r in sel})
        if 0 < len(ticks) <= 4:
            ax.set_xticks(ticks)
            ax.set_xticklabels([str(t) for t in ticks], fontsize=8)
            ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("burst (frames)" if fam == "gro" else "frame / span size (bytes)", fontsize=8)
        ax.set_ylabel("ns per packet" if fam != "gso" else "ns per segment", fontsize=8)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("offload vs peers: ns per packet (median; bars = IQR), same frames, same run", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bars(ax, sel, colors):
    """Horizontal bars (log scale): one per (op, implementation)."""
    sel = sorted(sel, key=lambda r: (r["op"], IMPL_ORDER.index(r["impl"]) if r["impl"] in IMPL_ORDER else 99))
    what = {"pcap": "read+parse", "pcapw": "write", "parse": "parse"}
    labels = [f"{what.get(r['op'], r['op'])}: {IMPL_LABEL.get(r['impl'], r['impl'])}" for r in sel]
    ys = list(range(len(sel)))[::-1]
    ax.barh(ys, [r["ns_per_pkt"] for r in sel], color=[colors.get(r["impl"], "0.5") for r in sel],
            xerr=[[min(r["iqr"] / 2, 0.5 * r["ns_per_pkt"]) for r in sel], [r["iqr"] / 2 for r in sel]],
            capsize=2)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("ns per frame", fontsize=8)
    ax.grid(True, axis="x", which="both", alpha=0.25)


# --- the whole run ---------------------------------------------------------------------------------

def run(outdir: str, short: bool = True, suites: str = "compare", peers=("c", "dpdk", "dpkt", "scapy", "kernel"),
        only: str | None = None, log=print, command: str | None = None) -> dict:
    os.makedirs(outdir, exist_ok=True)
    t_start = time.time()
    info = machine()
    workdir = W.default_workdir()
    log(f"workloads -> {workdir}")
    ws = W.materialize(workdir, short=True)
    if only:
        ws = [w for w in ws if only in w.name]
    raw: list[dict] = []
    skipped: list[dict] = []

    rows_ours, others = run_pytest(workdir, outdir, short, suites, log, only)
    raw += [r for r in rows_ours if any(r["workload"] == w.name for w in ws)]
    have_ours = {r["workload"] for r in rows_ours if r["impl"] == "offload"}
    for w in ws:
        if w.name not in have_ours:
            skipped.append({"peer": "offload", "op": w.op, "workload": w.name,
                            "skipped": "engine not on this branch (or its benchmark was skipped)"})

    # many short repetitions: on a shared machine a preemption spoils one repetition, not the median
    reps = 15 if short else 41
    min_ns = 500_000 if short else 5_000_000
    bins = build_peers(log) if ("c" in peers or "dpdk" in peers) else {}
    for name, peer, why in (("cref", "c", "no C compiler (make bench-peers builds it)"),
                            ("dpdk_peer", "dpdk", "DPDK not installed: libdpdk-dev (Debian) and pkg-config are "
                             "needed; `make bench` installs them when run as root")):
        if peer in peers and not bins.get(name):
            skipped.append({"peer": peer, "op": "all", "workload": "", "skipped": why})
    for w in ws:
        for name, peer in (("cref", "c"), ("dpdk_peer", "dpdk")):
            if peer in peers and bins.get(name):
                for r in run_c_peer(bins[name], w, reps, min_ns, log):
                    (skipped if "skipped" in r else raw).append(r)
    py_done: dict = {}
    for w in ws:
        for peer in ("dpkt", "scapy"):
            if peer not in peers:
                continue
            from bench.peers import pypeers
            key = (peer, w.op, w.file)
            if key not in py_done:
                py_done[key] = pypeers.measure(w, W.read_pcap(w.file), peer, reps=5 if short else 15,
                                               min_time=0.03 if short else 0.3, max_frames=64 if short else 512)
            r = dict(py_done[key], workload=w.name)
            (skipped if "skipped" in r else raw).append(r)
    if "kernel" in peers:
        from bench.peers import kernel_peer
        rk, sk = kernel_peer.run_all(ws, short=short, log=log)
        raw += rk
        skipped += sk

    try:
        info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        info["loadavg_end"] = None
    rows = merge(ws, raw)
    mism = [r for r in rows if not r["same_frames"]]
    for r in mism:
        log(f"WARNING: {r['impl']} on {r['workload']} loaded different frames (hash {r.get('fnv')})")
    result = {"machine": info, "command": command or " ".join(sys.argv), "short": short, "rows": rows, "skipped": skipped,
              "engine_suites": others, "seconds": round(time.time() - t_start, 1),
              "workloads": [asdict(w) for w in ws]}
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(outdir, "table.txt"), "w") as f:
        f.write(text_table(rows, skipped, info) + "\n")
    result["plot"] = plot(rows, os.path.join(outdir, "bench.png"))
    return result


def _fmt_s(sec: float) -> str:
    for unit, k in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if sec >= k:
            return f"{sec / k:.3g} {unit}"
    return f"{sec * 1e9:.3g} ns"


def engine_suites_table(others: list[dict]) -> str:
    if not others:
        return ""
    out = ["| benchmark | median per call | IQR | rounds | extra_info |", "|---|---:|---:|---:|---|"]
    for o in others:
        ei = ", ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}" for k, v in o["extra_info"].items())
        out.append(f"| {o['name']} | {_fmt_s(o['median_s'])} | {_fmt_s(o['iqr_s'])} | "
                   f"{o['rounds']} | {ei} |")
    return "\n".join(out)


def results_md(result: dict, plot_name: str = "bench.png") -> str:
    info = result["machine"]
    rows = result["rows"]
    skipped = result["skipped"]
    lines = [
        "# Benchmark results: offload vs DPDK, careful C, the kernel, scapy, dpkt",
        "",
        "Regenerate with `make bench` (or `offload bench --out bench/out`). Every number below comes from one run",
        "on the machine described; ratios (`× ours`: that row's time divided by ours, so > 1 means we are faster)",
        "are only taken between rows of this run. All sides read the *same* frames: the workload pcaps from",
        "`bench/workloads.py`; each side prints an FNV-1a 64 hash of what it loaded and the runner checks it.",
        "",
        "**The machine is a shared 2-vCPU VM with several other jobs running**: treat single numbers as",
        "±20 %, look at the spread column (interquartile range over repetitions / median) and at the memcpy",
        "rows measured alongside.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; SIMD flags: {' '.join(info['flags_simd'])}",
        f"- Linux {info['kernel']}; Python {info['python']}; numpy {info['numpy']}; numba {info['numba']}; "
        f"DPDK {info['dpdk'] or 'not installed'}; scapy {info['scapy']}; dpkt {info['dpkt']}; {info['cc']}",
        f"- command: `{result['command']}` ({'short' if result['short'] else 'full'} run, {result['seconds']} s); "
        "`make bench` runs exactly this after building the C peers",
        f"- load average (1/5/15 min) at the start: {info.get('loadavg')}, at the end: {info.get('loadavg_end')} "
        f"(on {info['cores']} vCPUs)",
        "",
        f"![ns per packet against size]({plot_name})",
        "",
        "## Summary",
        "",
        "ns per packet; ours with its spread, each peer with peer / ours in brackets (above 1x we are faster).",
        "Unit `pkt` = per input frame (per super-packet for GSO), `seg` = per output segment. The columns do",
        "not all do the same work: *DPDK full* and *careful C* produce what we produce (flat frames, checksums",
        "verified/written); *DPDK bare* is DPDK's zero-copy form that checks and writes no checksums; *kernel*",
        "includes a syscall per packet; see the detailed table for each row's exact output.",
        "",
        wide_markdown(rows),
        "",
        "## Detailed table",
        "",
        markdown_table(rows),
        "",
        "## What each row times",
        "",
        notes_table(rows),
        "",
    ]
    if skipped:
        lines += ["## Not measured", ""]
        seen = set()
        for s in skipped:
            key = (s.get("peer"), s.get("op"), s["skipped"])
            if key not in seen:
                seen.add(key)
                lines.append(f"- {s.get('peer')} / {s.get('op')}: {s['skipped']}")
        lines.append("")
    est = engine_suites_table(result.get("engine_suites", []))
    if est:
        lines += ["## Engine suites (bench/test_*.py, per call)", "", est, ""]
    return "\n".join(lines)


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


if __name__ == "__main__":  # pragma: no cover
    d = tempfile.mkdtemp()
    print(run(d)["rows"][:3])
