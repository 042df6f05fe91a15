"""NIC shim benchmarks: AF_XDP 64-byte TX/RX packet rates with the user-space share
measured apart from the kernel's, and TCP goodput through ``offload forward``
(offloads on / off) next to the kernel forwarding between the same namespaces.

References measured in the same run: ``np.copyto`` of the same bytes per batch
(the cost floor of touching the frames), the time spent inside the kernel
(``sendto`` kicks), and the kernel's own bridge for goodput.

Run: ``python -m pytest bench/test_shim.py -p no:cacheprovider -s`` (as root).
Numbers go to ``extra_info`` and are printed. With ``--benchmark-disable``
(``make test``) the same code runs once on small sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from shim_net import topo  # noqa: F401  (fixture)
from shim_net import Topo, ethtool_k, ip, names, require_kernel  # noqa: E402

from offload.batch import PacketBatch  # noqa: E402
from offload.nic_shim import open_port  # noqa: E402

pytestmark = pytest.mark.kernel
BATCH = 64


def frames64(n):
    return [bytes.fromhex("020000000b01020000000a01") + b"\x88\xb5" + i.to_bytes(4, "big") + bytes(46)
            for i in range(n)]




def veth_pair(topo):
    a, b = names("bench", 2)
    topo.netns(a)
    topo.netns(b)
    topo.veth(a, "shx0", b, "shy0")
    return a, b


def _report(benchmark, name, **kv):
    benchmark.extra_info.update(kv)
    print(f"\n[{name}] " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in kv.items()))


def test_afxdp_tx_64B(benchmark, topo):
    """64-byte frames from an AF_XDP port; the peer's kernel drops them (no listener).

    CPU time (thread_time, so a loaded machine's waiting is not counted) is split
    into the time inside the kernel's sendto (copy-mode transmit) and the rest
    (our ring work, in user space)."""
    a, b = veth_pair(topo)
    n_batches = 200 if benchmark.disabled else 8000
    batch = PacketBatch.from_frames(frames64(BATCH))
    ref_dst = np.empty(BATCH * 64, np.uint8)
    with open_port("afxdp:shx0:0", netns=a) as p:
        kick = p.kick
        in_kernel = [0.0]

        def timed_kick(q=None):
            t = time.thread_time()
            kick(q)
            in_kernel[0] += time.thread_time() - t
        p.kick = timed_kick

        def run():
            in_kernel[0] = 0.0
            sent = 0
            t = time.perf_counter()
            c = time.thread_time()
            while sent < n_batches * BATCH:
                sent += p.tx_burst(batch)
            p.flush()
            return sent, time.perf_counter() - t, time.thread_time() - c

        sent, dt, cpu = benchmark.pedantic(run, rounds=1, iterations=1)
        p.check_frames(quiet=True)
        src = batch.buf[: BATCH * 64]
        c = time.thread_time()
        for _ in range(n_batches):
            np.copyto(ref_dst, src)
        ref = (time.thread_time() - c) / n_batches
        user = cpu - in_kernel[0]
        _report(benchmark, "afxdp tx 64B", mpps_wall=sent / dt / 1e6, ns_per_pkt_cpu=cpu / sent * 1e9,
                user_us_per_batch=user / n_batches * 1e6, kernel_us_per_batch=in_kernel[0] / n_batches * 1e6,
                user_share_of_cpu=user / cpu, copyto_us_per_batch=ref * 1e6)


def test_afxdp_rx_64B(benchmark, topo):
    """64-byte frames sent by a second AF_XDP port across the veth, received in bursts.

    Two numbers: the streaming rate of one thread doing both TX and RX, and the CPU
    cost of rx_burst + release alone, measured on rings already full (1024 frames
    per round, bursts of 64 back to back: no system call is involved)."""
    a, b = veth_pair(topo)
    total = 20_000 if benchmark.disabled else 1_000_000
    rounds = 5 if benchmark.disabled else 200
    batch = PacketBatch.from_frames(frames64(BATCH))
    with open_port("afxdp:shx0:0", netns=a) as tx, open_port("afxdp:shy0:0", netns=b) as rx:

        def run():
            sent = recvd = 0
            t0 = time.perf_counter()
            while sent < total or recvd < sent:
                if sent < total:
                    sent += tx.tx_burst(batch)
                while True:
                    r = rx.rx_burst(256)
                    k = len(r)
                    rx.release(r)
                    if not k:
                        break
                    recvd += k
                if sent >= total and recvd < sent:
                    st = rx.stats()
                    if recvd + st["xsk_rx_dropped"] >= sent:
                        break
                    tx.flush(0.001)
            return recvd, time.perf_counter() - t0

        recvd, dt = benchmark.pedantic(run, rounds=1, iterations=1)
        # CPU cost of the receive side alone, rings full
        cpu = 0.0
        got = 0
        bursts = 0
        for _ in range(rounds):
            for _ in range(16):
                tx.tx_burst(batch)
            tx.flush()
            time.sleep(0.002)
            c = time.thread_time()
            while True:
                r = rx.rx_burst(BATCH)
                k = len(r)
                rx.release(r)
                if not k:
                    break
                got += k
                bursts += 1
            cpu += time.thread_time() - c
        rx.check_frames(quiet=True)
        dst = np.empty(BATCH * 64, np.uint8)
        src = batch.buf[: BATCH * 64]
        c = time.thread_time()
        for _ in range(1000):
            np.copyto(dst, src)
        ref = (time.thread_time() - c) / 1000
        _report(benchmark, "afxdp rx 64B", mpps_tx_plus_rx_one_thread=recvd / dt / 1e6, lost=total - recvd,
                rx_cpu_ns_per_pkt=cpu / max(got, 1) * 1e9, rx_cpu_us_per_burst64=cpu / max(bursts, 1) * 1e6,
                copyto_us_same_bytes=ref * 1e6)


BLAST = """
import sys, time
from offload.batch import PacketBatch
from offload.nic_shim import open_port
n = int(sys.argv[2])
fr = [bytes.fromhex("020000000b01020000000a01") + b"\\x88\\xb5" + i.to_bytes(4, "big") + bytes(46) for i in range(64)]
b = PacketBatch.from_frames(fr)
with open_port("afxdp:" + sys.argv[1] + ":0") as p:
    print("ready", flush=True)
    sys.stdin.readline()
    sent = 0
    t = time.perf_counter()
    while sent < n:
        sent += p.tx_burst(b)
    p.flush()
    print(sent, time.perf_counter() - t, flush=True)
"""


def test_afxdp_rx_64B_separate_sender(benchmark, topo):
    """RX rate with the sender in another process (its own tight AF_XDP TX loop): the
    receiving process only polls its RX ring. Reported next to the sender's own rate."""
    a, b = veth_pair(topo)
    total = 50_000 if benchmark.disabled else 2_000_000
    env = dict(os.environ, PYTHONPATH=ROOT)
    snd = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-c", BLAST, "shx0", str(total)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env, cwd=ROOT)
    try:
        assert snd.stdout.readline().strip() == "ready", snd.stderr.read()
        with open_port("afxdp:shy0:0", netns=b) as rx:
            def run():
                got = 0
                cpu = 0.0
                bursts = 0
                snd.stdin.write("go\n")
                snd.stdin.flush()
                t0 = None
                last = time.perf_counter()
                while True:
                    c = time.thread_time()
                    r = rx.rx_burst(256)
                    k = len(r)
                    rx.release(r)
                    now = time.perf_counter()
                    if k:
                        cpu += time.thread_time() - c
                        bursts += 1
                        got += k
                        if t0 is None:
                            t0 = now
                        last = now
                    elif now - last > 0.5 and t0 is not None:
                        break
                    elif t0 is None and now - last > 10:
                        break
                return got, (last - t0) if t0 else 0.0, cpu, bursts

            got, dt, cpu, bursts = benchmark.pedantic(run, rounds=1, iterations=1)
            out, err = snd.communicate(timeout=60)
            sent, s_dt = out.split()[-2:]
            rx.check_frames(quiet=True)
            st = rx.stats()
            assert got + st["xsk_rx_dropped"] <= int(sent)
            _report(benchmark, "afxdp rx 64B, separate sender", rx_mpps=got / max(dt, 1e-9) / 1e6,
                    sender_mpps=int(sent) / float(s_dt) / 1e6, received=got, xsk_rx_dropped=st["xsk_rx_dropped"],
                    rx_cpu_ns_per_pkt=cpu / max(got, 1) * 1e9, frames_per_burst=got / max(bursts, 1))
    finally:
        if snd.poll() is None:
            snd.kill()
            snd.wait()


# -- goodput ----------------------------------------------------------------------

def _peer(ns, *args):
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, os.path.join(ROOT, "tests", "shim_peer.py"),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _transfer(ns_cli, ns_srv, nbytes):
    srv = _peer(ns_srv, "tcp-server", 5009, 0)
    assert "listening" in srv.stdout.readline()
    cli = _peer(ns_cli, "tcp-client", "10.78.0.2", 5009, nbytes)
    c_out, c_err = cli.communicate(timeout=600)
    s_out, s_err = srv.communicate(timeout=60)
    assert cli.returncode == 0 and srv.returncode == 0, (c_err, s_err)
    c, s = json.loads(c_out.splitlines()[-1]), json.loads(s_out.splitlines()[-1])
    assert c["sent_sha"] == s["recv_sha"] and s["recv_bytes"] == nbytes
    return nbytes * 8 / s["recv_s"] / 1e9


GOODPUT = {
    "offload-on": ("afxdp:IF", ["--gso", "--gro", "--csum"]),
    "offload-off": ("afxdp:IF", []),
    "packet-superpackets": ("packet:IF", []),
    "kernel-bridge": (None, None),
}


@pytest.mark.parametrize("variant", list(GOODPUT))
def test_tcp_goodput(benchmark, topo, variant):
    from test_forward import Rig
    port_b, flags = GOODPUT[variant]
    nbytes = (20 if benchmark.disabled else int(os.environ.get("OFFLOAD_BENCH_MB", "300"))) << 20
    if port_b is None:
        # the same three namespaces, the kernel forwarding: A's veth and F's veth to B in a bridge
        a, f, b = names("k", 3)
        for n in (a, f, b):
            topo.netns(n)
        topo.veth(a, "shka0", f, "shkf0")
        topo.veth(f, "shf1", b, "shb0")
        ip("addr", "add", "10.78.0.1/24", "dev", "shka0", ns=a)
        ip("addr", "add", "10.78.0.2/24", "dev", "shb0", ns=b)
        ip("link", "add", "br0", "type", "bridge", ns=f)
        for d in ("shkf0", "shf1"):
            ip("link", "set", d, "master", "br0", ns=f)
        ip("link", "set", "br0", "up", ns=f)
        gbps = benchmark.pedantic(_transfer, args=(a, b, nbytes), rounds=1, iterations=1)
        _report(benchmark, f"tcp goodput {variant}", gbit_s=gbps, mbytes=nbytes >> 20)
        return
    rig = Rig(topo, port_b, flags, port_b.startswith("packet"))
    try:
        gbps = benchmark.pedantic(_transfer, args=(rig.a, rig.b, nbytes), rounds=1, iterations=1)
        rc, final, err = rig.stop()
        assert rc == 0, err
        _report(benchmark, f"tcp goodput {variant}", gbit_s=gbps, mbytes=nbytes >> 20,
                frames_a_to_b=final["a_to_b"]["rx"], avg_frame_in=final["a_to_b"]["rx_bytes"] / final["a_to_b"]["rx"])
    finally:
        rig.close()
