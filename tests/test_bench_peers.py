"""The benchmark comparison itself: identical frames on every side, peers that check
their own work, ratios only between rows of one run, and the one command end to end."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import runner, workloads as W  # noqa: E402


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("wl"))
    return {w.name: w for w in W.materialize(d)}


def test_workload_frames_pass_scapy(ws):
    """scapy (the oracle) agrees the checksum and GRO inputs carry valid checksums and
    lengths, and that the GSO super-frames have valid IPv4 headers and lengths."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    for name in ("verify_tcp4_64_b32", "verify_tcp6_1500_b32", "gro_tcp4_f64_b32"):
        for fr in W.read_pcap(ws[name].file)[:8]:
            p = Ether(fr)
            q = p.copy()
            if IP in q:
                del q[IP].chksum
            del q[TCP].chksum
            assert bytes(Ether(bytes(q))) == fr, name
    for name in ("gso_tcp4_64k", "gso_tcp6_64k", "gso_udp4_64k"):
        fr = W.read_pcap(ws[name].file)[0]
        p = Ether(fr)
        if IP in p:
            q = p.copy()
            del q[IP].chksum
            assert bytes(Ether(bytes(q)))[14:34] == fr[14:34]
            assert p[IP].len == len(fr) - 14
        else:
            assert p[IPv6].plen == len(fr) - 54
        assert (TCP in p) or (UDP in p)


def test_big_tcp_workload_is_linux_shaped(ws):
    """BIG TCP super-frame: IPv4 total length 0, and its partial checksum is the pseudo-header
    sum over the true (32-bit) L4 length, as Linux computes it."""
    import struct
    from scapy.utils import checksum
    fr = W.read_pcap(ws["gso_tcp4_big"].file)[0]
    assert len(fr) > 65535 and fr[16:18] == b"\0\0"
    l4_len = len(fr) - 34
    pseudo = fr[26:34] + struct.pack("!xBHH", 6, l4_len & 0xFFFF, l4_len >> 16)
    assert struct.unpack("!H", fr[50:52])[0] == (~checksum(pseudo)) & 0xFFFF


def test_fnv_matches_manifest(ws):
    w = ws["verify_tcp4_64_b32"]
    assert W.fnv1a64(W.read_pcap(w.file)) == w.fnv


def _peer(name):
    """A C peer built by `make bench-peers` (a prerequisite of `make test`); in CI a missing
    one is an error, elsewhere the test says how to get it and skips."""
    path = os.path.join(ROOT, "bench", "peers", "build", name)
    if not os.access(path, os.X_OK):
        msg = f"{name} not built: run `make bench-peers` (installs build tools and libdpdk-dev as root)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _run_peer(binary, w, *extra):
    env = dict(os.environ, OFFLOAD_BENCH_REPS="3", OFFLOAD_BENCH_MIN_NS="10000")
    argv = [binary, w.op, w.name, str(w.size), w.file, *extra]
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]


def test_careful_c_reads_the_same_frames_and_checks_them(ws):
    cref = _peer("cref")
    for name in ("verify_tcp4_64_b32", "verify_tcp6_1500_b32", "gso_tcp4_16k"):
        w = ws[name]
        rows = _run_peer(cref, w, *([str(w.params["mss"])] if "mss" in w.params else []))
        assert {r["impl"] for r in rows} == {"memcpy", "careful-c"}
        assert all(r["fnv"] == w.fnv for r in rows)
        assert all(r["ns_per_pkt"] > 0 for r in rows)
    seg = [r for r in rows if r["unit"] == "seg"]
    assert seg and seg[0]["extra"] == 12  # 16384 bytes at MSS 1448


def test_dpdk_peer_same_frames_and_forms(ws):
    dp = _peer("dpdk_peer")
    w = ws["gro_tcp4_f1_b32"]
    rows = _run_peer(dp, w, str(w.burst))
    assert {r["impl"] for r in rows} == {"dpdk-bare", "dpdk-full", "dpdk-table-bare", "dpdk-table-full"}
    assert all(r["fnv"] == w.fnv for r in rows)
    # 512 in-order 1448-byte segments of one flow, bursts of 32: 16 merged frames
    assert all(abs(r["extra"] * w.n_frames - 16) < 1e-6 for r in rows if not r["impl"].startswith("dpdk-table"))
    w = ws["gso_tcp4_64k"]
    rows = _run_peer(dp, w, str(w.burst), str(w.params["mss"]))
    assert {(r["impl"], r["unit"]) for r in rows} == {(i, u) for i in ("dpdk-bare", "dpdk-full") for u in ("pkt", "seg")}
    assert all(r["extra"] == 45 for r in rows)
    w = ws["gso_tcp6_64k"]  # DPDK 22.11 has no TCP/IPv6 GSO: said, not faked
    rows = _run_peer(dp, w, str(w.burst), str(w.params["mss"]))
    assert len(rows) == 1 and "skipped" in rows[0]


def test_merge_ratios_only_within_the_run():
    ws = [W.Workload("gso_x", "gso4", 65226, 8, 8, fnv="aa", label="x")]
    base = {"op": "gso4", "workload": "gso_x", "size": 0, "unit": "pkt", "min": 1, "max": 1, "iqr": 10,
            "reps": 5, "pkts_per_rep": 8, "fnv": "aa", "notes": ""}
    raw = [dict(base, peer="ours", impl="offload", ns_per_pkt=1000.0, extra=45.0),
           dict(base, peer="dpdk", impl="dpdk-full", ns_per_pkt=3000.0, extra=45.0),
           dict(base, peer="dpdk", impl="dpdk-full", unit="seg", ns_per_pkt=3000.0 / 45, extra=45.0),
           dict(base, peer="c", impl="careful-c", ns_per_pkt=2000.0, fnv="bb")]
    rows = runner.merge(ws, raw)
    by = {(r["impl"], r["unit"]): r for r in rows}
    assert by[("dpdk-full", "pkt")]["x_ours"] == pytest.approx(3.0)
    assert by[("offload", "seg")]["ns_per_pkt"] == pytest.approx(1000 / 45)
    assert by[("dpdk-full", "seg")]["x_ours"] == pytest.approx(3.0)
    assert by[("careful-c", "pkt")]["same_frames"] is False
    assert by[("offload", "pkt")]["form"] == "parsed, flat segments, csums written"
    assert "x ours" in runner.text_table(rows, [], runner.machine())


def test_offload_bench_command_end_to_end(tmp_path):
    """`offload bench --json` on one small workload: our row, both memcpy references,
    the careful-C and dpkt peers, the same frames everywhere, ratios from this run."""
    env = dict(os.environ, PYTHONPATH=ROOT, OFFLOAD_BENCH_WORKDIR=str(tmp_path / "work"))
    p = subprocess.run([sys.executable, "-m", "offload", "bench", "--only", "parse_mixed", "--peers", "c,dpkt",
                        "--json", "--out", str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout)
    rows = [r for r in res["rows"] if r["workload"] == "parse_mixed"]
    impls = {r["impl"] for r in rows}
    assert {"offload", "memcpy-numpy", "dpkt"} <= impls
    assert all(r["same_frames"] for r in rows)
    assert all(r["x_ours"] is not None and r["ns_per_pkt"] > 0 for r in rows)
    assert res["machine"]["cpu"] and res["machine"]["numba"]
    assert os.path.exists(tmp_path / "out" / "table.txt")


def _dumped(binary, w, tmp_path, *extra):
    prefix = str(tmp_path / os.path.basename(binary))
    env = dict(os.environ, OFFLOAD_BENCH_REPS="1", OFFLOAD_BENCH_MIN_NS="1000", OFFLOAD_BENCH_DUMP=prefix)
    p = subprocess.run([binary, w.op, w.name, str(w.size), w.file, *extra], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return prefix


def _scapy_valid(frames):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    for fr in frames:
        q = Ether(fr)
        del q[IP].chksum
        del q[TCP].chksum
        assert bytes(Ether(bytes(q))) == fr


def test_full_forms_do_our_work_byte_for_byte(ws, tmp_path):
    """The peers' "full" rows are not flattered shortcuts: careful C's and DPDK's GSO output,
    and DPDK's GRO output, are byte-identical to offload's, and scapy finds them valid."""
    from bench import ours
    from offload import gro, gso
    w = ws["gso_tcp4_64k"]
    frames = W.read_pcap(w.file)
    r = gso.segment(ours._batch(frames), mss=w.params["mss"], csum="full")
    want = [bytes(r.out.frame(i)) for i in range(len(r.out))]
    assert len(want) == 8 * 45
    _scapy_valid(want[:3] + want[-3:])
    pre = _dumped(_peer("cref"), w, tmp_path, str(w.params["mss"]))
    assert W.read_pcap(pre + ".careful-c.pcap") == want
    dp = _peer("dpdk_peer")
    pre = _dumped(dp, w, tmp_path, str(w.burst), str(w.params["mss"]))
    assert W.read_pcap(pre + ".dpdk-full.pcap") == want
    w = ws["gro_tcp4_f1_b32"]
    b = ours._batch(W.read_pcap(w.file))
    c = gro.Coalescer(max_burst=w.burst, csum="full", verify=True)
    want = []
    for x in ours._bursts(b, w.burst):
        out = c.run(x)
        want += [bytes(out.frame(i)) for i in range(len(out))]
    _scapy_valid(want[:2])
    pre = _dumped(dp, w, tmp_path, str(w.burst))
    assert W.read_pcap(pre + ".dpdk-full.pcap") == want


@pytest.mark.kernel
def test_kernel_peer_segments_and_coalesces(ws):
    """The kernel rows come from the kernel really doing the work: 12 segments per 16 KB
    super-frame, and far fewer frames out of GRO than in."""
    from offload import netns
    from bench.peers import kernel_peer
    ok, why = netns.available()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    rows, skipped = kernel_peer.run_all([ws["gso_tcp4_16k"], ws["gro_tcp4_f1_b32"]], short=True)
    assert not skipped, skipped
    by = {r["workload"]: r for r in rows}
    assert by["gso_tcp4_16k"]["extra"] == 12
    assert by["gro_tcp4_f1_b32"]["extra"] < 0.25
    assert not any(n.startswith("off-bench") for n in os.listdir("/run/netns")) if os.path.isdir("/run/netns") else True
