"""``offload forward`` between real kernel TCP/UDP stacks.

Topology (all namespaces created here, removed also on failure)::

    ns A (client)              ns F (forwarder)                         ns B (server)
    tap shtap0 10.78.0.1  <->  [offload forward tap:shtap0 PORT:shf1]  shf1 <-> shb0 10.78.0.2

The forwarder creates the tap in F; the test moves it into A (the forwarder's
file descriptor follows it). A's kernel sends TSO/USO super-packets into the tap
when the forwarder advertises offloads; on the F/B side the port is AF_XDP (no
super-packets: the forwarder segments and completes checksums) or AF_PACKET with
virtio headers (super-packets pass through).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from shim_net import topo  # noqa: F401  (fixture)
from shim_net import Topo, ethtool_k, ip, names, require_kernel

pytestmark = pytest.mark.kernel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, "tests", "shim_peer.py")
MB = 1 << 20
E2E_BYTES = int(os.environ.get("OFFLOAD_E2E_MB", "200")) * MB




class Rig:
    def __init__(self, topo, port_b: str, flags: list[str], b_tx_csum: bool):
        self.a, self.f, self.b = names("f", 3)
        for n in (self.a, self.f, self.b):
            topo.netns(n)
        topo.veth(self.f, "shf1", self.b, "shb0")
        ip("link", "set", "shb0", "address", "02:00:00:00:0b:01", ns=self.b)
        ip("addr", "add", "10.78.0.2/24", "dev", "shb0", ns=self.b)
        if not b_tx_csum:
            # AF_XDP gives no metadata for partial checksums: the kernel on that side must
            # checksum (and so segment) in software
            ethtool_k(self.b, "shb0", tx="off")
        env = dict(os.environ, PYTHONPATH=ROOT)
        argv = ["ip", "netns", "exec", self.f, sys.executable, "-m", "offload", "forward",
                "tap:shtap0", port_b.replace("IF", "shf1"), *flags]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"forwarder did not start: {self.proc.stderr.read()}")
        self.ready = json.loads(line)
        ip("link", "set", "shtap0", "netns", self.a, ns=self.f)
        ip("link", "set", "shtap0", "address", "02:00:00:00:0a:01", "up", ns=self.a)
        ip("addr", "add", "10.78.0.1/24", "dev", "shtap0", ns=self.a)
        self.final = None

    def peer(self, ns, *args):
        return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, PEER, *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=30)
        lines = [ln for ln in out.splitlines() if ln.strip()]
        self.final = json.loads(lines[-1]) if lines else None
        return self.proc.returncode, self.final, err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_tcp(rig, up_bytes, down_bytes, timeout=300):
    srv = rig.peer(rig.b, "tcp-server", 5001, down_bytes)
    assert "listening" in srv.stdout.readline()
    cli = rig.peer(rig.a, "tcp-client", "10.78.0.2", 5001, up_bytes)
    c_out, c_err = cli.communicate(timeout=timeout)
    s_out, s_err = srv.communicate(timeout=30)
    assert cli.returncode == 0, c_err
    assert srv.returncode == 0, s_err
    return json.loads(c_out.splitlines()[-1]), json.loads(s_out.splitlines()[-1])


def check_stopped_clean(rig):
    rc, final, err = rig.stop()
    assert rc == 0, err
    assert final is not None and "leak" not in final, final
    return final


CASES = {
    # name: (port B, forwarder flags, kernel B keeps tx checksum offload)
    "afxdp-plain": ("afxdp:IF", [], False),
    "afxdp-gso-gro": ("afxdp:IF", ["--gso", "--gro", "--csum"], False),
    # the tap advertises checksum offload only: partial checksums, completed by offload.csum
    "afxdp-csum": ("afxdp:IF", ["--csum"], False),
    "packet-superpackets": ("packet:IF", [], True),
    # B's kernel segments in software (tx off): wire frames for the forwarder's GRO
    "packet-gro": ("packet:IF", ["--gro"], False),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_tcp_end_to_end(topo, case):
    port_b, flags, b_csum = CASES[case]
    rig = Rig(topo, port_b, flags, b_csum)
    try:
        up = E2E_BYTES
        down = E2E_BYTES // 4
        c, s = run_tcp(rig, up, down)
        assert c["sent_bytes"] == up and s["recv_bytes"] == up
        assert c["sent_sha"] == s["recv_sha"]
        assert s["sent_bytes"] == down and c["recv_bytes"] == down
        assert s["sent_sha"] == c["recv_sha"]
        final = check_stopped_clean(rig)
        ab, ba = final["a_to_b"], final["b_to_a"]
        if "--gso" in flags:
            assert ab["gso_in"] > 0 and ab["gso_out"] > ab["gso_in"]     # the client sent TSO frames
        if "--gro" in flags:
            assert ba["gro_in"] > ba["gro_out"] > 0                      # server data coalesced toward the tap
        if "--csum" in flags:
            assert ab["csum_completed"] > 0
        if case == "packet-superpackets":
            assert ab["rx_bytes"] / ab["rx"] > 3000                      # super-packets went through whole
        assert ab["drop_needs_gso"] == 0 and ab["drop_needs_csum"] == 0
        assert ab["drop_tx_full"] == 0 and ba["drop_tx_full"] == 0
    finally:
        rig.close()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["afxdp-gso-gro", "packet-superpackets"])
def test_udp_uso_end_to_end(topo, case):
    port_b, flags, b_csum = CASES[case]
    rig = Rig(topo, port_b, flags, b_csum)
    try:
        count = 20000
        srv = rig.peer(rig.b, "udp-server", 5002, count)
        assert "listening" in srv.stdout.readline()
        cli = rig.peer(rig.a, "udp-client", "10.78.0.2", 5002, count, 1200)
        c_out, c_err = cli.communicate(timeout=120)
        s_out, s_err = srv.communicate(timeout=60)
        assert cli.returncode == 0, c_err
        c, s = json.loads(c_out.splitlines()[-1]), json.loads(s_out.splitlines()[-1])
        assert s["recv_count"] == count and s["recv_sha"] == c["sent_sha"]
        assert s["sizes"] == [1200]
        final = check_stopped_clean(rig)
        if "--gso" in flags:
            assert final["a_to_b"]["gso_in"] > 0
        else:
            assert final["a_to_b"]["rx_bytes"] / final["a_to_b"]["rx"] > 3000
    finally:
        rig.close()


def test_sigint_mid_burst_no_leak(topo):
    """SIGINT while a TCP transfer is in full flow: the forwarder stops, nothing leaks,
    the XDP program is gone and the queue can be bound again."""
    rig = Rig(topo, "afxdp:IF", [], False)
    try:
        srv = rig.peer(rig.b, "tcp-server", 5003, 0)
        assert "listening" in srv.stdout.readline()
        cli = rig.peer(rig.a, "tcp-client", "10.78.0.2", 5003, 4000 * MB)
        time.sleep(1.5)
        final = check_stopped_clean(rig)
        assert final["a_to_b"]["rx"] > 1000
        assert final["frames"]["b"]["in_use"] == 0
        cli.kill()
        srv.kill()
        cli.wait()
        srv.wait()
        assert "xdp" not in ip("link", "show", "shf1", ns=rig.f)
        from offload.nic_shim import open_port
        with open_port("afxdp:shf1:0", netns=rig.f) as p:
            p.check_frames(quiet=True)
    finally:
        rig.close()


def test_forward_cli_refuses_netmap():
    p = subprocess.run([sys.executable, "-m", "offload", "forward", "netmap:x", "tap:y"], cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True)
    assert p.returncode == 2 and "/dev/netmap" in p.stderr


def test_forwarder_library_peer_down_up(topo):
    """The library object between two AF_XDP ports, in a thread, while the receiving
    side's link goes down and up: it keeps forwarding and no UMEM frame is lost."""
    import socket
    import threading

    from offload.nic_shim import Forwarder, open_port
    from shim_net import in_netns

    x, f, y = names("l", 3)
    for n in (x, f, y):
        topo.netns(n)
    topo.veth(x, "shlx0", f, "shlf0")
    topo.veth(f, "shlf1", y, "shly0")
    ethtool_k(x, "shlx0", tx="off")
    ip("addr", "add", "10.80.0.1/24", "dev", "shlx0", ns=x)
    ip("addr", "add", "10.80.0.2/24", "dev", "shly0", ns=y)
    ip("link", "set", "shly0", "address", "02:00:00:00:0c:02", ns=y)
    ip("neigh", "add", "10.80.0.2", "lladdr", "02:00:00:00:0c:02", "dev", "shlx0", ns=x)
    with open_port("afxdp:shlf0", netns=f) as pa, open_port("afxdp:shlf1", netns=f) as pb:
        fwd = Forwarder(pa, pb)
        th = threading.Thread(target=fwd.run, daemon=True)
        th.start()
        with in_netns(y):
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            r.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)
            r.bind(("10.80.0.2", 6100))
        with in_netns(x):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.settimeout(0.5)
        got = 0
        for i in range(30000):
            s.sendto(i.to_bytes(4, "big") * 100, ("10.80.0.2", 6100))
            if i == 10000:
                ip("link", "set", "shly0", "down", ns=y)
            if i == 20000:
                ip("link", "set", "shly0", "up", ns=y)
                time.sleep(0.2)
        try:
            while True:
                r.recv(2048)
                got += 1
        except socket.timeout:
            pass
        fwd.stop()
        th.join(10)
        assert not th.is_alive()
        st = fwd.stats()["a_to_b"]
        # every datagram reached the forwarder or a kernel counter says it was dropped (the
        # counters overlap: veth counts failed XDP redirects that the XSK counts too)
        pst = pa.stats()
        from test_nic_shim import link_drops
        veth = link_drops(x, "shlx0")["tx"] + link_drops(f, "shlf0")["rx"]
        assert st["rx"] + pst["xsk_rx_dropped"] <= 30000 <= st["rx"] + pst["xsk_rx_dropped"] + veth
        assert st["rx"] > 25000
        assert st["tx"] == st["rx"]
        assert 15000 < got <= 30000
        pa.check_frames(quiet=True)
        pb.check_frames(quiet=True)
        s.close()
        r.close()
