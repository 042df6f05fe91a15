"""AF_PACKET port: a TPACKET_V3 mmap RX ring with PACKET_VNET_HDR, for hosts without AF_XDP.

RX: the kernel fills blocks of the ring with frames, each preceded by its
virtio_net_hdr (so GSO/GRO super-packets arrive whole, with their header);
a block becomes ours when full or after ``retire_ms``. ``rx_burst`` walks blocks
in a Numba kernel and returns frames as views into the ring; a block goes back
to the kernel once every frame of it has been returned and every batch that
holds one of its frames has been released.

TX: one ``sendmmsg`` system call per burst (up to 1024 frames), each message
two iovecs, the virtio header and the frame, built with numpy: no Python work
per frame. (A TX ring, PACKET_TX_RING, would also save the copy into skbs; it is
not implemented.)

Limitation: when the kernel has moved a VLAN tag into skb metadata
(``TP_STATUS_VLAN_VALID``), the frame in the ring has no tag; such frames are
counted in ``rx_vlan_stripped`` and passed on untagged.
"""

from __future__ import annotations

import errno
import mmap
import socket
import struct

import numpy as np
from numba import njit

from .. import vnet
from ..batch import PacketBatch
from ..status import SHIM_DROPPED
from . import _linux as L
from .port import MetaPool, Port, empty_batch, fast_batch

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 1 << 4
ETH_P_ALL = 0x0003

# struct tpacket_block_desc / tpacket_hdr_v1 offsets
BLK_STATUS = 8
BLK_NUM_PKTS = 12
BLK_FIRST = 16


@njit(cache=True, nogil=True)
def _u32(b, o):
    return np.int64(b[o]) | (np.int64(b[o + 1]) << 8) | (np.int64(b[o + 2]) << 16) | (np.int64(b[o + 3]) << 24)


@njit(cache=True, nogil=True)
def _u16(b, o):
    return np.int64(b[o]) | (np.int64(b[o + 1]) << 8)


@njit(cache=True, nogil=True)
def _walk_block(ring, blk, blk_size, pkt, left, maxn, n, out_off, out_len, meta, hlen, bad):
    """Take up to ``maxn - n`` frames from the block at ``blk`` starting with the packet
    header at ``pkt`` (relative to the block), ``left`` frames remaining. Every offset
    read from the ring is checked against the block. Returns (n, pkt, left, vlan_stripped)."""
    vlan = 0
    while left > 0 and n < maxn:
        if pkt < 0 or pkt + 32 > blk_size:
            bad[0] += 1
            left = 0
            break
        h = blk + pkt
        nxt = _u32(ring, h)
        snap = _u32(ring, h + 12)
        stat = _u32(ring, h + 20)
        mac = _u16(ring, h + 24)
        if mac < hlen or pkt + mac + snap > blk_size:
            bad[0] += 1
            left = 0
            break
        f = h + mac
        out_off[n] = f
        out_len[n] = snap
        v = f - hlen
        meta[n].vnet_flags = ring[v]
        meta[n].gso_type = ring[v + 1]
        meta[n].hdr_len = _u16(ring, v + 2)
        meta[n].gso_size = _u16(ring, v + 4)
        meta[n].csum_start = _u16(ring, v + 6)
        meta[n].csum_offset = _u16(ring, v + 8)
        if stat & TP_STATUS_VLAN_VALID:
            vlan += 1
        n += 1
        left -= 1
        pkt = pkt + nxt if nxt else -1
    return n, pkt, left, vlan


class PacketPort(Port):
    """AF_PACKET on ``ifname``: TPACKET_V3 RX ring of ``blocks`` x ``block_size`` bytes
    (default 32 x 256 KiB), PACKET_VNET_HDR on (``vnet_hdr`` 0 turns it off: then the
    frames carry no header and super-packets are neither received nor sent)."""

    kind = "packet"

    def __init__(self, ifname: str, netns: str | None = None, blocks: int = 32, block_size: int = 1 << 18,
                 retire_ms: int = 1, vnet_hdr: bool = True, max_burst: int = 256):
        super().__init__(ifname)
        self.sock = None
        self.mm = None
        self.ring = None
        self.hlen = vnet.HDR_LEN if vnet_hdr else 0
        self.accepts_gso = self.delivers_gso = bool(vnet_hdr)
        self.nblocks = int(blocks)
        self.block_size = int(block_size)
        with L.in_netns(netns):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock = s
            try:
                if vnet_hdr:
                    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)   # must precede the ring
                s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)  # not our own transmissions
                s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
                frame_size = 2048
                req = struct.pack("7I", self.block_size, self.nblocks, frame_size,
                                  self.block_size // frame_size * self.nblocks, int(retire_ms), 0, 0)
                s.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
                self.mm = mmap.mmap(s.fileno(), self.block_size * self.nblocks, mmap.MAP_SHARED,
                                    mmap.PROT_READ | mmap.PROT_WRITE)
                self.ring = np.frombuffer(self.mm, np.uint8)
                s.bind((ifname, ETH_P_ALL))
            except BaseException:
                self.close()
                raise
        self.buf = self.ring
        self.max_burst = int(max_burst)
        self._blk = 0          # block being read
        self._pkt = -1         # next packet in it (-1: block not started)
        self._left = 0
        self._refs = np.zeros(self.nblocks, np.int64)   # outstanding batches holding frames of a block
        self._done = np.zeros(self.nblocks, bool)       # block fully read
        self._outstanding: dict[int, list[int]] = {}
        self._out_off = np.zeros(self.max_burst, np.int64)
        self._out_len = np.zeros(self.max_burst, np.int64)
        self._bad = np.zeros(1, np.int64)
        self._stats.update(rx_vlan_stripped=0, rx_bad_ring=0, tx_errors=0)
        self._mm = None        # sendmmsg table and iovecs (tx_burst), grown to the largest burst
        self._iov = None
        self._meta = MetaPool(self.max_burst)
        self._scratch = self._meta.take(self.max_burst)
        self.warm_up()

    def warm_up(self) -> None:
        _walk_block(self.ring, 0, self.block_size, -1, 0, 0, 0, self._out_off, self._out_len, self._scratch,
                    self.hlen, self._bad)

    def fileno(self) -> int:
        return self.sock.fileno()

    def _blk_status(self, b):
        o = b * self.block_size + BLK_STATUS
        return int(self.ring[o:o + 4].view(np.uint32)[0])

    def _give_back(self, b):
        o = b * self.block_size + BLK_STATUS
        self._done[b] = False
        self.ring[o:o + 4].view(np.uint32)[0] = TP_STATUS_KERNEL

    def rx_burst(self, max_frames: int = 64) -> PacketBatch:
        maxn = min(int(max_frames), self.max_burst)
        meta = self._meta.take(maxn)
        n = 0
        touched = []
        vlan = 0
        for _ in range(self.nblocks):
            if n >= maxn:
                break
            b = self._blk
            if self._pkt < 0 and not self._left:
                if not (self._blk_status(b) & TP_STATUS_USER):
                    break
                o = b * self.block_size
                self._left = int(self.ring[o + BLK_NUM_PKTS:o + BLK_NUM_PKTS + 4].view(np.uint32)[0])
                self._pkt = int(self.ring[o + BLK_FIRST:o + BLK_FIRST + 4].view(np.uint32)[0])
            n2, self._pkt, self._left, v = _walk_block(self.ring, b * self.block_size, self.block_size, self._pkt,
                                                       self._left, maxn, n, self._out_off, self._out_len, meta,
                                                       self.hlen, self._bad)
            vlan += v
            if n2 > n:
                touched.append(b)
            n = n2
            if self._left:
                break           # burst full in the middle of this block
            self._done[b] = True
            self._pkt = -1
            if b not in touched and self._refs[b] == 0:
                self._give_back(b)
            self._blk = (b + 1) % self.nblocks
        if self._bad[0]:
            self._stats["rx_bad_ring"] += int(self._bad[0])
            self._bad[0] = 0
        if n == 0:
            return empty_batch()
        for b in touched:
            self._refs[b] += 1
        out = fast_batch(self.ring, self._out_off[:n].copy(), self._out_len[:n].copy(), meta[:n])
        if not self.hlen:
            out.meta["vnet_flags"] = 0
            out.meta["gso_type"] = 0
        self._stats["rx_vlan_stripped"] += vlan
        return self._hand_out(out, touched)

    def release(self, batch: PacketBatch) -> None:
        if len(batch) == 0:
            return
        for b in self._take_back(batch)[1]:
            self._refs[b] -= 1
            if self._refs[b] == 0 and self._done[b]:
                self._give_back(b)

    def release_all(self) -> None:
        for k in list(self._outstanding):
            self.release_key(k)

    def release_key(self, k):
        for b in self._outstanding.pop(k)[1]:
            self._refs[b] -= 1
            if self._refs[b] == 0 and self._done[b]:
                self._give_back(b)

    def tx_burst(self, batch: PacketBatch) -> int:
        """Send the frames (with their virtio_net_hdr from ``meta`` when the port has them)
        in one ``sendmmsg`` per 1024. Returns the frames taken: sent, or refused by the
        kernel (EINVAL: a header it rejects, EMSGSIZE: too large, a device error) and then
        marked SHIM_DROPPED and counted in ``tx_dropped``/``tx_errors``; EAGAIN/ENOBUFS
        (queue full) ends the burst early (``tx_full``), the caller retries the rest."""
        n = batch.off.shape[0]
        if n == 0:
            return 0
        hl = self.hlen
        buf, off, ln, bad, hdrs = self._tx_frames(batch, hl)
        iovs = 2 if hl else 1
        if self._mm is None or self._mm.shape[0] < n:
            self._mm, self._iov = L.mmsg_table(max(n, self.max_burst), iovs)
        mm, iov = self._mm, self._iov
        frame = iov[iovs - 1::iovs]
        frame[:n, 0] = buf.ctypes.data + off.view(np.uint64)
        frame[:n, 1] = ln.view(np.uint64)
        if hl:
            iov[0:2 * n:2, 0] = hdrs.ctypes.data + np.arange(n, dtype=np.uint64) * hl
            iov[0:2 * n:2, 1] = hl
        # a frame that does not lie inside the buffer is not sent (refused, like a kernel error)
        if bad.any():
            frame[:n][bad] = 0
        st = self._stats
        fd = self.sock.fileno()
        i = sent = dropped = nbytes = 0
        status = batch.meta["status"]
        while i < n:
            if bad[i]:
                k, err = -1, errno.EFAULT
            else:
                stop = i + min(n - i, L.UIO_MAXIOV)
                nb = np.flatnonzero(bad[i:stop])
                if nb.size:
                    stop = i + int(nb[0])
                k, err = L.sendmmsg(fd, mm.ctypes.data + i * 8 * L.MMSG_WORDS, stop - i, L.MSG_DONTWAIT)
            if k > 0:
                nbytes += int(ln[i:i + k].sum())
                sent += k
                i += k
                continue
            if err == errno.EINTR:
                continue
            if err in (errno.EAGAIN, errno.ENOBUFS):
                st["tx_full"] += 1
                break
            # this frame is refused (EINVAL: header; EMSGSIZE: too large; EIO/ENETDOWN: device)
            status[i] = SHIM_DROPPED
            dropped += 1
            i += 1
        return self._tx_count(sent, dropped, nbytes)

    def check_frames(self, quiet: bool = False) -> dict:
        held = {b for v in self._outstanding.values() for b in v[1]}
        refs = np.zeros(self.nblocks, np.int64)
        for v in self._outstanding.values():
            for b in v[1]:
                refs[b] += 1
        assert (refs == self._refs).all(), "block reference counts disagree with the outstanding batches"
        user = [b for b in range(self.nblocks) if self._blk_status(b) & TP_STATUS_USER]
        # a block the kernel handed over is either being read, held by a batch, or not yet reached
        stuck = [b for b in user if self._done[b] and self._refs[b] == 0]
        assert not stuck, f"blocks {stuck} were read and released but never given back to the kernel"
        return {"user_blocks": len(user), "held_blocks": len(held)}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.ring = None
        self.buf = None
        if self.mm is not None:
            try:
                self.mm.close()
            except BufferError:
                pass  # a caller still holds a batch view; the map goes when it does
            self.mm = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
