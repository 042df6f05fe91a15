"""Seed frames for the fuzz campaigns: valid frames drawn from the hypothesis strategies
(every link type, VLANs, IPv4 options, IPv6 extension chains, TCP options, fragments),
GRO trains, and frames from the real capture corpus when it is present. Cached in
``.fuzz-cache/`` (regenerated when missing)."""

from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

CACHE = os.path.join(ROOT, ".fuzz-cache")
def _corpus_dir():
    for d in (os.environ.get("OFFLOAD_CORPUS"), os.path.join(ROOT, "..", "shared", "corpus"),
              os.path.join(ROOT, "..", "..", "shared", "corpus")):
        if d and os.path.isdir(d):
            return os.path.abspath(d)
    return os.path.join(ROOT, "..", "shared", "corpus")


CORPUS = _corpus_dir()


def _pack(frames, links):
    lens = np.array([len(f) for f in frames], np.int64)
    offs = np.zeros(len(frames), np.int64)
    if len(frames):
        np.cumsum(lens[:-1], out=offs[1:])
    buf = np.frombuffer(b"".join(frames), np.uint8).copy() if frames else np.zeros(0, np.uint8)
    return buf, offs, lens, np.array(links, np.int64)


def _draw(strategy, n):
    """``n`` examples of ``strategy`` (one hypothesis run, no shrinking, no database)."""
    from hypothesis import HealthCheck, Phase, given, settings
    out = []

    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(x):
        out.append(x)

    collect()
    return out


def generated(n: int = 1500):
    """``n`` valid frames of every kind (jumbograms excluded: they make the campaign slow)."""
    path = os.path.join(CACHE, f"gen-{n}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return z["buf"], z["off"], z["len"], z["link"]
    import strategies as FS
    bs = _draw(FS.frames(jumbo=False, max_payload=600), n)
    r = _pack([b.frame for b in bs], [b.link for b in bs])
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path, buf=r[0], off=r[1], len=r[2], link=r[3])
    return r


def corpus(max_frames: int = 20000, max_len: int = 4096):
    """Frames of the real capture corpus (``../shared/corpus``), read with dpkt, when present."""
    path = os.path.join(CACHE, f"corpus-{max_frames}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return z["buf"], z["off"], z["len"], z["link"]
    import dpkt
    frames, links = [], []
    for dirpath, _d, files in os.walk(CORPUS):
        for fn in sorted(files):
            if len(frames) >= max_frames:
                break
            full = os.path.join(dirpath, fn)
            try:
                with open(full, "rb") as fh:
                    magic = fh.read(4)
                    fh.seek(0)
                    rd = dpkt.pcapng.Reader(fh) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(fh)
                    lt = rd.datalink()
                    k = 0
                    for _ts, data in rd:
                        if len(data) <= max_len:
                            frames.append(bytes(data))
                            links.append(lt)
                        k += 1
                        if k >= 200 or len(frames) >= max_frames:
                            break
            except Exception:
                continue
    r = _pack(frames, links)
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path, buf=r[0], off=r[1], len=r[2], link=r[3])
    return r


def merged(*sets):
    frames, links = [], []
    for buf, off, ln, lk in sets:
        for o, n, l in zip(off, ln, lk):
            frames.append(buf[o:o + n].tobytes())
            links.append(int(l))
    return _pack(frames, links)


def gro_trains(n_trains: int = 200):
    """Segment trains GRO can merge: per train a list of frames of one flow (TCP or UDP, v4
    or v6, Ethernet), contiguous sequence numbers, IP IDs +1, valid checksums."""
    path = os.path.join(CACHE, f"trains-{n_trains}.npz")
    if os.path.exists(path):
        z = np.load(path, allow_pickle=False)
        return z["buf"], z["off"], z["len"], z["train"]
    import random

    from scapy.all import IP, TCP, UDP, Ether, Raw, raw
    from scapy.layers.inet6 import IPv6
    rnd = random.Random(1234)
    frames, train = [], []
    for t in range(n_trains):
        v6 = rnd.random() < 0.4
        udp = rnd.random() < 0.3
        mss = rnd.choice([100, 536, 1000, 1448])
        k = rnd.randint(2, 24)
        seq = rnd.randrange(2**32)
        ipid = rnd.randrange(65536)
        opts = rnd.choice([[], [("NOP", None), ("NOP", None), ("Timestamp", (rnd.randrange(2**32), 7))]])
        for i in range(k):
            size = mss if i + 1 < k else rnd.randint(1, mss)
            pay = bytes((t * 7 + i * 13 + j) & 0xFF for j in range(size))
            l3 = IPv6(src="2001:db8::1", dst="2001:db8::%x" % (t + 2)) if v6 else \
                IP(src="10.0.0.1", dst="10.1.%d.%d" % (t >> 8, t & 255), id=(ipid + i) & 0xFFFF, flags="DF")
            l4 = UDP(sport=1000 + t, dport=2000) if udp else \
                TCP(sport=1000 + t, dport=80, seq=(seq + i * mss) & 0xFFFFFFFF, ack=5, flags="A", options=opts)
            frames.append(raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3 / l4 / Raw(pay)))
            train.append(t)
    buf, off, ln, _ = _pack(frames, [1] * len(frames))
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path, buf=buf, off=off, len=ln, train=np.array(train, np.int64))
    return buf, off, ln, np.array(train, np.int64)


def capture_files(max_size: int = 65536, corpus_files: bool = True):
    """Seed capture files: files written by ``offload.pcap`` in every format it writes
    (pcap us/ns, both byte orders; pcapng with several interfaces) from generated frames,
    plus the corpus's files up to ``max_size`` bytes. Returned like frames (one file per
    entry; ``link`` column unused)."""
    path = os.path.join(CACHE, f"files-{max_size}-{int(corpus_files)}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return z["buf"], z["off"], z["len"], z["link"]
    from offload import pcap
    from offload.batch import PacketBatch
    gbuf, goff, glen, glink = generated()
    files = []
    rng = np.random.default_rng(5)
    for k in range(120):
        idx = rng.choice(len(goff), size=int(rng.integers(0, 12)), replace=False)
        frames = [gbuf[goff[i]:goff[i] + glen[i]].tobytes() for i in idx]
        links = [int(glink[i]) for i in idx]
        fmt = ("pcap", "pcapng")[k % 2]
        if fmt == "pcap":
            lk = links[0] if links else 1
            frames = [f for f, l in zip(frames, links) if l == lk]
            b = PacketBatch.from_frames(frames, link=lk, ts=np.arange(len(frames), dtype=np.int64) * 1_000_123)
            opts = dict(format="pcap", ts_resolution=("us", "ns")[(k >> 1) % 2], byte_order="<>"[(k >> 2) % 2], link=lk)
        else:
            b = PacketBatch.from_frames(frames, ts=np.arange(len(frames), dtype=np.int64) * 7)
            if len(frames):
                b.meta["link"] = links
            opts = dict(format="pcapng", byte_order="<>"[(k >> 2) % 2])
        try:
            files.append(pcap.to_bytes(b, **opts))
        except Exception:
            continue
    if corpus_files and os.path.isdir(CORPUS):
        for dirpath, _d, fns in os.walk(CORPUS):
            for fn in sorted(fns):
                full = os.path.join(dirpath, fn)
                if os.path.getsize(full) <= max_size:
                    with open(full, "rb") as fh:
                        files.append(fh.read())
    r = _pack(files, [0] * len(files))
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path, buf=r[0], off=r[1], len=r[2], link=r[3])
    return r


def gso_supers(n: int = 300):
    """Super-packets (Ethernet, VLANs, IPv4 options, IPv6 extension chains, TCP options;
    TCP and UDP) of 0-20000 payload bytes, for the GSO campaign."""
    path = os.path.join(CACHE, f"supers-{n}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return z["buf"], z["off"], z["len"], z["link"]
    import strategies as FS
    from offload.batch import LINK_ETHERNET
    bs = _draw(FS.frames(links=(LINK_ETHERNET,), l4=("tcp", "udp"), frag=False, max_payload=20000,
                         jumbo=False, pad=False), n)
    r = _pack([b.frame for b in bs], [b.link for b in bs])
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path, buf=r[0], off=r[1], len=r[2], link=r[3])
    return r
