"""``offload coalesce`` on capture files: merges by the rules, honours capture-time timeouts,
writes valid checksums (tshark checks them), reports damage by byte offset."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scapy.all import TCP, Ether

from conftest import require_tshark
from gro_trains import tcp_train, udp_train
from offload import pcap
from offload.batch import PacketBatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def offload(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "offload", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def write_capture(path, frames, ts_us, fmt="pcap"):
    b = PacketBatch.from_frames(frames, ts=np.asarray(ts_us, np.int64) * 1000)
    pcap.write(path, b, format=fmt)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_coalesce_file(tmp_path, fmt):
    a = tcp_train(10, pay=1448, sport=1)
    u = udp_train(6, pay=500, sport=2)
    fr = [x for pair in zip(a, u + [None] * 4) for x in pair if x is not None]
    src, dst = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    write_capture(src, fr, range(len(fr)), fmt)
    p = offload("coalesce", str(src), str(dst), "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["frames_read"] == 16 and s["frames_written"] == 2 and s["merged"] == 14
    out = pcap.read(str(dst))
    assert sorted(int(x) for x in out.len) == sorted([14 + 20 + 8 + 6 * 500, 14 + 20 + 20 + 14480])
    assert pcap.PcapReader(str(dst)).format == fmt
    # the aggregate carries the first frame's capture time
    assert sorted(int(t) for t in out.ts) == [0, 1000]


def test_coalesce_timeout_uses_capture_time(tmp_path):
    fr = tcp_train(6)
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    write_capture(src, fr, [0, 10, 20, 500, 510, 520])
    p = offload("coalesce", str(src), str(dst), "--timeout-us", "100", "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["flush"] == {"timeout": 1, "end": 1}
    assert [int(x) for x in pcap.read(str(dst)).len] == [14 + 40 + 300] * 2
    p = offload("coalesce", str(src), str(dst))
    assert p.returncode == 0 and "aggregates      1" in p.stdout


@pytest.mark.tshark
def test_coalesced_capture_checksums_valid_for_tshark(tmp_path):
    require_tshark()
    fr = tcp_train(8, pay=1000) + tcp_train(5, pay=700, v6=True, sport=9) + udp_train(4, sport=7)
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    write_capture(src, fr, range(len(fr)))
    assert offload("coalesce", str(src), str(dst)).returncode == 0
    r = subprocess.run(["tshark", "-r", str(dst), "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                        "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "tcp.checksum.status",
                        "-e", "udp.checksum.status", "-e", "ip.checksum.status", "-e", "frame.len"],
                       capture_output=True, text=True, timeout=120)
    rows = [ln.split("\t") for ln in r.stdout.strip().splitlines()]
    assert len(rows) == 3
    for row in rows:
        statuses = [x for x in row[:3] if x]
        assert statuses and all(x == "1" for x in statuses), row     # 1 = good (0 bad, 2 unverified)


def test_bad_checksum_exit_1_and_damaged_file_exit_3(tmp_path):
    fr = tcp_train(4)
    bad = bytearray(fr[2])
    bad[-1] ^= 1
    fr[2] = bytes(bad)
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    write_capture(src, fr, range(4))
    p = offload("coalesce", str(src), str(dst))
    assert p.returncode == 1 and "bad checksum" in p.stdout
    # cut the file inside the last record: the frames before are coalesced and written
    data = open(src, "rb").read()
    open(src, "wb").write(data[:-30])
    p = offload("coalesce", str(src), str(dst), "--json")
    assert p.returncode == 3
    s = json.loads(p.stdout)
    assert s["error"]["offset"] > 0 and "byte offset" in p.stderr
    assert s["frames_read"] == 3 and len(pcap.read(str(dst))) >= 2
    assert offload("coalesce", str(src), str(dst), "--max-size", "10").returncode == 2
    assert offload("coalesce", str(tmp_path / "missing.pcap"), str(dst)).returncode == 3


@pytest.mark.hostile
def test_corpus_captures_every_frame_accounted(tmp_path):
    """Real and malformed captures (reference corpus): no crash, every frame read is
    written or merged into a written one."""
    import glob

    from conftest import corpus_dir
    from offload.cli.coalesce import coalesce_file
    files = sorted(glob.glob(os.path.join(corpus_dir("tcpdump"), "*")))[::4]
    for f in files:
        try:
            s = coalesce_file(f, str(tmp_path / "out.pcap"), progress=False)
        except (pcap.PcapError, OSError):
            continue
        assert s["frames_written"] + s["merged"] == s["frames_read"], f
