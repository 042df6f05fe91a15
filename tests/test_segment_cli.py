"""``offload segment`` end to end: a capture of TSO/USO super-frames with partial checksums in,
a capture tshark finds nothing wrong with out (checksums validated, TCP analysis)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from conftest import require_tshark
from gso_frames import MAC, super_packet
from offload import pcap
from offload.batch import PacketBatch

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _pay(n, seed):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _capture(path):
    frames = [
        bytes(Ether(**MAC) / ARP()),
        super_packet(_pay(30000, 1), 0, ts=True, sport=4001, flags="A")[0],
        super_packet(_pay(20000, 2), 0, ts=True, sport=4001, flags="PA", seq=1000 + 30000)[0],
        bytes(Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP() / b"ping"),
        super_packet(_pay(100000, 3), 0, ts=True, big=True, sport=4002)[0],
        super_packet(_pay(25000, 4), 0, v6=True, sport=4003)[0],
        super_packet(_pay(25000, 5), 0, v6=True, vlans=(7,), sport=4004)[0],
        super_packet(_pay(9000, 6), 0, udp=True, sport=4005)[0],
        super_packet(_pay(7000, 7), 0, udp=True, v6=True, sport=4006)[0],
        super_packet(_pay(80000, 8), 0, v6=True, jumbo=True, ts=True, sport=4007)[0],
    ]
    b = PacketBatch.from_frames(frames)
    b.ts = (1_700_000_000 + np.arange(len(frames))) * 10**9
    pcap.write(path, b)
    return frames


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(ROOT))
    return subprocess.run([sys.executable, "-m", "offload", "segment", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _tshark(path, display_filter, extra=()):
    out = subprocess.run(["tshark", "-n", "-r", path, "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                          "-o", "ip.check_checksum:TRUE", *extra, "-Y", display_filter, "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [x for x in out.stdout.split() if x]


@pytest.mark.tshark
@pytest.mark.parametrize("udp", ["uso", "ufo"])
def test_segment_cli_output_is_clean_for_tshark(tmp_path, udp):
    require_tshark()
    src, dst = str(tmp_path / "in.pcap"), str(tmp_path / "out.pcapng")
    frames = _capture(src)
    p = _cli(src, dst, "--udp", udp, "--format", "pcapng", "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["frames_in"] == len(frames) and s["super_frames"] == 8 and s["refused"] == 0
    out = pcap.read(dst)
    assert len(out) == s["segments_written"] + s["passed_through"]
    assert (out.len <= 1514 + 4).all()
    assert out.to_frames()[0] == frames[0]
    assert len(_tshark(dst, "tcp.checksum.status == 1")) > 100        # validation really ran
    assert _tshark(dst, "ip.checksum.status == 2 || tcp.checksum.status == 2 || udp.checksum.status == 2") == []
    assert _tshark(dst, "tcp.analysis.flags") == []
    if udp == "ufo":
        assert len(_tshark(dst, "ip.flags.mf == 1 || ipv6.fraghdr.more == 1")) > 0
    # the input, for contrast: tshark cannot call its partial checksums good
    assert len(_tshark(src, "tcp && tcp.checksum.status != 1")) >= 5


def test_segment_cli_damaged_input_keeps_what_was_read(tmp_path):
    src, dst = str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap")
    _capture(src)
    data = open(src, "rb").read()
    cut = len(data) - 5000                      # inside the last record
    open(src, "wb").write(data[:cut])
    p = _cli(src, dst, "--mss", "1000")
    assert p.returncode == 3, p.stdout + p.stderr
    assert "byte offset" in p.stdout
    out = pcap.read(dst)
    assert len(out) > 50 and (out.len <= 1000 + 14 + 40 + 32 + 4).all()


def test_segment_cli_usage_errors(tmp_path):
    src = str(tmp_path / "in.pcap")
    _capture(src)
    assert _cli(src, str(tmp_path / "o.pcap"), "--mss", "0").returncode == 2
    assert _cli(src, str(tmp_path / "o.pcap"), "--mss", "100", "--mtu", "1500").returncode == 2
    assert _cli(str(tmp_path / "missing.pcap"), str(tmp_path / "o.pcap")).returncode == 3


@pytest.mark.hostile
def test_segment_the_tcpdump_corpus_without_crashing(tmp_path):
    """Every 3rd capture of the shared tcpdump corpus (real and malformed files), cut at
    576: each either segments, or reports its damage by byte offset; nothing raises, and
    every frame cut from a super-frame fits the MTU."""
    import glob

    from conftest import corpus_dir
    from offload.cli.segment import segment_file
    files = sorted(glob.glob(os.path.join(corpus_dir("tcpdump"), "*")))[::3]
    cut = 0
    for f in files:
        dst = str(tmp_path / "out.pcap")
        try:
            s = segment_file(f, dst, mtu=576, progress=False)
        except pcap.PcapError:
            continue                      # unreadable file header: reported, nothing to do
        cut += s["super_frames"]
        if s["segments_written"]:
            out = pcap.read(dst)
            m = out.meta
            from offload import status as S
            seg = m["status"] == S.GSO_SEGMENTED
            assert ((m["l3_end"][seg] - m["l3_off"][seg]) <= 576).all(), f
    assert cut > 0
