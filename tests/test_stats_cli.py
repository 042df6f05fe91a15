"""`offload stats` and `offload demo`, and the bundled example capture.

Oracles: scapy (protocol classification, IP lengths, checksums) and tshark
(frame counts); the corpus through the CLI code path.
"""

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from offload import pcap
from offload.batch import PacketBatch
from offload.cli import main as cli_main

import conftest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "offload", "examples", "example.pcap")


def run_cli(*argv):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "offload", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def run_inproc(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def scapy_summary(path, mtu=1500):
    """Protocol mix and super-frames computed with scapy's dissectors."""
    from scapy.all import ICMP, IP, TCP, UDP, Ether, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, rdpcap
    mix, sup = {}, {}
    for p in rdpcap(path):
        e = Ether(bytes(p))
        if IP in e:
            l3, ip = "IPv4", e[IP]
        elif IPv6 in e:
            l3, ip = "IPv6", e[IPv6]
        else:
            mix["not IP"] = mix.get("not IP", 0) + 1
            continue
        l4 = ("TCP" if TCP in e else "UDP" if UDP in e else "ICMP" if ICMP in e
              else "ICMPv6" if (ICMPv6EchoRequest in e or ICMPv6EchoReply in e) else "?")
        key = f"{l3}/{l4}"
        mix[key] = mix.get(key, 0) + 1
        iplen = len(bytes(e)) - 14
        if iplen > mtu:
            sup[key] = sup.get(key, 0) + 1
    return mix, sup


# --------------------------------------------------------------------------
# the example capture


def test_example_is_small_and_regenerates_identically(tmp_path):
    assert os.path.getsize(EXAMPLE) < 200_000
    out = tmp_path / "ex.pcap"
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_example.py"), str(out)], check=True,
                   capture_output=True, cwd=ROOT)
    assert out.read_bytes() == open(EXAMPLE, "rb").read()


def test_example_holds_super_frames_with_partial_checksums():
    """Every super-frame's L4 checksum field is the folded pseudo-header sum: completing the
    sum over the L4 bytes from there (what the NIC does) gives scapy's checksum."""
    from scapy.all import IP, TCP, UDP, Ether, IPv6, raw
    from offload.csum import raw_sum
    b = pcap.read(EXAMPLE)
    kinds = set()
    for f in b.to_frames():
        if len(f) <= 1514:
            continue
        e = Ether(f)
        ip = e[IP] if IP in e else e[IPv6]
        l4 = e[TCP] if TCP in e else e[UDP]
        kind = (type(ip).__name__, type(l4).__name__)
        if IP in e and e[IP].len == 0:
            kinds.add(kind + ("len0",))
            assert len(f) - 14 > 65535
            continue   # scapy cannot rebuild a total-length-0 packet's checksum
        kinds.add(kind)
        l4_off = 14 + (ip.ihl * 4 if IP in e else 40)
        assert (IP not in e) or e[IP].len == len(f) - 14
        completed = (~raw_sum(f[l4_off:])) & 0xFFFF
        fresh = e.copy()
        del fresh[type(l4)].chksum
        want = (Ether(raw(fresh))[type(l4)]).chksum
        assert completed == want, kind
    assert kinds == {("IP", "TCP"), ("IP", "TCP", "len0"), ("IPv6", "TCP"), ("IP", "UDP"), ("IPv6", "UDP")}


# --------------------------------------------------------------------------
# offload stats


def test_stats_example_agrees_with_scapy():
    rc, out, err = run_inproc("stats", EXAMPLE, "--json")
    assert rc == 0, err
    s = json.loads(out)
    mix, sup = scapy_summary(EXAMPLE)
    assert {r["protocol"]: r["frames"] for r in s["protocols"]} == mix
    assert {r["protocol"]: r["frames"] for r in s["super_frames_by_protocol"]} == sup
    assert s["frames"] == sum(mix.values()) == 25
    assert s["bytes"] == s["wire_bytes"] == os.path.getsize(EXAMPLE) - 24 - 16 * 25
    assert s["link_types"] == {"Ethernet (1)": 25}
    assert s["malformed"] == 0 and s["error"] is None
    # a larger MTU: only the BIG TCP frame (66 KB) stays a super-frame
    s = json.loads(run_inproc("stats", EXAMPLE, "--json", "--mtu", "65535")[1])
    assert s["super_frames"] == 1


@pytest.mark.tshark
def test_stats_frame_count_agrees_with_tshark():
    conftest.require_tshark()
    out = subprocess.run(["tshark", "-r", EXAMPLE, "-T", "fields", "-e", "frame.number", "-e", "frame.len"],
                         capture_output=True, text=True, check=True)
    rows = [r.split("\t") for r in out.stdout.splitlines()]
    s = json.loads(run_inproc("stats", EXAMPLE, "--json")[1])
    assert s["frames"] == len(rows)
    assert s["wire_bytes"] == sum(int(r[1]) for r in rows)


def test_stats_table_subprocess_and_help():
    r = run_cli("stats", EXAMPLE)
    assert r.returncode == 0, r.stderr
    assert "frames        25" in r.stdout
    assert "super-frames (IP packet longer than the MTU of 1500 bytes): 6" in r.stdout
    assert "IPv6/UDP" in r.stdout and "largest IP packet 66660 bytes" in r.stdout
    assert r.stderr.strip() == ""          # not a terminal: no progress bar
    h = run_cli("stats", "--help")
    assert h.returncode == 0 and "--mtu" in h.stdout and "Exit status" in h.stdout
    assert run_cli("stats").returncode == 2


def test_stats_malformed_frames_are_listed_by_reason(tmp_path):
    from scapy.all import IP, TCP, Ether, raw
    good = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / TCP())
    short_ip = good[:14 + 10]                                    # frame ends inside the IPv4 header
    bad_ihl = bytearray(good)
    bad_ihl[14] = 0x43                                           # IHL 3
    b = PacketBatch.from_frames([good, short_ip, bytes(bad_ihl), short_ip])
    p = tmp_path / "bad.pcap"
    pcap.write(p, b)
    rc, out, err = run_inproc("stats", str(p), "--json")
    assert rc == 1
    s = json.loads(out)
    assert s["malformed"] == 3
    assert s["malformed_by_reason"] == {"truncated IP header": 2, "IPv4 IHL below 5": 1}
    rc, out, _ = run_inproc("stats", str(p))
    assert "truncated IP header" in out


def test_stats_damaged_file_reports_what_was_read_and_exits_3(tmp_path):
    data = open(EXAMPLE, "rb").read()
    b = pcap.read(EXAMPLE)
    cut = int(b.off[10]) + 5          # inside frame 10 (record header at off - 16)
    p = tmp_path / "cut.pcap"
    p.write_bytes(data[:cut])
    r = run_cli("stats", str(p))
    assert r.returncode == 3
    assert "frames        10" in r.stdout
    assert f"byte offset {int(b.off[10]) - 16}" in r.stdout and f"byte offset {int(b.off[10]) - 16}" in r.stderr
    p.write_bytes(b"garbage!" * 10)
    r = run_cli("stats", str(p))
    assert r.returncode == 3 and "bad magic" in r.stderr
    r = run_cli("stats", str(tmp_path / "missing.pcap"))
    assert r.returncode == 3 and "No such file" in r.stderr


def test_progress_bar_only_on_a_terminal(monkeypatch):
    from offload.cli import _progress, stats

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    orig = _progress.Progress.__init__

    def eager(self, total, label, stream=None, delay=1.0):
        orig(self, total, label, stream, delay=-1.0)
        self.last = -1e9

    monkeypatch.setattr(_progress.Progress, "__init__", eager)
    stats.collect(EXAMPLE, batch_frames=4)
    assert "stats [" in tty.getvalue() and "%" in tty.getvalue()


# --------------------------------------------------------------------------
# offload demo


@pytest.mark.slow
def test_demo_runs_on_the_example():
    """`offload demo` (what `make demo` runs); slow on a cold Numba cache (it compiles GSO)."""
    r = run_cli("demo")
    assert r.returncode in (0, 1), r.stderr
    assert "TSO/USO" in r.stdout and "offload stats" in r.stdout
    assert "super-frames (IP packet longer than the MTU of 1500 bytes): 6" in r.stdout
    import importlib.util
    if importlib.util.find_spec("offload.cli.segment") is None:
        assert "Segmentation is not built yet" in r.stdout
    else:
        assert "== offload segment" in r.stdout and "became" in r.stdout
        after = r.stdout.split("== offload segment", 1)[1]
        # every super-frame was cut: nothing longer than the MTU is left, nothing is malformed
        assert "super-frames (IP packet longer than the MTU of 1500 bytes): 0" in after
        assert "malformed frames: 0" in after
        assert "(6 super-frames) became" in after


# --------------------------------------------------------------------------
# the corpus through the CLI


@pytest.mark.hostile
def test_corpus_through_offload_stats():
    d = conftest.corpus_dir("tcpdump")
    t0 = time.monotonic()
    codes = {}
    for name in sorted(os.listdir(d)):
        t = time.monotonic()
        rc, out, err = run_inproc("stats", os.path.join(d, name), "--json")
        assert rc in (0, 1, 3), (name, err)
        if rc == 3:
            assert "byte offset" in err, name
        else:
            s = json.loads(out)
            assert s["frames"] >= 0 and (s["malformed"] > 0) == (rc == 1)
        codes[rc] = codes.get(rc, 0) + 1
        assert time.monotonic() - t < 20, name
    assert time.monotonic() - t0 < 100
    assert codes.get(0, 0) + codes.get(1, 0) > 0.9 * sum(codes.values())
