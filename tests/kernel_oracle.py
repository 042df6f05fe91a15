"""The Linux kernel as GSO and GRO oracle, over a veth pair in namespaces this module creates.

Two veth pairs join two private namespaces (``off-gso-<pid>-<n>-a`` / ``-b``):

* the **GSO pair** ``ogsa0 -> ogsb0``: the sender end has ``ethtool -K tx off`` (so
  TSO and checksum offload are off and the kernel cuts and checksums every
  segment in software); the receiver end keeps GRO off, so segments arrive as the
  kernel produced them.
* the **GRO pair** ``ogra0 -> ogrb0``: sender TSO off, receiver ``gro on``,
  ``rx-udp-gro-forwarding on``, ``gro_flush_timeout`` 2 ms and
  ``napi_defer_hard_irqs`` 1 (afxdp-findings.md Q5: without deferral every frame
  is polled alone and nothing coalesces; without TSO off on the sender veth does
  not take the NAPI/GRO path; UDP needs rx-udp-gro-forwarding because no socket
  asks for UDP_GRO).

Frames are sent with AF_PACKET SOCK_RAW + ``PACKET_VNET_HDR`` (so a GSO
super-packet carries its virtio_net_hdr) and captured with AF_PACKET in the peer
namespace. The receiving stack strips one VLAN tag into skb metadata; it is put
back from ``PACKET_AUXDATA`` so captured frames are the bytes on the wire.

Delimiting: after each case a *marker* frame (ethertype 0x88B5, local
experimental) is sent; everything captured before the marker belongs to the
case. For GRO the marker is sent only after waiting longer than the flush
timeout, because a non-IP marker would otherwise overtake held aggregates.

Use::

    from kernel_oracle import kernel_gso, kernel_gro
    segs = kernel_gso(frame, (1, 1, 54, 1448, 34, 16))          # list[bytes]
    merged = kernel_gro([seg1, seg2, ...])                       # list[(vnet_tuple, bytes)]

or, in pytest, the session fixture ``kernel_oracle`` (tests/conftest.py) giving a
:class:`KernelOracle`; it skips when not root outside CI and fails in CI
(``CI=true``). One namespace pair serves the whole session. Many cases per
call (:meth:`KernelOracle.gso_many`) keep the per-case cost to a few syscalls.

Segments of one super-packet reach the receiver through the per-CPU backlog, which
holds ``net.core.netdev_max_backlog`` frames (1000 by default, a global sysctl this
module does not touch): a case producing more segments loses the excess.
:attr:`KernelOracle.max_segments` says how many one case may produce.

Known differences of this oracle (kernel 6.18, findings "caveats"): veth drops
full-size QinQ frames at MTU 1500 (use ``mtu=9000``); VLAN-tagged trains are not
coalesced by GRO on veth; the GRO output's vnet ``hdr_len`` is the skb head
length (the whole first segment), not the header length.
"""

from __future__ import annotations

import atexit
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from offload import netns  # noqa: E402

SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
ETH_P_ALL = 0x0003
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32

MARKER_ETHERTYPE = 0x88B5
_MARKER_MAGIC = b"offload-oracle-marker"
VNET_ZERO = (0, 0, 0, 0, 0, 0)
_RECV_MAX = 512 * 1024

GSO_DEVS = ("ogsa0", "ogsb0")
GRO_DEVS = ("ogra0", "ogrb0")


class KernelRefused(OSError):
    """The kernel refused to send the super-packet (sendmsg failed); ``errno`` says why."""


def _pack_vnet(t) -> bytes:
    t = tuple(t) + (0,) * (6 - len(t))
    return struct.pack("<BBHHHH", *t[:6])


def _marker(seq: int) -> bytes:
    # broadcast dst, locally administered src; the payload names the case
    return (b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", MARKER_ETHERTYPE)
            + _MARKER_MAGIC + struct.pack("!Q", seq) + b"\x00" * 16)


def _marker_seq(frame: bytes) -> int | None:
    if len(frame) >= 14 + len(_MARKER_MAGIC) + 8 and frame[12:14] == struct.pack("!H", MARKER_ETHERTYPE) \
            and frame[14:14 + len(_MARKER_MAGIC)] == _MARKER_MAGIC:
        return struct.unpack_from("!Q", frame, 14 + len(_MARKER_MAGIC))[0]
    return None


class KernelOracle:
    """Owns two namespaces and the GSO/GRO veth pairs; sockets on both ends.

    Create it once per test session (it takes ~0.3 s and a dozen commands) and
    :meth:`close` it at the end (namespaces removed; also registered with atexit).
    """

    def __init__(self, prefix: str = "off-gso", mtu: int = 1500):
        ok, why = netns.available()
        if not ok:
            raise RuntimeError(f"kernel oracle unavailable: {why}")
        self._closed = False
        self._seq = 0
        try:
            with open("/proc/sys/net/core/netdev_max_backlog") as fh:
                backlog = int(fh.read())
        except OSError:
            backlog = 1000
        #: most segments one case may produce before the receive backlog drops some
        self.max_segments = backlog - 1
        self.mtu = {GSO_DEVS: mtu, GRO_DEVS: mtu}
        base = netns.unique_name(prefix)
        self.vp = netns.VethPair(base + "-a", base + "-b", GSO_DEVS[0], GSO_DEVS[1], mtu)
        atexit.register(self.close)
        try:
            netns.create_netns(self.vp.ns_a)
            netns.create_netns(self.vp.ns_b)
            netns.veth(self.vp.ns_a, GSO_DEVS[0], self.vp.ns_b, GSO_DEVS[1], mtu, 1)
            self.vp.add_veth(GRO_DEVS[0], GRO_DEVS[1], mtu, 1)
            a, b = self.vp.ns_a, self.vp.ns_b
            # GSO: software segmentation and checksums on the sender; nothing merged on receive
            netns.ethtool_k(a, GSO_DEVS[0], tx="off")
            netns.ethtool_k(b, GSO_DEVS[1], gro="off")
            # GRO recipe (findings Q5)
            netns.ethtool_k(a, GRO_DEVS[0], tso="off")
            netns.ethtool_k(b, GRO_DEVS[1], gro="on", rx_udp_gro_forwarding="on")
            netns.sysfs_write(b, GRO_DEVS[1], "gro_flush_timeout", 2000000)
            netns.sysfs_write(b, GRO_DEVS[1], "napi_defer_hard_irqs", 1)
            self._gso_tx = self._tx_socket(a, GSO_DEVS[0])
            self._gso_rx = self._rx_socket(b, GSO_DEVS[1], vnet=False)
            self._gro_tx = self._tx_socket(a, GRO_DEVS[0])
            self._gro_rx = self._rx_socket(b, GRO_DEVS[1], vnet=True)
        except BaseException:
            self.close()
            raise

    # -- sockets ---------------------------------------------------------------
    def _tx_socket(self, ns, dev):
        with netns.in_netns(ns):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
        s.bind((dev, 0))
        return s

    def _rx_socket(self, ns, dev, vnet):
        with netns.in_netns(ns):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        if vnet:
            s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        s.bind((dev, ETH_P_ALL))
        s.setblocking(False)
        return s

    def _set_mtu(self, devs, mtu):
        if self.mtu[devs] != mtu:
            self.vp.set_mtu(mtu, devs[0], devs[1])
            self.mtu[devs] = mtu

    @staticmethod
    def _drain(s):
        while True:
            try:
                s.recv(_RECV_MAX)
            except BlockingIOError:
                return

    @staticmethod
    def _recv(s, vnet: bool, timeout: float):
        """One captured frame with its VLAN tag restored: ``(vnet_tuple or None, frame)``,
        or None on timeout. Outgoing copies are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                data, anc, _flags, addr = s.recvmsg(_RECV_MAX, socket.CMSG_SPACE(32))
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                select.select([s], [], [], left)
                continue
            if addr[2] == PACKET_OUTGOING:
                continue
            hdr = None
            if vnet:
                hdr = struct.unpack_from("<BBHHHH", data)
                data = data[10:]
            for level, typ, cdata in anc:
                if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= 20:
                    status, _len, _snap, _mac, _net, tci, tpid = struct.unpack_from("<IIIHHHH", cdata)
                    if status & TP_STATUS_VLAN_VALID:
                        if not status & TP_STATUS_VLAN_TPID_VALID:
                            tpid = 0x8100
                        data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
            return hdr, data

    def _send(self, s, frame, vnet):
        try:
            s.send(_pack_vnet(vnet) + bytes(frame))
        except OSError as e:
            raise KernelRefused(e.errno, f"kernel refused the frame: {os.strerror(e.errno)}") from None

    def _collect(self, s, vnet: bool, seq: int, timeout: float = 2.0):
        """Frames captured up to marker ``seq``."""
        got = []
        while True:
            r = self._recv(s, vnet, timeout)
            if r is None:
                raise TimeoutError(f"kernel oracle: marker {seq} did not arrive within {timeout}s")
            m = _marker_seq(r[1])
            if m is None:
                got.append(r)
            elif m == seq:
                return got
            # an older marker (a case that raised half-way): ignore what came before it

    # -- GSO -------------------------------------------------------------------
    def gso_many(self, cases, mtu: int = 1500) -> list:
        """Segment each ``(frame, vnet_tuple)`` in the kernel. Returns, per case, the list of
        frames on the wire (bytes), or a :class:`KernelRefused` instance when the kernel
        refused to send it. ``vnet_tuple`` = ``(flags, gso_type, hdr_len, gso_size,
        csum_start, csum_offset)`` as in the virtio_net_hdr (offsets from the frame start).
        """
        self._set_mtu(GSO_DEVS, mtu)
        tx, rx = self._gso_tx, self._gso_rx
        self._drain(rx)
        out = []
        for frame, vnet in cases:
            self._seq += 1
            seq = self._seq
            try:
                self._send(tx, frame, vnet)
                refused = None
            except KernelRefused as e:
                refused = e
            self._send(tx, _marker(seq), VNET_ZERO)
            got = [f for _h, f in self._collect(rx, False, seq)]
            out.append(refused if refused is not None else got)
        return out

    def gso(self, frame, vnet, mtu: int = 1500) -> list[bytes]:
        """Segments of one super-packet (raises :class:`KernelRefused` if refused)."""
        r = self.gso_many([(frame, vnet)], mtu)[0]
        if isinstance(r, KernelRefused):
            raise r
        return r

    # -- GRO -------------------------------------------------------------------
    def gro(self, frames, mtu: int = 1500, settle: float = 0.02, vnets=None) -> list:
        """Send ``frames`` (complete, valid frames, no GSO) back to back into the GRO
        receiver; return what the receiving stack hands up, in order: a list of
        ``(vnet_tuple, frame_bytes)``. A merged frame has gso_type/gso_size set and a
        partial TCP/UDP checksum (NEEDS_CSUM, csum_start/offset); an unmerged one
        typically has flags DATA_VALID (2) and gso_type 0.

        ``settle`` (s) is how long to wait after the last frame before the marker:
        longer than ``gro_flush_timeout`` (2 ms), so held aggregates are flushed first.
        Frames are sent one per syscall (~10 µs apart), well inside the flush timeout,
        so a train stays in one GRO aggregate as on a busy NIC. ``vnets``: one
        virtio_net_hdr tuple per frame to send it with (e.g. NEEDS_CSUM), default none.
        """
        self._set_mtu(GRO_DEVS, mtu)
        tx, rx = self._gro_tx, self._gro_rx
        self._drain(rx)
        for k, f in enumerate(frames):
            self._send(tx, f, VNET_ZERO if vnets is None else vnets[k])
        time.sleep(settle)
        self._seq += 1
        seq = self._seq
        self._send(tx, _marker(seq), VNET_ZERO)
        return [(h, f) for h, f in self._collect(rx, True, seq)]

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        for name in ("_gso_tx", "_gso_rx", "_gro_tx", "_gro_rx"):
            s = getattr(self, name, None)
            if s is not None:
                s.close()
        self.vp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


_default: KernelOracle | None = None


def default_oracle() -> KernelOracle:
    """The process-wide oracle (created on first use, removed at exit)."""
    global _default
    if _default is None or _default._closed:
        _default = KernelOracle()
    return _default


def kernel_gso(frame, vnet_hdr_tuple, mtu: int = 1500) -> list[bytes]:
    """The frames the kernel puts on the wire for ``frame`` sent with ``vnet_hdr_tuple``."""
    return default_oracle().gso(frame, vnet_hdr_tuple, mtu)


def kernel_gro(frames, mtu: int = 1500) -> list:
    """What the kernel's GRO makes of ``frames``: ``[(vnet_tuple, frame_bytes), ...]``."""
    return default_oracle().gro(frames, mtu)


def oracle_or_skip():
    """For tests: the default oracle; skip if unavailable here, fail if ``CI`` is set."""
    from conftest import require_netns

    require_netns()
    return default_oracle()
