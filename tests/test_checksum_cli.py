"""``offload checksum verify|fix``: scapy-built captures, tshark as the oracle, the tcpdump corpus."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import conftest
from test_csum import E, TSHARK_FIELDS, _partial, tshark_verdicts_full

from scapy.all import IP, TCP, UDP, ICMP, IPv6, Raw, wrpcap  # noqa: E402

from offload import csum as C
from offload import pcap
from offload import status as S

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the corpus sits next to the main checkout; a worktree two levels deeper finds it too
CORPUS = next((os.path.join(d, "tcpdump") for d in (os.environ.get("OFFLOAD_CORPUS", ""), conftest.CORPUS_DIR,
                                                      os.path.join(ROOT, "..", "..", "shared", "corpus"))
               if d and os.path.isdir(os.path.join(d, "tcpdump"))), os.path.join(conftest.CORPUS_DIR, "tcpdump"))


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "offload", "checksum", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def sample_frames():
    """(frames, what verify must say about each)."""
    good4 = E() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80) / Raw(b"hello")
    good6 = E() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=53, dport=5353) / Raw(b"x" * 33)
    bad_ip = bytearray(bytes(good4))
    bad_ip[14 + 10] ^= 0x5A
    bad_l4 = bytearray(bytes(good6))
    bad_l4[14 + 40 + 7] ^= 1         # the UDP checksum field
    part, _, _ = _partial(E() / IP(src="192.168.1.1", dst="192.168.1.2") / TCP(sport=5, dport=6) / Raw(b"p" * 100))
    udp0 = E() / IP() / UDP(chksum=0) / Raw(b"abc")
    icmp = E() / IP() / ICMP() / Raw(b"ping")
    frames = [bytes(good4), bytes(good6), bytes(bad_ip), bytes(bad_l4), part, bytes(udp0), bytes(icmp)]
    want = [S.OK, S.OK, S.CSUM_BAD_IP, S.CSUM_BAD_L4, S.CSUM_PARTIAL, S.CSUM_NONE, S.OK]
    return frames, want


def write_pcap(path, frames):
    wrpcap(path, [E().__class__(f) for f in frames])


def test_verify_reports_bad_frames_with_flow_and_values(tmp_path):
    frames, want = sample_frames()
    path = str(tmp_path / "in.pcap")
    write_pcap(path, frames)
    r = run_cli("verify", path)
    assert r.returncode == 1, r.stderr
    assert "#2" in r.stdout and "tcp 10.0.0.1:1234 > 10.0.0.2:80" in r.stdout
    assert "#3" in r.stdout and "udp [2001:db8::1]:53 > [2001:db8::2]:5353" in r.stdout
    assert "partial" in r.stdout
    j = json.loads(run_cli("verify", "--json", path).stdout)
    assert j["frames"] == len(frames) and j["bad"] == 2 and j["partial"] == 1
    e = {x["index"]: x for x in j["first_bad"]}
    assert e[2]["ip_found"] == int.from_bytes(frames[2][24:26], "big")
    assert e[2]["ip_expected"] == int.from_bytes(frames[0][24:26], "big")
    ok6 = frames[1]
    assert e[3]["l4_expected"] == int.from_bytes(ok6[14 + 40 + 6:14 + 40 + 8], "big")
    assert [x["index"] for x in j["first_partial"]] == [4]


def test_partial_only_capture_is_not_bad_unless_strict(tmp_path):
    frames, _ = sample_frames()
    path = str(tmp_path / "p.pcap")
    write_pcap(path, [frames[0], frames[4]])
    assert run_cli("verify", path).returncode == 0
    assert run_cli("verify", "--strict", path).returncode == 1


@pytest.mark.tshark
def test_fix_then_tshark_finds_every_checksum_good(tmp_path):
    conftest.require_tshark()
    frames, _ = sample_frames()
    src, dst = str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap")
    write_pcap(src, frames)
    r = run_cli("fix", "--json", src, dst)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["frames"] == len(frames)
    assert s["changed_ip"] == 1 and s["changed_l4"] == 2            # bad l4 + partial
    assert s["left_alone"] == {"CSUM_NONE": 1}                     # UDP/IPv4 without checksum kept
    assert run_cli("verify", dst).returncode == 0
    theirs = tshark_verdicts_full(dst)
    for k, v in theirs.items():
        assert v["ip"] in (None, "good")
        assert all(v[p] in (None, "good", "none") for p in ("tcp", "udp", "icmp", "icmpv6")), (k, v)
    # only checksum fields changed
    out = pcap.read(dst).to_frames()
    for a, b in zip(frames, out):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        assert len(a) == len(b) and len(diff) <= 2
    assert run_cli("fix", "--udp-zero", "fill", src, dst).returncode == 0
    assert json.loads(run_cli("verify", "--json", dst).stdout)["l4"].get("CSUM_NONE", 0) == 0


def test_damaged_file_reports_offset_and_keeps_frames(tmp_path):
    frames, _ = sample_frames()
    path = str(tmp_path / "in.pcap")
    write_pcap(path, frames)
    data = open(path, "rb").read()
    cut = str(tmp_path / "cut.pcap")
    with open(cut, "wb") as f:
        f.write(data[:-10])          # the last record loses its end
    r = run_cli("verify", "--json", cut)
    assert r.returncode == 3
    s = json.loads(r.stdout)
    assert s["frames"] == len(frames) - 1 and s["error"]["offset"] > 0
    r = run_cli("fix", cut, str(tmp_path / "o.pcap"))
    assert r.returncode == 3 and "byte offset" in r.stdout
    assert len(pcap.read(str(tmp_path / "o.pcap"))) == len(frames) - 1
    assert run_cli("verify", str(tmp_path / "missing.pcap")).returncode == 3


# --- the tcpdump corpus -----------------------------------------------------------

def _corpus_files():
    files = sorted(glob.glob(os.path.join(CORPUS, "*")))
    if not files:
        pytest.skip("corpus not present")
    return files


@pytest.mark.slow
@pytest.mark.hostile
@pytest.mark.tshark
def test_corpus_verdicts_equal_tsharks(tmp_path):
    """Every file of the corpus: verify and fix run without error (crash freedom, bounds
    checked in the hostile run); all frames are merged into one pcapng so tshark runs
    once; every frame where both tshark and we give an IPv4-header or L4 verdict must
    get the same verdict, and after fix tshark must find every checksum we wrote good.

    tshark also verifies some frames we refuse as malformed (lengths that disagree:
    fuzzed files) and we verify a few it does not; those coverage differences are
    listed in the failure message when they exceed the few found on this corpus."""
    conftest.require_tshark()
    from offload.cli.checksum import fix_file, verify_file
    files = _corpus_files()
    merged = str(tmp_path / "all.pcapng")
    fixed_merged = str(tmp_path / "fixed.pcapng")
    w = pcap.PcapWriter(merged, format="pcapng", snaplen=0)
    wf = pcap.PcapWriter(fixed_merged, format="pcapng", snaplen=0)
    ours, ours_fixed = [], []
    for f in files:
        s = verify_file(f, progress=False)
        assert s["frames"] >= 0
        out = str(tmp_path / "fix.pcapng")
        fs = fix_file(f, out, fmt="pcapng", progress=False)
        assert fs["frames"] == s["frames"]
        for src, dest, acc in ((f, w, ours), (out, wf, ours_fixed)):
            try:
                b = pcap.read(src, parse=True)
            except pcap.PcapError as e:
                b = getattr(e, "batch", None)
            except Exception:          # unreadable here and in verify_file alike
                b = None
            if b is None or len(b) == 0:
                continue
            r = C.verify_batch(b, parse=False)
            b.iface = None
            b.ts = np.zeros(len(b), np.int64)
            dest.write(b)
            for i in range(len(b)):
                acc.append((os.path.basename(f), i, int(b.meta["l3_proto"][i]), int(b.meta["l4_proto"][i]),
                            int(r.ip[i]), int(r.l4[i])))
    w.close()
    wf.close()
    assert len(ours) == len(ours_fixed)
    ipv = {S.OK: "good", S.CSUM_BAD_IP: "bad"}
    l4v = {S.OK: "good", S.CSUM_BAD_L4: "bad", S.CSUM_PARTIAL: "bad", S.CSUM_NONE: "none",
           S.CSUM_UDP_ZERO_V6: "illegal"}
    for path, rows, after_fix in ((merged, ours, False), (fixed_merged, ours_fixed, True)):
        theirs = tshark_verdicts_full(path)
        differ, coverage, agree = [], [], 0
        for k, (fn, i, l3p, l4p, ipc, l4c) in enumerate(rows):
            t = theirs.get(k + 1)
            assert t is not None, (fn, i)
            tip = t["ip"] if l3p == 0x0800 else None
            tl4 = {6: t["tcp"], 17: t["udp"], 1: t["icmp"], 58: t["icmpv6"]}.get(l4p)
            for a, b_, code in ((ipv.get(ipc), tip, ipc), (l4v.get(l4c), tl4, l4c)):
                if a is not None and b_ is not None:
                    agree += 1
                    if a != b_:
                        differ.append((fn, i, a, b_, S.NAMES.get(code)))
                elif (a is None) != (b_ is None):
                    coverage.append((fn, i, a, b_, S.NAMES.get(code)))
            if after_fix and l4c == S.OK:
                assert tl4 in (None, "good"), (fn, i, t)
        assert agree > 5000
        assert not differ, differ[:20]
        assert len(coverage) <= 20, coverage
