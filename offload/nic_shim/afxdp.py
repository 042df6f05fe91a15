"""AF_XDP port: UMEM as numpy, the four rings as numpy views of their mmaps,
ring updates in Numba with acquire/release ordering, the XDP redirect program
and XSKMAP through bpf(), attached with a BPF link.

Layout. One UMEM (a page-aligned numpy array) of ``nframes`` chunks of
``chunk`` bytes, shared by every queue's socket (``XDP_SHARED_UMEM``), followed
by a *bounce area* that is not registered with the kernel: a frame the kernel
delivers in several chunks (``XDP_USE_SG``, jumbo frames) is copied there so
that every frame of a batch is one contiguous view of the same ``buf``.

Frame accounting. Every chunk is in exactly one state, kept in ``fstate``:

* ``FREE``   on the free stack (ours, unused);
* ``FILL``   given to the kernel on a fill ring; it comes back on that queue's RX
  ring (both kernel-side, so one state);
* ``INUSE``  handed to the caller inside an rx_burst batch, until ``release``;
* ``TX``     on a TX ring, in flight, or on the completion ring, until reaped.

Kernels move chunks between states and keep per-state counts; ``check_frames``
verifies counts, the free stack, and (when the rings are quiet) the kernel's
ring indices against them.

Modes. Zero-copy is tried first when ``zc`` is not 0 and falls back to copy mode
(veth has no zero-copy: EOPNOTSUPP). The program is attached in native (DRV)
mode with ``BPF_F_XDP_HAS_FRAGS`` and falls back to generic (SKB) mode.
``sg`` (default on) binds with ``XDP_USE_SG`` so frames larger than a chunk
arrive as chained descriptors and can be sent as such.

Copy-mode TX needs a ``sendto`` kick per burst; RX needs no system call.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import gc
import mmap
import os
import socket
import struct
import time

import numpy as np
from numba import carray, njit

from .. import status as S
from ..batch import META_DTYPE, PacketBatch, new_meta
from ..csum import copy_words
from . import _linux as L
from ._atomic import i64_at, load_acquire, store_release, u8_at, u32_at, u64_at
from .port import Port, empty_batch, fast_batch

AF_XDP = 44
SOL_XDP = 283
XDP_MMAP_OFFSETS = 1
XDP_RX_RING = 2
XDP_TX_RING = 3
XDP_UMEM_REG = 4
XDP_UMEM_FILL_RING = 5
XDP_UMEM_COMPLETION_RING = 6
XDP_STATISTICS = 7
XDP_OPTIONS = 8
XDP_MAX_TX_SKB_BUDGET = 9

XDP_PGOFF_RX_RING = 0
XDP_PGOFF_TX_RING = 0x80000000
XDP_UMEM_PGOFF_FILL_RING = 0x100000000
XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000

XDP_SHARED_UMEM = 1
XDP_COPY = 2
XDP_ZEROCOPY = 4
XDP_USE_NEED_WAKEUP = 8
XDP_USE_SG = 16
XDP_PKT_CONTD = 1
XDP_PACKET_HEADROOM = 256

# chunk states
FREE = 0
FILL = 1
INUSE = 2
TX = 3
STATE_NAMES = ("free", "fill+rx", "in_use", "tx+completion")

# ctl[] slots (one int64 array carries our side of the accounting into the kernels)
C_FREE_TOP = 0      # entries on the free stack
C_CNT = 1           # C_CNT + state: chunks in that state
C_BOUNCE_POS = 5    # next free byte in the bounce area (relative to its start)
C_BOUNCE_LIVE = 6   # bounced frames not yet released
C_ERR = 7           # accounting violations seen by a kernel (double release, unknown addr)
C_RX_PKTS = 8       # rx_burst counters, kept by the burst kernel (stats() adds them in)
C_RX_BYTES = 9
C_RX_BURSTS = 10
C_LEN = 11

# One int64 table per queue: the addresses (and sizes) of everything the burst kernels
# touch, so that rx_burst/release dispatch one kernel with 2-4 array arguments.
(T_RX_PROD, T_RX_CONS, T_RX_DESC, T_FILL_PROD, T_FILL_CONS, T_FILL_DESC, T_RING, T_BUF, T_BUF_LEN, T_FREE,
 T_NFRAMES, T_FSTATE, T_CTL, T_QFILL, T_CHUNK, T_UMEM_LEN, T_BOUNCE, T_TARGET, T_LEN) = range(19)

SIOCGIFMTU = 0x8921
META_ITEMSIZE = META_DTYPE.itemsize
SIOCETHTOOL = 0x8946
ETHTOOL_GCHANNELS = 0x3C


# -- ring kernels -------------------------------------------------------------

@njit(cache=True, nogil=True)
def _push_free(ctl, free_stack, fstate, c):
    fstate[c] = FREE
    free_stack[ctl[C_FREE_TOP]] = c
    ctl[C_FREE_TOP] += 1
    ctl[C_CNT + FREE] += 1


@njit(cache=True, nogil=True)
def _refill(fill_prod, fill_cons, fill_ring, size, target, free_stack, fstate, ctl, chunk, queue_fill):
    """Move free chunks onto a fill ring until it holds ``target`` (<= size) entries.
    ``queue_fill[0]`` counts the chunks this queue's fill+RX rings hold. Returns the number given."""
    prod = np.int64(fill_prod[0])
    cons = np.int64(load_acquire(fill_cons, 0))
    space = size - ((prod - cons) & 0xFFFFFFFF)
    want = target - queue_fill[0]
    n = min(space, want, ctl[C_FREE_TOP])
    if n <= 0:
        return 0
    mask = size - 1
    for k in range(n):
        ctl[C_FREE_TOP] -= 1
        c = free_stack[ctl[C_FREE_TOP]]
        fstate[c] = FILL
        fill_ring[(prod + k) & mask] = np.uint64(c * chunk)
    ctl[C_CNT + FREE] -= n
    ctl[C_CNT + FILL] += n
    queue_fill[0] += n
    store_release(fill_prod, 0, np.uint32((prod + n) & 0xFFFFFFFF))
    return n


@njit(cache=True, nogil=True)
def _rx(rx_prod, rx_cons, d64, d32, size, maxn, out_off, out_len, out_chunk, umem, nframes, chunk,
        bounce_base, bounce_size, free_stack, fstate, ctl, queue_fill, start):
    """Take up to ``maxn - start`` frames off an RX ring into out_*[start:]. Single-chunk
    frames are handed out in place (chunk -> INUSE); chained ones are copied into the
    bounce area and their chunks freed. Returns the new number of output frames."""
    cons = np.int64(rx_cons[0])
    prod = np.int64(load_acquire(rx_prod, 0))
    avail = (prod - cons) & 0xFFFFFFFF
    mask = size - 1
    n = start
    used = 0
    while used < avail and n < maxn:
        # how many descriptors make up the next packet
        k = 0
        complete = False
        while used + k < avail:
            j = (cons + used + k) & mask
            k += 1
            if (d32[4 * j + 3] & XDP_PKT_CONTD) == 0:
                complete = True
                break
        if not complete:
            break  # the rest of this packet is not published yet
        j = (cons + used) & mask
        if k == 1:
            addr = np.int64(d64[2 * j])
            ln = np.int64(d32[4 * j + 2])
            c = addr // chunk
            if c < 0 or c >= nframes or fstate[c] != FILL or ln > chunk - (addr - c * chunk):
                ctl[C_ERR] += 1
                used += 1
                continue
            fstate[c] = INUSE
            ctl[C_CNT + FILL] -= 1
            ctl[C_CNT + INUSE] += 1
            queue_fill[0] -= 1
            out_off[n] = addr
            out_len[n] = ln
            out_chunk[n] = c
            n += 1
            used += 1
            continue
        total = 0
        for q in range(k):
            jj = (cons + used + q) & mask
            total += np.int64(d32[4 * jj + 2])
        pos = (ctl[C_BOUNCE_POS] + 63) & ~np.int64(63)
        if total > bounce_size:
            # can never fit (a lying descriptor): drop the packet, keep its chunks
            for q in range(k):
                jj = (cons + used + q) & mask
                c = np.int64(d64[2 * jj]) // chunk
                if c >= 0 and c < nframes and fstate[c] == FILL:
                    ctl[C_CNT + FILL] -= 1
                    queue_fill[0] -= 1
                    _push_free(ctl, free_stack, fstate, c)
            ctl[C_ERR] += 1
            used += k
            continue
        if pos + total > bounce_size:
            break  # bounce area full: leave the packet on the ring until batches are released
        dst = bounce_base + pos
        for q in range(k):
            jj = (cons + used + q) & mask
            addr = np.int64(d64[2 * jj])
            ln = np.int64(d32[4 * jj + 2])
            c = addr // chunk
            if c < 0 or c >= nframes or fstate[c] != FILL or ln > chunk - (addr - c * chunk):
                ctl[C_ERR] += 1
                continue
            sv = umem[addr:addr + ln]
            dv = umem[dst:dst + ln]
            for b in range(ln):
                dv[b] = sv[b]
            dst += ln
            ctl[C_CNT + FILL] -= 1
            queue_fill[0] -= 1
            _push_free(ctl, free_stack, fstate, c)
        out_off[n] = bounce_base + pos
        out_len[n] = dst - (bounce_base + pos)
        out_chunk[n] = -1
        ctl[C_BOUNCE_POS] = dst - bounce_base
        ctl[C_BOUNCE_LIVE] += 1
        n += 1
        used += k
    if used:
        store_release(rx_cons, 0, np.uint32((cons + used) & 0xFFFFFFFF))
    return n


@njit(cache=True, nogil=True)
def _release(chunks, free_stack, fstate, ctl):
    """Give back the chunks of a released batch (-1 = a bounced frame). Returns violations."""
    bad = 0
    for i in range(chunks.shape[0]):
        c = chunks[i]
        if c < 0:
            ctl[C_BOUNCE_LIVE] -= 1
            continue
        if c >= fstate.shape[0] or fstate[c] != INUSE:
            bad += 1
            continue
        ctl[C_CNT + INUSE] -= 1
        _push_free(ctl, free_stack, fstate, c)
    if ctl[C_BOUNCE_LIVE] == 0:
        ctl[C_BOUNCE_POS] = 0
    ctl[C_ERR] += bad
    return bad


@njit(cache=True, nogil=True)
def _reap(comp_prod, comp_cons, comp_ring, size, nframes, chunk, free_stack, fstate, ctl):
    """Free every chunk the kernel has completed. Returns the number reaped."""
    cons = np.int64(comp_cons[0])
    prod = np.int64(load_acquire(comp_prod, 0))
    n = (prod - cons) & 0xFFFFFFFF
    mask = size - 1
    for k in range(n):
        c = np.int64(comp_ring[(cons + k) & mask]) // chunk
        if c < 0 or c >= nframes or fstate[c] != TX:
            ctl[C_ERR] += 1
            continue
        ctl[C_CNT + TX] -= 1
        _push_free(ctl, free_stack, fstate, c)
    if n:
        store_release(comp_cons, 0, np.uint32((cons + n) & 0xFFFFFFFF))
    return n


@njit(cache=True, nogil=True)
def _tx(src, off, ln, dropped_idx, tx_prod, tx_cons, d64, d32, size, umem, chunk, max_descs, free_stack, fstate,
        ctl):
    """Copy frames into free chunks and publish them on the TX ring (chained with
    XDP_PKT_CONTD when larger than a chunk). Frames that can never be sent are taken
    and their indices written to ``dropped_idx``. Returns (frames taken, frames dropped, bytes)."""
    prod = np.int64(tx_prod[0])
    cons = np.int64(load_acquire(tx_cons, 0))
    space = size - ((prod - cons) & 0xFFFFFFFF)
    mask = size - 1
    taken = 0
    dropped = 0
    nbytes = 0
    used = 0
    nsrc = src.shape[0]
    for i in range(off.shape[0]):
        n = ln[i]
        s = off[i]
        nd = (n + chunk - 1) // chunk
        if n <= 0 or nd > max_descs or s < 0 or s + n > nsrc:
            if dropped < dropped_idx.shape[0]:
                dropped_idx[dropped] = i
            dropped += 1
            taken += 1
            continue
        if nd > space - used or nd > ctl[C_FREE_TOP]:
            break
        for q in range(nd):
            piece = min(chunk, n - q * chunk)
            ctl[C_FREE_TOP] -= 1
            c = free_stack[ctl[C_FREE_TOP]]
            fstate[c] = TX
            a = c * chunk
            sv = src[s + q * chunk:s + q * chunk + piece]
            dv = umem[a:a + piece]
            for b in range(piece):
                dv[b] = sv[b]
            j = (prod + used) & mask
            d64[2 * j] = np.uint64(a)
            d32[4 * j + 2] = np.uint32(piece)
            d32[4 * j + 3] = np.uint32(XDP_PKT_CONTD if q < nd - 1 else 0)
            used += 1
        ctl[C_CNT + FREE] -= nd
        ctl[C_CNT + TX] += nd
        taken += 1
        nbytes += n
    if used:
        store_release(tx_prod, 0, np.uint32((prod + used) & 0xFFFFFFFF))
    return taken, dropped, nbytes


@njit(cache=True, nogil=True)
def _reap_tx(comp_prod, comp_cons, comp_ring, nframes, src, off, ln, dropped_idx, tx_prod, tx_cons, d64, d32, size,
             umem, chunk, max_descs, free_stack, fstate, ctl):
    """:func:`_reap` of the completion ring, then :func:`_tx`: one dispatch per burst."""
    _reap(comp_prod, comp_cons, comp_ring, size, nframes, chunk, free_stack, fstate, ctl)
    return _tx(src, off, ln, dropped_idx, tx_prod, tx_cons, d64, d32, size, umem, chunk, max_descs, free_stack,
               fstate, ctl)


@njit(cache=True, nogil=True, inline="always")
def _tab_views(tab):
    """The arrays behind a queue's address table (see :meth:`AfXdpPort._make_tab`)."""
    size = tab[T_RING]
    nf = tab[T_NFRAMES]
    return (carray(u32_at(tab[T_RX_PROD]), 1), carray(u32_at(tab[T_RX_CONS]), 1),
            carray(u64_at(tab[T_RX_DESC]), 2 * size), carray(u32_at(tab[T_RX_DESC]), 4 * size),
            carray(u32_at(tab[T_FILL_PROD]), 1), carray(u32_at(tab[T_FILL_CONS]), 1),
            carray(u64_at(tab[T_FILL_DESC]), size), carray(u8_at(tab[T_BUF]), tab[T_BUF_LEN]),
            carray(i64_at(tab[T_FREE]), nf), carray(u8_at(tab[T_FSTATE]), nf),
            carray(i64_at(tab[T_CTL]), C_LEN), carray(i64_at(tab[T_QFILL]), 1))


@njit(cache=True, nogil=True)
def _rx_burst(tab, outs, meta_u8, tpl_u8, maxn, start):
    """One queue's share of an rx_burst: :func:`_rx` into ``outs`` rows (off, len, chunk)
    from ``start``, fresh meta records (template bytes) for the frames taken, then
    :func:`_refill` of the queue's fill ring; counts packets, bytes and bursts (a burst
    is counted by the first queue that contributes to it) in ``ctl``. Returns the number
    of frames now in ``outs``."""
    rxp, rxc, d64, d32, fp, fc, fr, umem, free_stack, fstate, ctl, qf = _tab_views(tab)
    size = tab[T_RING]
    chunk = tab[T_CHUNK]
    n = _rx(rxp, rxc, d64, d32, size, maxn, outs[0], outs[1], outs[2], umem, tab[T_NFRAMES], chunk,
            tab[T_UMEM_LEN], tab[T_BOUNCE], free_stack, fstate, ctl, qf, start)
    _refill(fp, fc, fr, size, tab[T_TARGET], free_stack, fstate, ctl, chunk, qf)
    # a byte loop from a non-zero start would not vectorise (negative-index checks): ~4 us
    copy_words(tpl_u8, start * META_ITEMSIZE, meta_u8, start * META_ITEMSIZE, (n - start) * META_ITEMSIZE)
    ln = outs[1]
    nbytes = np.int64(0)
    for i in range(n - start):
        nbytes += ln[start + i]
    ctl[C_RX_PKTS] += n - start
    ctl[C_RX_BYTES] += nbytes
    if start == 0 and n > 0:
        ctl[C_RX_BURSTS] += 1
    return n


@njit(cache=True, nogil=True)
def _release_burst(tab, chunks):
    """:func:`_release` of a batch's chunks, then :func:`_refill` of the table's queue."""
    rxp, rxc, d64, d32, fp, fc, fr, umem, free_stack, fstate, ctl, qf = _tab_views(tab)
    bad = _release(chunks, free_stack, fstate, ctl)
    _refill(fp, fc, fr, tab[T_RING], tab[T_TARGET], free_stack, fstate, ctl, tab[T_CHUNK], qf)
    return bad


# -- Python side ---------------------------------------------------------------

class _Ring:
    """One mmapped ring: ``prod``/``cons``/``flags`` as uint32[1] views, descriptors as
    ``d64`` (uint64) and, for RX/TX, ``d32`` (uint32) views of the same bytes."""

    def __init__(self, fd, pgoff, offs, size, desc_size):
        producer, consumer, desc, flags = offs
        self.size = size
        self.mm = mmap.mmap(fd, desc + size * desc_size, mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0x8000),
                            mmap.PROT_READ | mmap.PROT_WRITE, offset=pgoff)
        self.prod = np.frombuffer(self.mm, np.uint32, 1, producer)
        self.cons = np.frombuffer(self.mm, np.uint32, 1, consumer)
        self.flags = np.frombuffer(self.mm, np.uint32, 1, flags)
        self.d64 = np.frombuffer(self.mm, np.uint64, size * desc_size // 8, desc)
        self.d32 = np.frombuffer(self.mm, np.uint32, size * desc_size // 4, desc)
        # the same producer/consumer words as Python ints (polling an empty ring)
        self.hdr = memoryview(self.mm)[:desc].cast("I")
        self.pi = producer // 4
        self.ci = consumer // 4

    def close(self):
        # numpy views export the buffer: drop them before closing the map
        self.prod = self.cons = self.flags = self.d64 = self.d32 = None
        if getattr(self, "hdr", None) is not None:
            self.hdr.release()
            self.hdr = None
        if self.mm is not None:
            mm, self.mm = self.mm, None
            try:
                mm.close()
            except BufferError:
                # A view is still alive elsewhere (a caller's variable, a traceback, a
                # reference cycle, Numba's argument typing during a first compile): collect
                # cycles and retry; failing that, the map is unmapped when the last view dies.
                gc.collect()
                try:
                    mm.close()
                except BufferError:
                    pass


class _Queue:
    def __init__(self, qid):
        self.qid = qid
        self.sock = None
        self.fill = self.comp = self.rx = self.tx = None
        self.fill_count = np.zeros(1, np.int64)   # chunks in this queue's fill + RX rings
        self.rx_args = self.fill_args = None
        self.tab = None
        self.zerocopy = False

    def close(self):
        # ring views must go before the maps close; the address table with them, so a
        # burst kernel can no longer be called on unmapped rings
        self.rx_args = self.fill_args = self.tab = None
        for r in (self.fill, self.comp, self.rx, self.tx):
            if r is not None:
                r.close()
        self.fill = self.comp = self.rx = self.tx = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _pow2(n):
    return 1 << max(0, int(n) - 1).bit_length()


def _ifreq_int(sock, name, req):
    buf = bytearray(struct.pack("16sI", name.encode(), 0) + bytes(20))
    fcntl.ioctl(sock.fileno(), req, buf)
    return struct.unpack_from("I", buf, 16)[0]


def device_queues(name: str) -> int:
    """Number of RX queues of ``name`` (ETHTOOL_GCHANNELS; 1 when the driver does not say)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ch = ctypes.create_string_buffer(struct.pack("9I", ETHTOOL_GCHANNELS, *([0] * 8)), 36)
        ifr = bytearray(struct.pack("16sQ", name.encode(), ctypes.addressof(ch)) + bytes(16))
        try:
            fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
        except OSError:
            return 1
        v = struct.unpack("9I", ch.raw)
        return max(1, v[5], v[8])
    finally:
        s.close()


def device_mtu(name: str) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        return _ifreq_int(s, name, SIOCGIFMTU)
    finally:
        s.close()


class AfXdpPort(Port):
    """AF_XDP on ``ifname`` (queue ``queue``, or every queue when ``None``).

    Parameters (all optional; spec options ``,key=value`` map onto them):
    ``nframes`` UMEM chunks per queue (default 4096), ``chunk`` bytes per chunk
    (2048, or 4096 when the MTU needs more), ``ring`` descriptors per ring
    (power of two, default nframes/4), ``mode`` ``drv``/``skb``/``auto`` for the
    XDP attach, ``zc`` 1 to try zero-copy first (default), 0 for copy mode only,
    ``sg`` 1 for XDP_USE_SG (default; dropped on kernels without it when the MTU fits a
    chunk), ``bounce`` bytes of bounce area for chained RX frames (default
    max(1 MiB, max_burst x 9216) with SG, none without), ``max_burst`` frames per rx_burst.
    """

    kind = "afxdp"
    accepts_gso = False
    delivers_gso = False

    def __init__(self, ifname: str, queue: int | None = None, netns: str | None = None, nframes: int = 4096,
                 chunk: int | None = None, ring: int | None = None, mode: str = "auto", zc: bool = True,
                 sg: bool = True, bounce: int | None = None, max_burst: int = 256):
        super().__init__(ifname if queue is None else f"{ifname}:{queue}")
        self.ifname = ifname
        self.netns = netns
        self.queues: list[_Queue] = []
        self.link_fd = self.prog_fd = self.map_fd = -1
        self.xdp_mode = None
        self.max_burst = int(max_burst)
        self._outstanding: dict[int, np.ndarray] = {}
        self._rr = 0
        try:
            with L.in_netns(netns):
                self._open(queue, nframes, chunk, ring, mode, zc, sg, bounce)
        except BaseException:
            self.close()
            raise

    # -- set-up ------------------------------------------------------------
    def _open(self, queue, nframes, chunk, ring, mode, zc, sg, bounce):
        self.ifindex = L.ifindex(self.ifname)
        self.mtu = device_mtu(self.ifname)
        nq_dev = device_queues(self.ifname)
        qids = list(range(nq_dev)) if queue is None else [int(queue)]
        if chunk is None:
            chunk = 2048 if self.mtu + 14 + 4 <= 2048 - XDP_PACKET_HEADROOM else 4096
        if chunk not in (2048, 4096):
            raise ValueError("chunk must be 2048 or 4096 bytes")
        self.chunk = chunk
        self.sg = bool(sg)
        if not self.sg and self.mtu + 18 > chunk - XDP_PACKET_HEADROOM:
            raise ValueError(f"{self.ifname}: MTU {self.mtu} needs XDP_USE_SG with {chunk}-byte chunks")
        self.nframes = int(nframes) * len(qids)
        ring = _pow2(ring or max(64, int(nframes) // 4))
        self.ring_size = ring
        # 18 descriptors per packet: one linear part + CONFIG_MAX_SKB_FRAGS (17); more drop the packet
        self.max_descs = 18 if self.sg else 1
        if bounce is None:
            bounce = max(1 << 20, self.max_burst * 9216) if self.sg else 0
        self.bounce_size = int(bounce)
        umem_len = self.nframes * chunk
        raw = np.zeros(umem_len + self.bounce_size + 4096, np.uint8)
        a = (-raw.ctypes.data) % 4096
        self.buf = raw[a:a + umem_len + self.bounce_size]   # UMEM chunks, then the bounce area
        self.umem_len = umem_len
        self.fstate = np.full(self.nframes, FREE, np.uint8)
        self.free_stack = np.arange(self.nframes, dtype=np.int64)[::-1].copy()
        self.ctl = np.zeros(C_LEN, np.int64)
        self.ctl[C_FREE_TOP] = self.nframes
        self.ctl[C_CNT + FREE] = self.nframes
        self.fill_target = min(ring, self.nframes // (2 * len(qids)))
        # per-burst output arrays come from a pool of slots (a batch owns its slot until
        # released) so a burst allocates nothing
        self._nslots = 64
        mb = self.max_burst
        self._slot_idx = np.zeros((self._nslots, 3, mb), np.int64)    # per slot: off, len, chunk rows
        self._slot_meta = new_meta(self._nslots * mb).reshape(self._nslots, mb)
        self._meta_tpl = new_meta(mb)
        # records are reset as bytes (in the burst kernel): a structured-array assignment goes
        # field by field (~8x slower)
        self._slot_meta_u8 = self._slot_meta.view(np.uint8).reshape(self._nslots, -1)
        self._meta_tpl_u8 = self._meta_tpl.view(np.uint8)
        self._slots_free = list(range(self._nslots - 1, -1, -1))
        self._slot_views = [self._slot_view(self._slot_idx[k], self._slot_meta[k], self._slot_meta_u8[k])
                            for k in range(self._nslots)]
        self._spare = None
        self._empty = empty_batch()
        self._dropped_idx = np.zeros(self.max_burst, np.int64)

        self.map_fd = L.xskmap_create(max(nq_dev, max(qids) + 1))
        first = None
        for qid in qids:
            q = _Queue(qid)
            self.queues.append(q)
            self._open_queue(q, first, zc)
            if first is None:
                first = q
            L.map_update_u32(self.map_fd, qid, q.sock.fileno())
        self.prog_fd = L.xdp_redirect_prog(self.map_fd, frags=True)
        modes = {"drv": [L.XDP_FLAGS_DRV_MODE], "skb": [L.XDP_FLAGS_SKB_MODE],
                 "auto": [L.XDP_FLAGS_DRV_MODE, L.XDP_FLAGS_SKB_MODE]}[mode]
        err = None
        for m in modes:
            try:
                self.link_fd = L.link_create_xdp(self.prog_fd, self.ifindex, m)
                self.xdp_mode = "drv" if m == L.XDP_FLAGS_DRV_MODE else "skb"
                break
            except OSError as e:
                err = e
        if self.link_fd < 0:
            raise OSError(err.errno, f"{self.ifname}: attaching the XDP program failed ({err.strerror}); "
                                     f"is another XDP program attached?")
        for q in self.queues:
            self._refill(q)
        self.zerocopy = all(q.zerocopy for q in self.queues)
        self.warm_up()   # compile the ring kernels now, not inside the first burst

    def _open_queue(self, q: _Queue, first: _Queue | None, zc: bool):
        s = socket.socket(AF_XDP, socket.SOCK_RAW, 0)
        q.sock = s
        fd = s.fileno()
        if first is None:
            reg = struct.pack("<QQIIII", self.buf.ctypes.data, self.umem_len, self.chunk, 0, 0, 0)
            try:
                s.setsockopt(SOL_XDP, XDP_UMEM_REG, reg)
            except OSError as e:
                raise OSError(e.errno, f"XDP_UMEM_REG of {self.umem_len} bytes failed: {e.strerror} "
                                       f"(ENOBUFS: RLIMIT_MEMLOCK without CAP_IPC_LOCK)") from None
        r = self.ring_size
        for opt in (XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING, XDP_TX_RING):
            s.setsockopt(SOL_XDP, opt, r)
        try:
            s.setsockopt(SOL_XDP, XDP_MAX_TX_SKB_BUDGET, r)  # fewer EAGAIN kicks (6.x)
        except OSError:
            pass
        offs = struct.unpack("<16Q", s.getsockopt(SOL_XDP, XDP_MMAP_OFFSETS, 128))
        rx_o, tx_o, fr_o, cr_o = offs[0:4], offs[4:8], offs[8:12], offs[12:16]
        q.rx = _Ring(fd, XDP_PGOFF_RX_RING, rx_o, r, 16)
        q.tx = _Ring(fd, XDP_PGOFF_TX_RING, tx_o, r, 16)
        q.fill = _Ring(fd, XDP_UMEM_PGOFF_FILL_RING, fr_o, r, 8)
        q.comp = _Ring(fd, XDP_UMEM_PGOFF_COMPLETION_RING, cr_o, r, 8)
        q.rx_args = (q.rx.prod, q.rx.cons, q.rx.d64, q.rx.d32, q.rx.size)
        q.fill_args = (q.fill.prod, q.fill.cons, q.fill.d64)
        q.tab = self._make_tab(q)
        if first is not None:
            # a socket sharing the UMEM inherits copy/zero-copy/SG from the first one;
            # any of those flags next to XDP_SHARED_UMEM is EINVAL
            self._bind(fd, XDP_SHARED_UMEM, q.qid, first.sock.fileno())
            q.zerocopy = first.zerocopy
            return
        tries = [(m, sg) for sg in ([True, False] if self.sg else [False])
                 for m in ([XDP_ZEROCOPY] if zc else []) + [XDP_COPY]]
        last = None
        for m, sg in tries:
            if not sg and self.mtu + 18 > self.chunk - XDP_PACKET_HEADROOM:
                break           # without SG, jumbo frames would be dropped: keep the SG error
            try:
                self._bind(fd, (XDP_USE_SG if sg else 0) | m, q.qid, 0)
                q.zerocopy = m == XDP_ZEROCOPY
                if not sg:      # a kernel without XDP_USE_SG (before 6.6)
                    self.sg = False
                    self.max_descs = 1
                return
            except OSError as e:
                last = e
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.EPROTONOSUPPORT):
                    break
        raise OSError(last.errno, f"bind AF_XDP to {self.ifname} queue {q.qid}: {last.strerror}")

    def _bind(self, fd, flags, qid, shared_fd):
        addr = struct.pack("<HHIII", AF_XDP, flags, self.ifindex, qid, shared_fd)
        # rebinding a queue just released by another socket gives EBUSY until the
        # kernel's asynchronous teardown has run: retry for up to 2 s
        deadline = time.monotonic() + 2.0
        while True:
            rc = L.libc.bind(fd, addr, len(addr))
            if rc == 0:
                return
            e = ctypes.get_errno()
            if e == errno.EBUSY and time.monotonic() < deadline:
                time.sleep(0.005)
                continue
            raise OSError(e, os.strerror(e))

    def _make_tab(self, q: _Queue) -> np.ndarray:
        """The address table of queue ``q`` for :func:`_rx_burst` / :func:`_release_burst`.
        Valid while the port is open: every array it points into is held by the port or
        the queue, and :meth:`_Queue.close` drops the table before unmapping the rings."""
        t = np.zeros(T_LEN, np.int64)
        t[T_RX_PROD] = q.rx.prod.ctypes.data
        t[T_RX_CONS] = q.rx.cons.ctypes.data
        t[T_RX_DESC] = q.rx.d64.ctypes.data
        t[T_FILL_PROD] = q.fill.prod.ctypes.data
        t[T_FILL_CONS] = q.fill.cons.ctypes.data
        t[T_FILL_DESC] = q.fill.d64.ctypes.data
        t[T_RING] = q.rx.size
        t[T_BUF] = self.buf.ctypes.data
        t[T_BUF_LEN] = self.buf.size
        t[T_FREE] = self.free_stack.ctypes.data
        t[T_NFRAMES] = self.nframes
        t[T_FSTATE] = self.fstate.ctypes.data
        t[T_CTL] = self.ctl.ctypes.data
        t[T_QFILL] = q.fill_count.ctypes.data
        t[T_CHUNK] = self.chunk
        t[T_UMEM_LEN] = self.umem_len
        t[T_BOUNCE] = self.bounce_size
        t[T_TARGET] = self.fill_target
        assert q.fill.size == q.rx.size and self.free_stack.dtype == np.int64 and self.fstate.dtype == np.uint8
        return t

    @staticmethod
    def _slot_view(idx, meta_rec, meta_u8):
        return idx, idx[0], idx[1], idx[2], meta_rec, meta_u8

    def _refill(self, q: _Queue) -> int:
        f = q.fill
        return _refill(f.prod, f.cons, f.d64, f.size, self.fill_target, self.free_stack, self.fstate, self.ctl,
                       self.chunk, q.fill_count)

    # -- the interface ---------------------------------------------------------
    def fileno(self) -> int:
        return self.queues[0].sock.fileno()

    def rx_burst(self, max_frames: int = 64) -> PacketBatch:
        """Up to ``max_frames`` received frames as views into the UMEM; give them back with
        :meth:`release`. No system call (copy mode delivers without a wake-up)."""
        # Python per burst is most of the cost here (the kernel takes ~1.5 us for 64 frames):
        # no helper calls, ring indices read through a memoryview (a numpy scalar read is slower)
        maxn = self.max_burst if max_frames >= self.max_burst else int(max_frames)
        qs = self.queues
        if len(qs) == 1:
            r = qs[0].rx
            if r.hdr[r.pi] == r.hdr[r.ci] and maxn:   # nothing arrived: no kernel call at all
                return self._empty
        if self._slots_free:
            slot = self._slots_free.pop()
            idx, o_off, o_len, o_chunk, meta_rec, meta_u8 = self._slot_views[slot]
        else:       # more than _nslots batches held: allocate
            slot = -1
            m = np.empty(self.max_burst, META_DTYPE)
            idx, o_off, o_len, o_chunk, meta_rec, meta_u8 = self._slot_view(
                np.zeros((3, self.max_burst), np.int64), m, m.view(np.uint8))
        n = 0
        nq = len(qs)
        for k in range(nq):
            q = qs[(self._rr + k) % nq]
            n = _rx_burst(q.tab, idx, meta_u8, self._meta_tpl_u8, maxn, n)
            if n >= maxn:
                break
        self._rr += 1
        if n == 0:
            if slot >= 0:
                self._slots_free.append(slot)
            return self._empty
        off = o_off[:n]
        b = fast_batch(self.buf, off, o_len[:n], meta_rec[:n])
        # what Port._hand_out does, inline; the kernel has counted the burst in ctl
        self._outstanding[id(off)] = (off, slot, o_chunk[:n])
        return b

    def release(self, batch: PacketBatch) -> None:
        """Give the frames of an rx_burst batch back to the kernel (fill ring)."""
        off = batch.off
        if off.shape[0] == 0:
            return
        self._give_back(self._take_back(batch))

    def _give_back(self, ent):
        _, slot, chunks = ent
        bad = _release_burst(self.queues[0].tab, chunks)
        for q in self.queues[1:]:
            self._refill(q)
        if slot >= 0:
            self._slots_free.append(slot)
        if bad:
            raise AssertionError(f"release: {bad} frames were not in use (accounting broken)")

    def release_all(self) -> None:
        for key in list(self._outstanding):
            self._give_back(self._outstanding.pop(key))

    def reap(self) -> int:
        """Free the chunks of completed transmissions. Returns how many."""
        n = 0
        for q in self.queues:
            c = q.comp
            n += _reap(c.prod, c.cons, c.d64, c.size, self.nframes, self.chunk, self.free_stack, self.fstate,
                       self.ctl)
        return n

    def tx_burst(self, batch: PacketBatch, queue: int = 0) -> int:
        """Copy the frames into UMEM chunks, publish them on queue ``queue``'s TX ring and
        kick the kernel. Returns the number of frames taken (sent or dropped as unsendable)."""
        q = self.queues[queue]
        n = len(batch)
        if n == 0:
            self.reap()
            return 0
        if n > self._dropped_idx.shape[0]:
            self._dropped_idx = np.zeros(n, np.int64)
        t = q.tx
        c = q.comp
        taken, dropped, nbytes = _reap_tx(c.prod, c.cons, c.d64, self.nframes, batch.buf, batch.off, batch.len,
                                          self._dropped_idx, t.prod, t.cons, t.d64, t.d32, t.size, self.buf,
                                          self.chunk, self.max_descs, self.free_stack, self.fstate, self.ctl)
        st = self._stats
        st["tx_packets"] += taken - dropped
        st["tx_bytes"] += nbytes
        if dropped:
            st["tx_dropped"] += dropped
            batch.meta["status"][self._dropped_idx[:dropped]] = S.SHIM_DROPPED
        if taken < n:
            st["tx_full"] += 1
        if taken - dropped:
            self.kick(q)
        return int(taken)

    def warm_up(self) -> None:
        q = self.queues[0]
        t = q.tx
        z = np.zeros(0, np.int64)
        c = q.comp
        _reap_tx(c.prod, c.cons, c.d64, self.nframes, self.buf, z, z, self._dropped_idx, t.prod, t.cons, t.d64,
                 t.d32, t.size, self.buf, self.chunk, self.max_descs, self.free_stack, self.fstate, self.ctl)
        _release_burst(q.tab, z)
        self.reap()
        self.rx_burst(0)

    def kick(self, q: _Queue | None = None) -> None:
        """sendto() until the kernel has consumed the TX ring (copy mode transmits only
        inside this call; EAGAIN = more to do, EBUSY = the device dropped one frame)."""
        q = q or self.queues[0]
        fd = q.sock.fileno()
        t = q.tx
        for _ in range(64):
            rc = L.libc.sendto(fd, None, 0, L.MSG_DONTWAIT, None, 0)
            if rc >= 0 and t.cons[0] == t.prod[0]:
                return
            if rc < 0:
                e = ctypes.get_errno()
                if e == errno.EBUSY:
                    self._stats["tx_device_drops"] = self._stats.get("tx_device_drops", 0) + 1
                elif e not in (errno.EAGAIN, errno.ENOBUFS):
                    # ENETDOWN and the like: the frames wait on the ring until the link is back
                    self._stats["tx_kick_errors"] = self._stats.get("tx_kick_errors", 0) + 1
                    return
            elif t.cons[0] == t.prod[0]:
                return

    def flush(self, timeout: float = 1.0) -> bool:
        """Kick and reap until every transmitted chunk has completed (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            for q in self.queues:
                if q.tx.cons[0] != q.tx.prod[0]:
                    self.kick(q)
            self.reap()
            if self.ctl[C_CNT + TX] == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)

    def xdp_statistics(self) -> dict:
        out = {}
        keys = ("rx_dropped", "rx_invalid_descs", "tx_invalid_descs", "rx_ring_full", "rx_fill_ring_empty_descs",
                "tx_ring_empty_descs")
        for q in self.queues:
            raw = q.sock.getsockopt(SOL_XDP, XDP_STATISTICS, 48)
            vals = struct.unpack("<%dQ" % (len(raw) // 8), raw)
            for k, v in zip(keys, vals):
                out[k] = out.get(k, 0) + v
        return out

    def stats(self) -> dict:
        d = super().stats()
        c = self.ctl
        d["rx_packets"] += int(c[C_RX_PKTS])
        d["rx_bytes"] += int(c[C_RX_BYTES])
        d["rx_bursts"] += int(c[C_RX_BURSTS])
        if not self.closed:
            d.update({f"xsk_{k}": v for k, v in self.xdp_statistics().items()})
            d.update(frames={STATE_NAMES[s]: int(self.ctl[C_CNT + s]) for s in range(4)},
                     xdp_mode=self.xdp_mode, zerocopy=self.zerocopy)
        return d

    def check_frames(self, quiet: bool = False) -> dict:
        """Verify that every UMEM chunk is in exactly one state and that the counts
        agree with the free stack, the outstanding batches and the rings.

        With ``quiet`` (no traffic arriving, TX flushed) the kernel's ring indices
        are checked too: fill entries + RX entries pending == chunks in FILL, and
        TX ring + completion ring entries == chunks in TX."""
        fs = self.fstate
        counts = np.bincount(fs, minlength=4)
        assert counts.sum() == self.nframes and counts.shape[0] == 4, "a chunk has an unknown state"
        for s in range(4):
            assert counts[s] == self.ctl[C_CNT + s], \
                f"{STATE_NAMES[s]}: {counts[s]} chunks in that state, counter says {self.ctl[C_CNT + s]}"
        top = int(self.ctl[C_FREE_TOP])
        stack = self.free_stack[:top]
        assert top == counts[FREE], f"free stack holds {top}, {counts[FREE]} chunks are free"
        assert np.unique(stack).shape[0] == top, "a chunk is on the free stack twice"
        assert (fs[stack] == FREE).all(), "a chunk on the free stack is not free"
        held = sum(int((e[2] >= 0).sum()) for e in self._outstanding.values())
        assert held == counts[INUSE], f"{held} chunks in outstanding batches, {counts[INUSE]} in use"
        assert sum(int(q.fill_count[0]) for q in self.queues) == counts[FILL]
        assert self.ctl[C_ERR] == 0, f"{self.ctl[C_ERR]} accounting violations seen by the ring kernels"
        if quiet:
            infl = 0
            intx = 0
            for q in self.queues:
                infl += (int(q.fill.prod[0]) - int(q.fill.cons[0])) % 2**32
                infl += (int(q.rx.prod[0]) - int(q.rx.cons[0])) % 2**32
                intx += (int(q.tx.prod[0]) - int(q.tx.cons[0])) % 2**32
                intx += (int(q.comp.prod[0]) - int(q.comp.cons[0])) % 2**32
            assert infl == counts[FILL], f"fill+RX rings hold {infl} entries, {counts[FILL]} chunks are FILL"
            assert intx == counts[TX], f"TX+completion rings hold {intx} entries, {counts[TX]} chunks are TX"
        return {STATE_NAMES[s]: int(counts[s]) for s in range(4)}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # detach the program first so no frame is redirected to a closing socket
        for attr in ("link_fd", "prog_fd", "map_fd"):
            fd = getattr(self, attr, -1)
            if fd is not None and fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)
        for q in self.queues:
            q.close()
        self._outstanding.clear()
