"""NIC shim ports against the Linux kernel on the other end of a veth / tap.

Every test builds its own namespaces (off-shim-<pid>-...) and removes them, also
on failure. The kernel is the oracle: an AF_PACKET socket or a kernel UDP socket
in the peer namespace receives what the port sent, and sends what the port must
receive.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import numpy as np
import pytest

from offload import vnet
from offload.batch import PacketBatch, new_meta
from offload.nic_shim import open_port
from offload.nic_shim.afxdp import AfXdpPort

from shim_net import topo  # noqa: F401  (fixture)
from shim_net import Topo, in_netns, ip, names, ns_exec, require_kernel, ethtool_k

pytestmark = pytest.mark.kernel

MAC_A = bytes.fromhex("020000000a01")
MAC_B = bytes.fromhex("020000000b01")




def pair(topo, mtu=1500, queues=1):
    a, b = names("p", 2)
    topo.netns(a)
    topo.netns(b)
    topo.veth(a, "shx0", b, "shy0", mtu=mtu, queues=queues)
    return a, b


def raw_sock(ns, dev, timeout=2.0, vnet_hdr=False):
    with in_netns(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
        if vnet_hdr:
            s.setsockopt(263, 15, 1)
        s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)   # SO_RCVBUFFORCE: hold every test frame
        s.bind((dev, 0x88B5))
    s.settimeout(timeout)
    return s


def test_frames(n, sizes=(60, 64, 100, 512, 1000, 1514), seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ln = sizes[i % len(sizes)]
        body = rng.integers(0, 256, ln - 14, dtype=np.uint8).tobytes()
        out.append(MAC_B + MAC_A + b"\x88\xb5" + struct.pack(">I", i) + body[4:])
    return out


test_frames.__test__ = False


def recv_all(s, n):
    got = []
    try:
        while len(got) < n:
            got.append(s.recv(65536))
    except socket.timeout:
        pass
    return got


def rx_until(port, n, timeout=3.0):
    got = []
    end = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        b = port.rx_burst(64)
        if len(b):
            got += b.to_frames()
            port.release(b)
        else:
            time.sleep(0.001)
    return got


# -- AF_XDP ---------------------------------------------------------------------

def test_afxdp_tx_rx_against_kernel(topo):
    a, b = pair(topo)
    frames = test_frames(300)
    s = raw_sock(b, "shy0")
    with open_port("afxdp:shx0:0", netns=a) as p:
        assert p.xdp_mode in ("drv", "skb")
        # TX: the kernel on the other end receives exactly what we queued, in order
        assert p.tx_burst(PacketBatch.from_frames(frames[:150])) == 150
        assert p.tx_burst(PacketBatch.from_frames(frames[150:])) == 150
        assert recv_all(s, 300) == frames
        assert p.flush()
        p.check_frames(quiet=True)
        # RX: what the kernel sends arrives as views into the UMEM
        for f in frames:
            s.send(f)
        got = []
        end = time.monotonic() + 3
        while len(got) < 300 and time.monotonic() < end:
            bt = p.rx_burst(64)
            if len(bt):
                assert bt.buf is p.buf                       # views, not copies
                assert (bt.off < p.umem_len).all()
                got += bt.to_frames()
                st = p.check_frames()
                assert st["in_use"] == len(bt)
                # fresh meta records although the burst's slot was dirtied by the last batch
                assert bt.meta.tobytes() == new_meta(len(bt)).tobytes()
                bt.meta["status"][:] = 7
                bt.meta["l3_off"][:] = 99
                p.release(bt)
        assert got == frames
        assert p.stats()["rx_bytes"] == sum(map(len, frames))
        st = p.check_frames(quiet=True)
        assert st["in_use"] == 0 and st["tx+completion"] == 0
        assert p.stats()["rx_packets"] == 300 and p.stats()["tx_packets"] == 300
        with pytest.raises(ValueError):
            p.release(bt)                                   # released twice
    s.close()


def test_afxdp_context_and_rx_helper(topo):
    a, b = pair(topo)
    s = raw_sock(b, "shy0")
    frames = test_frames(10)
    with open_port("afxdp:shx0", netns=a) as p:
        for f in frames:
            s.send(f)
        time.sleep(0.05)
        with p.rx(64) as bt:
            assert bt.to_frames() == frames
            assert p.check_frames()["in_use"] == 10
        assert p.check_frames(quiet=True)["in_use"] == 0
    assert p.closed
    # the program went with the link: the kernel sees frames again
    assert "xdp" not in ip("link", "show", "shx0", ns=a)
    s.close()


def test_afxdp_jumbo_multibuffer(topo):
    a, b = pair(topo, mtu=9000)
    sizes = (60, 1514, 3840, 3841, 4096, 4097, 8192, 9014)
    frames = test_frames(len(sizes) * 4, sizes=sizes, seed=2)
    s = raw_sock(b, "shy0")
    with open_port("afxdp:shx0:0", netns=a) as p:
        assert p.chunk == 4096 and p.sg
        assert p.tx_burst(PacketBatch.from_frames(frames)) == len(frames)
        assert recv_all(s, len(frames)) == frames
        assert p.flush()
        for f in frames:
            s.send(f)
        got = rx_until(p, len(frames))
        assert [len(x) for x in got] == [len(x) for x in frames]
        assert got == frames
        assert p.stats()["xsk_rx_dropped"] == 0
        p.check_frames(quiet=True)
        # a frame above the peer MTU is taken, the device drops it, no chunk leaks
        big = test_frames(1, sizes=(9100,))
        assert p.tx_burst(PacketBatch.from_frames(big)) == 1
        assert p.flush()
        assert recv_all(s, 1) == []
        p.check_frames(quiet=True)
        # more descriptors than the kernel allows per packet: refused by the port
        huge = PacketBatch.from_frames(test_frames(1, sizes=(4096 * 18 + 1,)))
        assert p.tx_burst(huge) == 1
        assert p.stats()["tx_dropped"] == 1
        p.check_frames(quiet=True)
    s.close()


def test_afxdp_without_sg_refuses_jumbo_mtu(topo):
    a, _ = pair(topo, mtu=9000)
    with pytest.raises(ValueError, match="XDP_USE_SG"):
        open_port("afxdp:shx0:0,sg=0", netns=a)


def test_afxdp_every_queue(topo):
    a, b = pair(topo, queues=2)
    s = raw_sock(b, "shy0")
    frames = test_frames(200)
    with open_port("afxdp:shx0", netns=a) as p:
        assert [q.qid for q in p.queues] == [0, 1]
        for f in frames:
            s.send(f)
        got = rx_until(p, 200)
        assert sorted(got) == sorted(frames)
        assert p.tx_burst(PacketBatch.from_frames(frames), queue=1) == 200
        assert sorted(recv_all(s, 200)) == sorted(frames)
        assert p.flush()
        p.check_frames(quiet=True)
    s.close()


def test_afxdp_rebind_after_close(topo):
    a, b = pair(topo)
    for _ in range(3):
        with open_port("afxdp:shx0:0", netns=a) as p:
            p.check_frames(quiet=True)


def test_afxdp_peer_down_up_no_leak(topo):
    a, b = pair(topo)
    s = raw_sock(b, "shy0")
    frames = test_frames(100)
    with open_port("afxdp:shx0:0", netns=a) as p:
        for f in frames[:50]:
            s.send(f)
        held = p.rx_burst(64)
        assert len(held) > 0
        ip("link", "set", "shy0", "down", ns=b)
        # TX while the peer is down: taken, completed (the veth drops them), nothing leaks
        assert p.tx_burst(PacketBatch.from_frames(frames)) == 100
        p.flush(1.0)
        ip("link", "set", "shx0", "down", ns=a)
        p.tx_burst(PacketBatch.from_frames(frames[:10]))
        ip("link", "set", "shx0", "up", ns=a)
        ip("link", "set", "shy0", "up", ns=b)
        time.sleep(0.2)
        p.release(held)
        rx_until(p, 50 - len(held), timeout=0.5)
        assert p.flush(2.0)
        p.check_frames(quiet=True)
        # and it still works (the old packet socket holds ENETDOWN from the link going down)
        s.close()
        s = raw_sock(b, "shy0")
        for f in frames:
            s.send(f)
        got = rx_until(p, 100)
        assert got == frames
        assert p.tx_burst(PacketBatch.from_frames(frames)) == 100
        assert recv_all(s, 100) == frames
        assert p.flush()
        p.check_frames(quiet=True)
    s.close()


@pytest.mark.slow
def test_afxdp_million_frames_no_leak(topo):
    """A million 64-byte frames from one AF_XDP port to another across the veth."""
    a, b = pair(topo)
    total = 1_000_000
    batch = PacketBatch.from_frames(test_frames(64, sizes=(64,)))
    with open_port("afxdp:shx0:0", netns=a) as tx, open_port("afxdp:shy0:0", netns=b) as rx:
        sent = recvd = 0
        end = time.monotonic() + 120
        while (sent < total or recvd < sent) and time.monotonic() < end:
            if sent < total:
                sent += tx.tx_burst(batch if total - sent >= 64 else batch[: total - sent])
            for _ in range(4):
                r = rx.rx_burst(256)
                if not len(r):
                    break
                recvd += len(r)
                rx.release(r)
            if sent >= total:
                tx.flush(0.01)
                st = rx.stats()
                if recvd + st["xsk_rx_dropped"] >= sent:
                    break
        assert sent == total
        assert tx.flush(2.0)
        tx.check_frames(quiet=True)
        rx.check_frames(quiet=True)
        st = rx.stats()
        # every frame arrived, or the kernel counted where it was dropped
        veth_drops = link_drops(a, "shx0")["tx"] + link_drops(b, "shy0")["rx"]
        xsk_drops = st["xsk_rx_dropped"]     # counts every XSK drop, rx_ring_full included
        assert recvd + veth_drops + xsk_drops == total, (recvd, veth_drops, st)
        assert st["rx_packets"] == recvd and tx.stats()["tx_packets"] == total
        assert recvd > 0.9 * total


def link_drops(ns, dev):
    import json
    d = json.loads(ip("-s", "-j", "link", "show", dev, ns=ns))[0]["stats64"]
    return {"rx": d["rx"]["dropped"], "tx": d["tx"]["dropped"]}


def test_netmap_fails_clearly():
    with pytest.raises(OSError, match="/dev/netmap"):
        open_port("netmap:eth0")


def test_bad_specs():
    for spec in ("", "afxdp", "foo:bar", "afxdp:a:1:2"):
        with pytest.raises(ValueError):
            open_port(spec)


# -- tap --------------------------------------------------------------------------

def pseudo_partial(src: bytes, dst: bytes, proto: int, l4_len: int) -> int:
    """Folded, not inverted pseudo-header sum: what CHECKSUM_PARTIAL leaves in the field."""
    s = sum(struct.unpack(">HHHH", src + dst)) + proto + l4_len
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def udp_super(src_mac, dst_mac, sip, dip, sport, dport, payload, gso_size):
    """A USO super-packet as the kernel hands one out: full lengths, partial checksum."""
    ulen = 8 + len(payload)
    iph = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 1, 0x4000, 64, 17, 0, sip, dip)
    cs = 0
    for (w,) in struct.iter_unpack(">H", iph):
        cs += w
    while cs >> 16:
        cs = (cs & 0xFFFF) + (cs >> 16)
    iph = iph[:10] + struct.pack(">H", cs ^ 0xFFFF) + iph[12:]
    udph = struct.pack(">HHHH", sport, dport, ulen, pseudo_partial(sip, dip, 17, ulen))
    frame = dst_mac + src_mac + b"\x08\x00" + iph + udph + payload
    hdr = (vnet.F_NEEDS_CSUM, vnet.GSO_UDP_L4, 42, gso_size, 34, 6)
    return frame, hdr


def tap_ns(topo, offload=True):
    (a,) = names("t", 1)
    topo.netns(a)
    p = open_port(f"tap:shtap0,offload={int(offload)}", netns=a)
    ip("link", "set", "shtap0", "address", "02:00:00:00:0a:01", "up", ns=a)
    ip("addr", "add", "10.77.0.1/24", "dev", "shtap0", ns=a)
    ip("neigh", "add", "10.77.0.2", "lladdr", "02:00:00:00:0b:01", "dev", "shtap0", ns=a)
    return a, p


def test_tap_super_packets_both_directions(topo):
    a, p = tap_ns(topo)
    with p:
        assert p.uso, "kernel without tap USO (Linux < 6.2)"
        with in_netns(a):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("10.77.0.1", 5000))
        u.settimeout(2)
        # kernel -> tap: one USO super-packet with its virtio header
        u.setsockopt(socket.SOL_UDP, 103, 1400)                   # UDP_SEGMENT
        payload = bytes(range(256)) * 50 + b"tail"                # 12804 bytes: 10 segments
        u.sendto(payload, ("10.77.0.2", 6000))
        got = None
        end = time.monotonic() + 2
        while got is None and time.monotonic() < end:
            b = p.rx_burst(16)
            for i in range(len(b)):
                f = b.frame(i)
                if len(f) > 42 and f[23] == 17:
                    got = (f.tobytes(), b.meta[i].copy())
            p.release(b)
            time.sleep(0.005)
        assert got is not None
        frame, m = got
        assert m["gso_type"] == vnet.GSO_UDP_L4 and m["gso_size"] == 1400
        assert m["vnet_flags"] & vnet.F_NEEDS_CSUM and m["csum_start"] == 34 and m["csum_offset"] == 6
        assert frame[42:] == payload and len(frame) == 42 + len(payload)
        # tap -> kernel: a USO super-packet we write is segmented by the kernel
        data = os.urandom(10 * 1000 - 7)
        frame, hdr = udp_super(MAC_B, MAC_A, socket.inet_aton("10.77.0.2"), socket.inet_aton("10.77.0.1"),
                               6000, 5000, data, 1000)
        assert p.tx_burst(PacketBatch.from_frames([frame], vnet=[hdr])) == 1
        dgrams = [u.recv(65536) for _ in range(10)]
        assert [len(d) for d in dgrams] == [1000] * 9 + [993]
        assert b"".join(dgrams) == data
        # a header the kernel refuses is taken and counted, not retried forever
        bad = PacketBatch.from_frames([frame], vnet=[(1, 5, 42, 0, 34, 6)])
        assert p.tx_burst(bad) == 1 and p.stats()["tx_dropped"] == 1
        p.check_frames()
        u.close()


def _tx_lying_lengths(p, s, frames, vnet=None):
    """A frame whose length lies (past the end of its buffer, or so large that offset +
    length wraps) is refused before any address is formed; the others go out."""
    from offload.status import SHIM_DROPPED
    lie = PacketBatch.from_frames(frames[:6], vnet=vnet)
    lie.len[2] = lie.buf.shape[0]
    lie.len[4] = (1 << 63) - 1
    assert p.tx_burst(lie) == 6
    assert recv_all(s, 4) == [frames[k] for k in (0, 1, 3, 5)]
    assert [int(x) for x in np.flatnonzero(lie.meta["status"] == SHIM_DROPPED)] == [2, 4]
    # a strided buffer (frames addressed by pointer): sent from a contiguous copy
    wide = np.zeros(2 * lie.buf.shape[0], np.uint8)
    wide[::2] = lie.buf
    strided = PacketBatch(wide[::2], lie.off[:2], [len(frames[0]), len(frames[1])], meta=lie.meta[:2].copy())
    assert not strided.buf.flags.c_contiguous
    assert p.tx_burst(strided) == 2 and recv_all(s, 2) == frames[:2]


def test_tap_tx_burst_refuses_one_frame_and_writes_the_rest(topo):
    """One kernel call per burst, one writev per frame inside it: a frame whose virtio header
    the kernel refuses (EINVAL) in the middle of 301 is taken, marked SHIM_DROPPED and
    counted; the other 300 reach the stack whole and in order."""
    from offload.status import SHIM_DROPPED
    a, p = tap_ns(topo)
    s = raw_sock(a, "shtap0")
    frames = test_frames(300, seed=3)
    plain = (0, 0, 0, 0, 0, 0)
    with p:
        bt = PacketBatch.from_frames(frames[:150] + [frames[0]] + frames[150:],
                                     vnet=[plain] * 150 + [(1, 5, 42, 0, 34, 6)] + [plain] * 150)
        assert p.tx_burst(bt) == 301
        assert recv_all(s, 300) == frames
        assert [int(x) for x in np.flatnonzero(bt.meta["status"] == SHIM_DROPPED)] == [150]
        st = p.stats()
        assert st["tx_packets"] == 300 and st["tx_dropped"] == 1
        assert st["tx_bytes"] == sum(len(f) for f in frames)
        _tx_lying_lengths(p, s, frames, vnet=[plain] * 6)
        p.check_frames()
    s.close()


def test_tap_without_offload_gives_plain_frames(topo):
    a, p = tap_ns(topo, offload=False)
    with p:
        with in_netns(a):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_UDP, 103, 1400)
        u.sendto(b"x" * 5000, ("10.77.0.2", 6000))
        time.sleep(0.1)
        b = p.rx_burst(64)
        udp = [i for i in range(len(b)) if b.frame(i)[23] == 17]
        assert len(udp) == 4
        assert (b.meta["gso_type"][udp] == 0).all()
        p.release(b)
        p.check_frames()
        u.close()


# -- AF_PACKET --------------------------------------------------------------------

def test_packet_port_both_directions(topo):
    a, b = pair(topo)
    ip("addr", "add", "10.79.0.1/24", "dev", "shx0", ns=a)
    ip("addr", "add", "10.79.0.2/24", "dev", "shy0", ns=b)
    ip("neigh", "add", "10.79.0.1", "lladdr", "02:00:00:00:0a:01", "dev", "shy0", ns=b)
    ip("link", "set", "shx0", "address", "02:00:00:00:0a:01", ns=a)
    s = raw_sock(b, "shy0")
    frames = test_frames(2000)
    with open_port("packet:shx0", netns=a) as p:
        assert p.accepts_gso
        # many plain frames: walks many blocks, releases them
        for f in frames:
            s.send(f)
        got = rx_until(p, 2000)
        assert got == frames
        p.check_frames()
        assert p.tx_burst(PacketBatch.from_frames(frames[:500])) == 500
        assert recv_all(s, 500) == frames[:500]
        # kernel -> port: a USO super-packet stays whole with its virtio header (veth passes GSO skbs)
        with in_netns(b):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("10.79.0.2", 7000))
        u.settimeout(2)
        u.setsockopt(socket.SOL_UDP, 103, 1200)
        payload = os.urandom(12000)
        u.sendto(payload, ("10.79.0.1", 7001))
        seen = None
        end = time.monotonic() + 2
        while seen is None and time.monotonic() < end:
            bt = p.rx_burst(64)
            for i in range(len(bt)):
                f = bt.frame(i)
                if len(f) > 42 and f[12:14].tobytes() == b"\x08\x00" and f[23] == 17:
                    seen = (f.tobytes(), bt.meta[i].copy())
            p.release(bt)
        assert seen is not None
        f, m = seen
        assert m["gso_type"] == vnet.GSO_UDP_L4 and m["gso_size"] == 1200 and f[42:] == payload
        # port -> kernel: a USO super-packet arrives at the socket as datagrams
        data = os.urandom(8 * 1100)
        fr, hdr = udp_super(bytes.fromhex("020000000a01"), ip_mac(b, "shy0"), socket.inet_aton("10.79.0.1"),
                            socket.inet_aton("10.79.0.2"), 7001, 7000, data, 1100)
        assert p.tx_burst(PacketBatch.from_frames([fr], vnet=[hdr])) == 1
        dg = [u.recv(65536) for _ in range(8)]
        assert b"".join(dg) == data
        p.check_frames()
        u.close()
    s.close()


def test_packet_port_tx_burst_refuses_one_frame_and_sends_the_rest(topo):
    """tx_burst is one sendmmsg per burst: a frame the kernel refuses in the middle (above
    the MTU, no GSO header: EMSGSIZE) is taken, marked SHIM_DROPPED and counted, and every
    other frame reaches the peer whole and in order; so does a burst of 3000 (several
    sendmmsg calls of at most 1024 messages)."""
    from offload.status import SHIM_DROPPED
    a, b = pair(topo)
    s = raw_sock(b, "shy0")
    frames = test_frames(40)
    big = test_frames(1, sizes=(4000,))[0]
    burst = frames[:20] + [big] + frames[20:]
    with open_port("packet:shx0", netns=a) as p:
        bt = PacketBatch.from_frames(burst)
        assert p.tx_burst(bt) == 41
        assert recv_all(s, 40) == frames
        assert [int(x) for x in np.flatnonzero(bt.meta["status"] == SHIM_DROPPED)] == [20]
        st = p.stats()
        assert st["tx_packets"] == 40 and st["tx_dropped"] == 1 and st["tx_errors"] == 1
        assert st["tx_bytes"] == sum(len(f) for f in frames)
        many = test_frames(3000, sizes=(60, 64, 100, 512), seed=2)
        s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)      # SO_RCVBUFFORCE: hold all 3000
        sent = 0
        end = time.monotonic() + 10
        while sent < len(many) and time.monotonic() < end:   # a full queue ends a burst early
            sent += p.tx_burst(PacketBatch.from_frames(many[sent:]))
        assert sent == 3000 and recv_all(s, 3000) == many
        _tx_lying_lengths(p, s, frames)
    s.close()


def ip_mac(ns, dev) -> bytes:
    out = ip("-o", "link", "show", dev, ns=ns)
    return bytes.fromhex(out.split("link/ether ")[1].split()[0].replace(":", ""))
