"""Read and write pcap and pcapng capture files.

Reading memory-maps the file and returns :class:`~offload.batch.PacketBatch`
objects whose ``buf`` *is* the mapped file: frame ``i`` is
``buf[off[i]:off[i]+len[i]]``, a view of the file's bytes, never a copy. The
record walk (finding every record, checking every length against the file and
the limits, converting timestamps) is one Numba kernel per batch, so Python
runs once per batch of frames, not once per frame.

Per frame the reader sets

* ``meta['link']``: the LINKTYPE_* of the frame's interface (pcap: the file
  header's; pcapng: its Interface Description Block's), low 16 bits;
* ``ts``: int64 nanoseconds since the Unix epoch (pcapng ``if_tsresol`` and
  ``if_tsoffset`` applied; Simple Packet Blocks carry no time and get 0);
* ``wire_len``: the original length on the wire in bytes (pcap ``orig_len``);
* ``iface``: the interface index. pcapng interface ids restart at 0 in every
  section; the reader numbers interfaces globally in file order (section 1's
  interfaces, then section 2's, ...), so in a one-section file it is the
  pcapng interface id. Classic pcap: 0.

Formats read: classic pcap in either byte order with microsecond
(``a1b2c3d4``) or nanosecond (``a1b23c4d``) timestamps, and Alexey
Kuznetsov's modified pcap (``a1b2cd34``, 24-byte record headers); pcapng
(sections of either byte order, several sections per file, several interfaces
with different link types and ``if_tsresol``), blocks SHB, IDB, EPB, SPB and
the obsolete OPB; other blocks (NRB, ISB, DSB, custom, ...) are skipped.

Limits (enforced, configurable per reader):

* ``max_frame`` (default 256 KiB): largest captured length accepted for one
  frame. A record claiming more is treated as corruption (a 4 GB claim in a
  damaged header must not become a 4 GB allocation or a wild read). Raise it
  for captures of BIG TCP super-frames larger than 256 KiB.
* ``max_block`` (default 16 MiB): largest pcapng block accepted.
* ``strict_snaplen`` (default off): a captured length above the file's or
  interface's snaplen is an error. Off by default because libpcap and
  Wireshark accept such records.

Errors: a damaged file raises :class:`PcapError` *after* every complete frame
before the damage has been delivered (:func:`iter_batches` yields them first;
:func:`read` attaches them to the exception as ``.batch``). The error names
the byte offset of the damaged record or block and what is wrong with it.

Writing: :class:`PcapWriter` (incremental) and :func:`write` produce classic
pcap (µs or ns, either byte order) or pcapng (one section, one Interface
Description Block per interface, Enhanced Packet Blocks, ``if_tsresol`` 9
for ns). Files this module writes round-trip byte for byte:
``write(read(f), **reader.writer_options()) == f``.
"""

from __future__ import annotations

import builtins
import io
import mmap
import os
import struct
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from numba import njit

from .batch import LINK_ETHERNET, META_DTYPE, PacketBatch
from .parse import parse_one

DEFAULT_MAX_FRAME = 256 * 1024
DEFAULT_MAX_BLOCK = 16 * 1024 * 1024
DEFAULT_SNAPLEN = 262144
MAX_INTERFACES = 65536
_IF_START = 16

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_KUZNETSOV = 0xA1B2CD34
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
BT_IDB = 1
BT_OPB = 2
BT_SPB = 3
BT_EPB = 6

# Error codes returned by the walking kernels (0 = no error).
E_TRUNC_HEADER = 1      # record/block header cut by the end of the file
E_TRUNC_DATA = 2        # record/block body cut by the end of the file
E_FRAME_TOO_BIG = 3     # captured length above max_frame
E_CAPLEN_SNAPLEN = 4    # captured length above snaplen (strict_snaplen)
E_BLOCK_SMALL = 5       # block length below the minimum for its type (would loop)
E_BLOCK_ALIGN = 6       # block length not a multiple of 4
E_BLOCK_TOO_BIG = 7     # block length above max_block
E_BLOCK_TRAILER = 8     # trailing block length differs from the leading one
E_BAD_BOM = 9           # SHB byte-order magic neither 1a2b3c4d nor 4d3c2b1a
E_VERSION = 10          # SHB major version not 1
E_CAPLEN_BLOCK = 11     # captured length runs past the end of its block
E_BAD_IFACE = 12        # packet refers to an interface not described in its section
E_OPTION = 13           # an IDB option runs past the end of its block
E_TOO_MANY_IFACES = 14  # more than MAX_INTERFACES interfaces
E_TSRESOL = 15          # if_tsresol not representable in int64 nanoseconds

_ERR_TEXT = {
    E_TRUNC_HEADER: "header cut short by the end of the file ({v} bytes left)",
    E_TRUNC_DATA: "record runs past the end of the file (needs {v} bytes)",
    E_FRAME_TOO_BIG: "captured length {v} exceeds the limit max_frame",
    E_CAPLEN_SNAPLEN: "captured length {v} exceeds the snaplen",
    E_BLOCK_SMALL: "block length {v} is smaller than the minimum for its type",
    E_BLOCK_ALIGN: "block length {v} is not a multiple of 4",
    E_BLOCK_TOO_BIG: "block length {v} exceeds the limit max_block",
    E_BLOCK_TRAILER: "trailing block length {v} differs from the leading block length",
    E_BAD_BOM: "bad section header byte-order magic 0x{v:08x}",
    E_VERSION: "unsupported pcapng major version {v}",
    E_CAPLEN_BLOCK: "captured length {v} runs past the end of its block",
    E_BAD_IFACE: "packet refers to undescribed interface id {v}",
    E_OPTION: "interface option at byte offset {v} runs past the end of its block",
    E_TOO_MANY_IFACES: "more than {v} interfaces",
    E_TSRESOL: "unsupported if_tsresol 0x{v:02x}",
}


class PcapError(Exception):
    """A capture file that cannot be read (further).

    Attributes
    ----------
    offset : int
        Byte offset in the file of the record or block at fault (0 for the file header).
    reason : str
        What is wrong, e.g. ``"block length 13 is not a multiple of 4"``.
    frames_read : int
        Number of complete frames before the damage (all delivered).
    batch : PacketBatch or None
        Set by :func:`read`: those frames.
    """

    def __init__(self, offset: int, reason: str, path: str | None = None, frames_read: int = 0):
        self.offset = int(offset)
        self.reason = reason
        self.path = path
        self.frames_read = int(frames_read)
        self.batch: PacketBatch | None = None
        where = f"{path}: " if path else ""
        super().__init__(f"{where}byte offset {self.offset}: {reason}")


@dataclass(frozen=True)
class Interface:
    """One capture interface (pcap: the file; pcapng: one IDB).

    ``link`` is the LINKTYPE_*, ``snaplen`` in bytes (0 = none), ``tsresol``
    the raw pcapng if_tsresol byte (6 = µs, 9 = ns; high bit set = power of 2),
    ``tsoffset`` seconds added to every timestamp, ``section`` the 0-based
    pcapng section number, ``offset`` the byte offset of its IDB.
    """

    link: int
    snaplen: int
    tsresol: int
    tsoffset: int = 0
    section: int = 0
    offset: int = 0


# --------------------------------------------------------------------------
# kernels: walk records, fill index arrays


@njit(cache=True, nogil=True, inline="always")
def _rd16(buf, i, be):
    if be:
        return (np.int64(buf[i]) << 8) | np.int64(buf[i + 1])
    return (np.int64(buf[i + 1]) << 8) | np.int64(buf[i])


@njit(cache=True, nogil=True, inline="always")
def _rd32(buf, i, be):
    if be:
        return ((np.int64(buf[i]) << 24) | (np.int64(buf[i + 1]) << 16)
                | (np.int64(buf[i + 2]) << 8) | np.int64(buf[i + 3]))
    return ((np.int64(buf[i + 3]) << 24) | (np.int64(buf[i + 2]) << 16)
            | (np.int64(buf[i + 1]) << 8) | np.int64(buf[i]))


# Records are walked in runs of _LAG, then the run is parsed: the walk is a chain
# of dependent loads (each header gives the next offset), and parsing frame i
# right after reading its header would stall on the frame's second cache line.
# Walking ahead, touching that line, then parsing the run while it is still in
# L1/L2 lets the misses overlap.
_LAG = 32
_META_WORDS = META_DTYPE.itemsize // 8
assert META_DTYPE.itemsize % 8 == 0
# Every cache line up to _AHEAD bytes past the walk position is touched before
# each run: independent loads that the core keeps many of in flight, so the
# dependent header loads of the walk then hit cache (measured here: the bare
# walk of a 1 GB file went from ~310 to ~110-160 ns per record, same run).
_AHEAD = 65536


@njit(cache=True, nogil=True, inline="always")
def _touch(buf, tp, pos, end):
    """Touch one byte per 64-byte line from ``tp`` to ``pos + _AHEAD``; returns (new tp, sink)."""
    target = pos + _AHEAD
    if target > end:
        target = end
    if tp < pos:
        tp = pos
    sink = np.int64(0)
    while tp < target:
        sink += buf[tp]
        tp += 64
    return tp, sink


@njit(cache=True, nogil=True, inline="always")
def _note(buf, data, cap, lk, meta, mz, n):
    """Zero frame ``n``'s meta record (``mz``: its uint64 words), set its link type; touch the
    frame's second cache line. Returns the byte read."""
    w = n * _META_WORDS
    for k in range(_META_WORDS):
        mz[w + k] = 0
    meta[n].link = lk
    if cap > 64:
        return np.int64(buf[data + 64])
    return np.int64(0)


@njit(cache=True, nogil=True)
def _finish(buf, off, length, meta, lo, hi, do_parse):
    for n in range(lo, hi):
        m = meta[n]
        m.src = -1
        if do_parse:
            parse_one(buf, off[n], length[n], meta, n)
        else:
            m.l3_off = -1
            m.l3_end = -1
            m.l4_off = -1
            m.pay_off = -1
            m.dst_off = -1


@njit(cache=True, nogil=True)
def _index_pcap(buf, pos, end, be, ns_res, rec_hdr, snaplen, max_frame, strict, link,
                off, length, wire, ts, meta, mz, n0, n1):
    n = n0
    sink = np.int64(0)
    while n < n1:
        if pos >= end:
            return n, pos, 0, pos, 0, sink
        if end - pos < rec_hdr:
            return n, pos, E_TRUNC_HEADER, pos, end - pos, sink
        sec = _rd32(buf, pos, be)
        frac = _rd32(buf, pos + 4, be)
        cap = _rd32(buf, pos + 8, be)
        orig = _rd32(buf, pos + 12, be)
        if cap > max_frame:
            return n, pos, E_FRAME_TOO_BIG, pos, cap, sink
        if strict and snaplen > 0 and cap > snaplen:
            return n, pos, E_CAPLEN_SNAPLEN, pos, cap, sink
        if cap > end - pos - rec_hdr:
            return n, pos, E_TRUNC_DATA, pos, rec_hdr + cap, sink
        off[n] = pos + rec_hdr
        length[n] = cap
        wire[n] = orig
        if ns_res:
            ts[n] = sec * 1000000000 + frac
        else:
            ts[n] = sec * 1000000000 + frac * 1000
        sink += _note(buf, pos + rec_hdr, cap, link, meta, mz, n)
        n += 1
        pos += rec_hdr + cap
    return n, pos, 0, pos, 0, sink



@njit(cache=True, nogil=True)
def walk_pcap(buf, pos, end, be, ns_res, rec_hdr, snaplen, max_frame, strict, link,
              off, length, wire, ts, meta, mz, do_parse, maxn):
    """Index classic pcap records from ``buf[pos:end]`` into the output arrays.

    ``be``: file is big-endian; ``ns_res``: fraction field is ns (else µs);
    ``rec_hdr``: 16, or 24 for Kuznetsov records; ``link``: the header's
    LINKTYPE. ``meta`` (``META_DTYPE``) need not be zeroed: each frame's record is
    zeroed through ``mz`` (``meta.view(np.uint64)``), then gets its link type and, if ``do_parse``, is parsed (:func:`offload.parse.parse_one`)
    while its bytes are in cache. Fills at most ``maxn`` entries. Returns
    ``(n, pos, err, err_pos, err_val, sink)``: frames indexed, the offset after
    the last one, an ``E_*`` code (0 = none) with the offset of the damaged
    record and the offending value; ``sink`` is meaningless.
    """
    n = 0
    sink = np.int64(0)
    tp = pos
    while n < maxn:
        tp, t = _touch(buf, tp, pos, end)
        sink += t
        hi = min(n + _LAG, maxn)
        k, pos, err, epos, evl, t = _index_pcap(buf, pos, end, be, ns_res, rec_hdr, snaplen, max_frame,
                                                strict, link, off, length, wire, ts, meta, mz, n, hi)
        _finish(buf, off, length, meta, n, k, do_parse)
        sink += t
        n = k
        if err or k < hi:
            return n, pos, err, epos, evl, sink
    return n, pos, 0, pos, 0, sink


@njit(cache=True, nogil=True, inline="always")
def _ticks_to_ns(ticks, mul, div, shift, tsoff):
    # ticks are an unsigned 64-bit count; int64 arithmetic wraps for absurd values
    if shift < 0:
        ns = ticks * mul // div
    else:
        sec = ticks >> shift
        frac = ticks & ((np.int64(1) << shift) - 1)
        if shift > 33:
            frac >>= shift - 33
            ns = sec * 1000000000 + ((frac * 1000000000) >> 33)
        else:
            ns = sec * 1000000000 + ((frac * 1000000000) >> shift)
    return ns + tsoff * 1000000000


@njit(cache=True, nogil=True)
def _index_pcapng(buf, pos, end, st, if_link, if_snap, if_mul, if_div, if_shift, if_tsoff, if_pos, if_res,
                if_sec, max_frame, max_block, strict, off, length, wire, ts, iface, meta, mz, n0, n1):
    n = n0
    sink = np.int64(0)
    maxif = if_link.shape[0]
    while n < n1:
        if pos >= end:
            return n, pos, 0, pos, 0, sink
        if end - pos < 12:
            return n, pos, E_TRUNC_HEADER, pos, end - pos, sink
        if buf[pos] == 0x0A and buf[pos + 1] == 0x0D and buf[pos + 2] == 0x0D and buf[pos + 3] == 0x0A:
            # a Section Header Block: its byte-order magic decides how to read everything else
            bom = _rd32(buf, pos + 8, 1)
            if bom == PCAPNG_BOM:
                be = 1
            elif bom == 0x4D3C2B1A:
                be = 0
            else:
                return n, pos, E_BAD_BOM, pos, bom, sink
            blen = _rd32(buf, pos + 4, be)
            btype = PCAPNG_SHB
            minlen = 28
        else:
            be = st[0]
            btype = _rd32(buf, pos, be)
            blen = _rd32(buf, pos + 4, be)
            minlen = 12
            if btype == BT_IDB:
                minlen = 20
            elif btype == BT_EPB or btype == BT_OPB:
                minlen = 32
            elif btype == BT_SPB:
                minlen = 16
        if blen < minlen:
            return n, pos, E_BLOCK_SMALL, pos, blen, sink
        if blen & 3:
            return n, pos, E_BLOCK_ALIGN, pos, blen, sink
        if blen > max_block:
            return n, pos, E_BLOCK_TOO_BIG, pos, blen, sink
        if blen > end - pos:
            return n, pos, E_TRUNC_DATA, pos, blen, sink
        trailer = _rd32(buf, pos + blen - 4, be)
        if trailer != blen:
            return n, pos, E_BLOCK_TRAILER, pos, trailer, sink
        if btype == PCAPNG_SHB:
            major = _rd16(buf, pos + 12, be)
            if major != 1:
                return n, pos, E_VERSION, pos, major, sink
            st[0] = be
            st[1] = st[2]
            st[3] += 1
        elif btype == BT_IDB:
            g = st[2]
            if g >= maxif:
                return n, pos, E_TOO_MANY_IFACES, pos, maxif, sink
            mul = np.int64(1000)       # default if_tsresol 6: microseconds
            div = np.int64(1)
            shift = np.int64(-1)
            tsoff = np.int64(0)
            res = np.int64(6)
            p = pos + 16
            oend = pos + blen - 4
            while p + 4 <= oend:
                code = _rd16(buf, p, be)
                olen = _rd16(buf, p + 2, be)
                if code == 0:
                    break
                if olen > oend - p - 4:
                    return n, pos, E_OPTION, pos, p, sink
                if code == 9 and olen >= 1:
                    r = np.int64(buf[p + 4])
                    res = r
                    if r & 0x80:
                        shift = r & 0x7F
                        if shift > 62:
                            return n, pos, E_TSRESOL, pos, r, sink
                    else:
                        if r > 18:
                            return n, pos, E_TSRESOL, pos, r, sink
                        mul = 1
                        div = 1
                        if r <= 9:
                            for _ in range(9 - r):
                                mul *= 10
                        else:
                            for _ in range(r - 9):
                                div *= 10
                elif code == 14 and olen >= 8:
                    lo = _rd32(buf, p + 4, be)
                    hi = _rd32(buf, p + 8, be)
                    if be:
                        lo, hi = hi, lo
                    tsoff = (hi << 32) | lo
                p += 4 + ((olen + 3) & ~3)
            if_link[g] = _rd16(buf, pos + 8, be)
            if_snap[g] = _rd32(buf, pos + 12, be)
            if_mul[g] = mul
            if_div[g] = div
            if_shift[g] = shift
            if_tsoff[g] = tsoff
            if_pos[g] = pos
            if_res[g] = res
            if_sec[g] = st[3]
            st[2] = g + 1
        elif btype == BT_EPB or btype == BT_OPB or btype == BT_SPB:
            if btype == BT_SPB:
                ifid = np.int64(0)
                orig = _rd32(buf, pos + 8, be)
                data = pos + 12
                room = blen - 16
                ticks = np.int64(0)
                has_ts = False
            else:
                if btype == BT_EPB:
                    ifid = _rd32(buf, pos + 8, be)
                else:
                    ifid = _rd16(buf, pos + 8, be)
                ticks = (_rd32(buf, pos + 12, be) << 32) | _rd32(buf, pos + 16, be)
                has_ts = True
                orig = _rd32(buf, pos + 24, be)
                data = pos + 28
                room = blen - 32
            if ifid >= st[2] - st[1]:
                return n, pos, E_BAD_IFACE, pos, ifid, sink
            g = st[1] + ifid
            if btype == BT_SPB:
                cap = orig if orig < room else room
                if if_snap[g] > 0 and cap > if_snap[g]:
                    cap = if_snap[g]
            else:
                cap = _rd32(buf, pos + 20, be)
                if cap > room:
                    return n, pos, E_CAPLEN_BLOCK, pos, cap, sink
            if cap > max_frame:
                return n, pos, E_FRAME_TOO_BIG, pos, cap, sink
            if strict and if_snap[g] > 0 and cap > if_snap[g]:
                return n, pos, E_CAPLEN_SNAPLEN, pos, cap, sink
            off[n] = data
            length[n] = cap
            wire[n] = orig
            iface[n] = g
            if not has_ts:
                ts[n] = 0
            else:
                ts[n] = _ticks_to_ns(ticks, if_mul[g], if_div[g], if_shift[g], if_tsoff[g])
            sink += _note(buf, data, cap, if_link[g], meta, mz, n)
            n += 1
        pos += blen
    return n, pos, 0, pos, 0, sink


@njit(cache=True, nogil=True)
def walk_pcapng(buf, pos, end, st, if_link, if_snap, if_mul, if_div, if_shift, if_tsoff, if_pos, if_res,
                if_sec, max_frame, max_block, strict, off, length, wire, ts, iface, meta, mz, do_parse, maxn):
    """Index pcapng packets from ``buf[pos:end]`` (``pos`` at a block boundary).

    ``st`` (int64[4]) carries state between calls: ``[big_endian,
    first_global_iface_of_section, interfaces_so_far, section_number]``.
    Interface tables ``if_*`` (indexed by global interface number) are filled
    as IDBs are met. ``meta``/``do_parse`` and the result are as in :func:`walk_pcap`.
    """
    n = 0
    sink = np.int64(0)
    tp = pos
    while n < maxn:
        tp, t = _touch(buf, tp, pos, end)
        sink += t
        hi = min(n + _LAG, maxn)
        k, pos, err, epos, evl, t = _index_pcapng(buf, pos, end, st, if_link, if_snap, if_mul, if_div, if_shift,
                                                  if_tsoff, if_pos, if_res, if_sec, max_frame, max_block, strict,
                                                  off, length, wire, ts, iface, meta, mz, n, hi)
        _finish(buf, off, length, meta, n, k, do_parse)
        sink += t
        n = k
        if err or k < hi:
            return n, pos, err, epos, evl, sink
    return n, pos, 0, pos, 0, sink


# --------------------------------------------------------------------------
# reading


def _as_array(source):
    """(uint8 array, mmap or None, path or None) for a path or a bytes-like/uint8 array."""
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 1:
            raise TypeError("a capture given as an array must be 1-D uint8")
        return source, None, None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return np.frombuffer(source, np.uint8), None, None
    path = os.fspath(source)
    with builtins.open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return np.zeros(0, np.uint8), None, path
        # Private copy-on-write mapping: frames stay zero-copy views of the page cache,
        # yet in-place stages (checksum fill, partial completion) can write to them;
        # a written page becomes private and the file itself is never modified.
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
        mm.madvise(mmap.MADV_SEQUENTIAL)
    return np.frombuffer(mm, np.uint8), mm, path


class _Closing:
    """``with`` support: ``close()`` on exit."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class PcapReader(_Closing):
    """A capture file (pcap or pcapng) opened for reading by memory map.

    ``source`` is a path, or the file's bytes (``bytes``, ``bytearray``,
    ``memoryview`` or a 1-D ``uint8`` array, used in place). The file header is
    checked on construction (bad magic raises :class:`PcapError` at offset 0).

    Attributes: ``format`` (``"pcap"`` or ``"pcapng"``), ``byte_order``
    (``"<"`` little-endian or ``">"`` big-endian; pcapng: of the first section),
    ``ts_resolution`` (``"us"`` or ``"ns"``; pcapng: of the first interface,
    ``None`` if it is neither), ``snaplen`` (pcap header; pcapng: first
    interface), ``link`` (pcap header LINKTYPE; pcapng: first interface's),
    ``interfaces`` (list of :class:`Interface`, complete once the file has
    been walked), ``size`` (bytes), ``pos`` (byte offset reached so far).
    """

    def __init__(self, source, max_frame: int = DEFAULT_MAX_FRAME, max_block: int = DEFAULT_MAX_BLOCK,
                 strict_snaplen: bool = False):
        self.buf, self._mm, self.path = _as_array(source)
        self.size = int(self.buf.size)
        self.max_frame = int(max_frame)
        self.max_block = int(max_block)
        self.strict = bool(strict_snaplen)
        self.frames_read = 0
        self._released = 0
        self._release = True
        self._batch_start = 0
        self._error: PcapError | None = None
        self._done = False
        buf = self.buf
        if self.size < 4:
            raise PcapError(0, f"file too short for a capture header ({self.size} bytes)", self.path)
        head = buf[:24].tobytes()      # one copy of the header (numpy slices cost ~1 us each)
        magic_le = int.from_bytes(head[:4], "little")
        magic_be = int.from_bytes(head[:4], "big")
        if magic_be == PCAPNG_SHB:
            self.format = "pcapng"
            self.pos = 0
            self._st = np.zeros(4, np.int64)
            self._st[3] = -1
            # interface tables grow on demand (x4) up to MAX_INTERFACES: 9 tables of 65,536
            # entries would cost ~5 MB of zeroed memory per open
            self._if = [np.zeros(_IF_START, np.int64) for _ in range(9)]
            if self.size >= 12:
                bom = int.from_bytes(head[8:12], "big")
                self._st[0] = 1 if bom == PCAPNG_BOM else 0
            self.byte_order = ">" if self._st[0] else "<"
            # walk up to the first packet so the first interface is known
            self._peek_interfaces()
        else:
            self.format = "pcap"
            for magic, be in ((magic_le, 0), (magic_be, 1)):
                if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_KUZNETSOV):
                    break
            else:
                raise PcapError(0, f"bad magic 0x{magic_be:08x}: neither pcap nor pcapng", self.path)
            if self.size < 24:
                raise PcapError(0, f"file too short for a pcap header ({self.size} of 24 bytes)", self.path)
            self._be = be
            self.byte_order = ">" if be else "<"
            self._ns = magic == PCAP_MAGIC_NS
            self._rec_hdr = 24 if magic == PCAP_MAGIC_KUZNETSOV else 16
            self.ts_resolution = "ns" if self._ns else "us"
            vmaj, vmin, _, _, self.snaplen, self.network = struct.unpack((">" if be else "<") + "HHiIII", head[4:24])
            self.version = (vmaj, vmin)
            self.link = self.network & 0xFFFF
            self.interfaces = [Interface(self.link, self.snaplen, 9 if self._ns else 6)]
            self.pos = 24

    # -- pcapng interface bookkeeping ---------------------------------------
    def _grow_interfaces(self) -> bool:
        """Make the pcapng interface tables larger; False when at MAX_INTERFACES already."""
        m = self._if[0].size
        if m >= MAX_INTERFACES:
            return False
        grow = min(4 * m, MAX_INTERFACES) - m
        self._if = [np.concatenate([t, np.zeros(grow, np.int64)]) for t in self._if]
        return True

    def _peek_interfaces(self):
        one = np.zeros(1, np.int64)
        meta1 = np.zeros(1, META_DTYPE)
        while True:
            st = self._st.copy()
            tabs = [t.copy() for t in self._if]
            r = walk_pcapng(self.buf, 0, self.size, st, *tabs, self.max_frame, self.max_block, self.strict,
                            one, one.copy(), one.copy(), one.copy(), one.copy(), meta1, meta1.view(np.uint64),
                            False, 1)
            if not (r[2] == E_TOO_MANY_IFACES and self._grow_interfaces()):
                break
        if r[2] and r[3] == 0:
            raise PcapError(0, _ERR_TEXT[r[2]].format(v=r[4]), self.path)
        self._peeked = self._tables_to_interfaces(tabs, int(st[2]))
        if st[2] > 0:
            self.link = int(tabs[0][0])
            self.snaplen = int(tabs[1][0])
            res = int(tabs[7][0])
            self.ts_resolution = "ns" if res == 9 else "us" if res == 6 else None
        else:
            self.link, self.snaplen, self.ts_resolution = LINK_ETHERNET, 0, None

    @property
    def interfaces(self) -> list[Interface]:
        if self.format != "pcapng":
            return self._interfaces
        walked = self._tables_to_interfaces(self._if, int(self._st[2]))
        return walked if len(walked) >= len(self._peeked) else self._peeked

    @staticmethod
    def _tables_to_interfaces(tabs, count):
        link, snap, _, _, _, tsoff, pos, res, sec = (t[:count].tolist() for t in tabs)
        return [Interface(link[g], snap[g], res[g], tsoff[g], sec[g], pos[g]) for g in range(count)]

    @interfaces.setter
    def interfaces(self, v):
        self._interfaces = v

    # -- reading --------------------------------------------------------------
    def _release_behind(self, keep_from: int) -> None:
        """Drop this process's page mappings of the file before ``keep_from``.

        The pages stay in the page cache and frames of earlier batches stay
        valid (touching them maps them again); what is released is this
        process's resident set and page tables, so iterating over a file
        larger than memory keeps a bounded footprint.
        """
        if self._mm is None or not self._release or not hasattr(self._mm, "madvise"):
            return
        upto = (keep_from // mmap.PAGESIZE) * mmap.PAGESIZE
        if upto - self._released >= (32 << 20):
            try:
                self._mm.madvise(mmap.MADV_DONTNEED, self._released, upto - self._released)
            except (OSError, ValueError):
                self._mm = None       # not supported here: keep the mapping as it is
                return
            self._released = upto

    def _next(self, n: int, parse: bool) -> PacketBatch | None:
        if self._done:
            return None
        # the previous batch (which the caller may still be using) stays mapped
        self._release_behind(self._batch_start)
        self._batch_start = self.pos
        # every record takes at least 16 bytes: no more entries than that can be filled
        cap = min(n, (self.size - self.pos) // 16 + 1)
        off = np.empty(cap, np.int64)
        ln = np.empty(cap, np.int64)
        wire = np.empty(cap, np.int64)
        ts = np.empty(cap, np.int64)
        meta = np.empty(cap, META_DTYPE)     # the walk zeroes each record it fills
        mz = meta.view(np.uint64)
        if self.format == "pcap":
            k, pos, err, epos, eval_, _ = walk_pcap(self.buf, self.pos, self.size, self._be, self._ns,
                                                    self._rec_hdr, self.snaplen, self.max_frame, self.strict,
                                                    self.link, off, ln, wire, ts, meta, mz, parse, cap)
            iface = None
        else:
            iface = np.empty(cap, np.int64)
            k = 0
            while True:
                # an IDB past the tables' end stops the walk before it: grow them, walk on from there
                kk, pos, err, epos, eval_, _ = walk_pcapng(self.buf, self.pos, self.size, self._st, *self._if,
                                                           self.max_frame, self.max_block, self.strict, off[k:],
                                                           ln[k:], wire[k:], ts[k:], iface[k:], meta[k:],
                                                           mz[k * _META_WORDS:], parse, cap - k)
                k += kk
                self.pos = int(pos)
                if not (err == E_TOO_MANY_IFACES and self._grow_interfaces()):
                    break
            iface = iface[:k]
        meta = meta[:k]
        self.pos = int(pos)
        self.frames_read += int(k)
        if err:
            self._done = True
            self._error = PcapError(epos, _ERR_TEXT[err].format(v=int(eval_)), self.path, self.frames_read)
        elif k < cap:
            self._done = True
        if k == 0:
            return None
        return PacketBatch(self.buf, off[:k], ln[:k], meta, ts[:k], wire[:k], iface)

    def iter_batches(self, n: int = 4096, parse: bool = False) -> Iterator[PacketBatch]:
        """Yield batches of up to ``n`` frames (views into the mapped file) in file order.

        ``parse=True`` also parses every frame into ``meta`` (as
        :func:`offload.parse.parse_batch` would) during the walk, while the
        frame's first bytes are in cache: cheaper than parsing afterwards.
        Memory held per batch is O(n) for the index arrays; frame bytes stay in
        the page cache. On damage, the frames before it are yielded, then
        :class:`PcapError` is raised.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        while True:
            b = self._next(n, parse)
            if b is not None:
                yield b
            if self._done:
                break
        if self._error is not None:
            raise self._error

    __iter__ = iter_batches

    def read_all(self, parse: bool = False) -> PacketBatch:
        """Every (remaining) frame as one batch; on damage raise PcapError with ``.batch`` set."""
        parts = []
        n = 65536                 # per walk; index arrays are sized from the bytes left (_next)
        self._release = False     # the whole file is wanted at once: keep it mapped
        while not self._done:
            b = self._next(n, parse)
            if b is not None:
                parts.append(b)
            n = min(n * 2, 1 << 22)
        if self._error is not None:
            self._error.batch = _join(parts, self)
            raise self._error
        return _join(parts, self)

    def writer_options(self) -> dict:
        """Keyword arguments for :func:`write` / :class:`PcapWriter` that reproduce this file's format."""
        opts = {"format": self.format, "byte_order": self.byte_order, "snaplen": self.snaplen}
        if self.ts_resolution is not None:
            opts["ts_resolution"] = self.ts_resolution
        if self.format == "pcap":
            opts["link"] = self.network
        else:
            opts["interfaces"] = [i.link for i in self.interfaces]
        return opts

    def close(self):
        self.buf = None
        self._mm = None


def _join(parts: list[PacketBatch], reader: PcapReader) -> PacketBatch:
    """Index arrays of ``parts`` concatenated; the frames stay in the mapped file."""
    if not parts:
        b = PacketBatch(reader.buf if reader.buf is not None and reader.buf.size else np.zeros(4, np.uint8),
                        np.zeros(0, np.int64), np.zeros(0, np.int64), link=reader.link)
        b.ts = np.zeros(0, np.int64)
        b.wire_len = np.zeros(0, np.int64)
        return b
    if len(parts) == 1:
        return parts[0]
    cat = np.concatenate
    iface = None if parts[0].iface is None else cat([p.iface for p in parts])
    return PacketBatch(parts[0].buf, cat([p.off for p in parts]), cat([p.len for p in parts]),
                       cat([p.meta for p in parts]), cat([p.ts for p in parts]),
                       cat([p.wire_len for p in parts]), iface)


def open(source, **kw) -> PcapReader:  # noqa: A001 - mirrors the builtin on purpose
    """Open a capture for reading; see :class:`PcapReader`."""
    return PcapReader(source, **kw)


def read(source, parse: bool = False, **kw) -> PacketBatch:
    """Read a whole capture into one PacketBatch whose frames are views of the mapped file.

    ``parse=True`` parses every frame into ``meta`` on the way. Other keyword
    arguments are :class:`PcapReader`'s limits. On damage raises
    :class:`PcapError`; its ``.batch`` holds every complete frame before it.
    """
    try:
        reader = PcapReader(source, **kw)
    except PcapError as e:
        e.batch = PacketBatch.empty()
        raise
    return reader.read_all(parse)


def iter_batches(source, n: int = 4096, parse: bool = False, **kw) -> Iterator[PacketBatch]:
    """``for batch in iter_batches(path, n=4096): ...`` — see :meth:`PcapReader.iter_batches`."""
    yield from PcapReader(source, **kw).iter_batches(n, parse)


# --------------------------------------------------------------------------
# writing


# Bits of the mask :func:`check_records` returns: what a batch holds that the file cannot.
W_SNAPLEN = 1        # a frame longer than the snaplen
W_WIRE = 2           # a wire length outside 0 .. 2**32-1
W_TS_PCAP = 4        # a timestamp outside [0, 2**32) s (classic pcap)
W_TS_NEG = 8         # a negative timestamp (pcapng)
W_LINK = 16          # a link type other than the file's (classic pcap)
W_SPAN = 32          # a frame outside its batch's buffer


@njit(cache=True, nogil=True)
def check_records(bufsize, off, length, wire, has_wire, ts, has_ts, links, link, snaplen, pcapng):
    """Bitmask of the ``W_*`` problems in a batch (0 = writable), in one pass over its index.

    ``wire``/``ts`` are read only when ``has_wire``/``has_ts`` (else the frame length
    and 0 stand in); ``link`` is the classic pcap header's link type (low 16 bits),
    ignored for pcapng."""
    bad = 0
    tmax = np.int64(1 << 32) * 1000000000
    for i in range(off.shape[0]):
        n = length[i]
        o = off[i]
        if o < 0 or n < 0 or n > bufsize - o:
            bad |= W_SPAN
        if snaplen > 0 and n > snaplen:
            bad |= W_SNAPLEN
        w = wire[i] if has_wire else n
        if w < 0 or w > 0xFFFFFFFF:
            bad |= W_WIRE
        t = ts[i] if has_ts else np.int64(0)
        if pcapng:
            if t < 0:
                bad |= W_TS_NEG
        else:
            if t < 0 or t >= tmax:
                bad |= W_TS_PCAP
            if links[i] != link:
                bad |= W_LINK
    return bad


@njit(cache=True, nogil=True, inline="always")
def _wr32(out, p, v, be):
    if be:
        out[p] = (v >> 24) & 0xFF
        out[p + 1] = (v >> 16) & 0xFF
        out[p + 2] = (v >> 8) & 0xFF
        out[p + 3] = v & 0xFF
    else:
        out[p] = v & 0xFF
        out[p + 1] = (v >> 8) & 0xFF
        out[p + 2] = (v >> 16) & 0xFF
        out[p + 3] = (v >> 24) & 0xFF


@njit(cache=True, nogil=True, inline="always")
def _copy(src, s, dst, d, n):
    """``dst[d:d+n] = src[s:s+n]`` for ``s, d, n >= 0``. The indices are unsigned: a signed
    index carries numba's negative-index check, which keeps LLVM from vectorising the loop
    (~3 ns per byte here; unsigned, as fast as offload.csum.copy_words, without importing
    offload.csum and its extension machinery, ~0.1 s of start-up for read-only commands)."""
    a = np.uint64(s)
    b = np.uint64(d)
    for k in range(np.uint64(n)):
        dst[b + k] = src[a + k]


@njit(cache=True, nogil=True)
def emit_records(buf, off, length, wire, has_wire, ts, has_ts, fid, lo, hi, be, pcapng, ns_res, out):
    """Serialise frames ``lo..hi-1`` as pcap records (``pcapng=0``) or EPBs into ``out``,
    as many as fit. Returns ``(bytes written, index of the first frame not written)``.

    ``ts`` in ns (0 when not ``has_ts``); written as µs (floor) unless ``ns_res``.
    ``wire`` is the original length (the frame length when not ``has_wire``); ``fid``
    the pcapng interface id per frame. The frames must lie inside ``buf``
    (:func:`check_records`).
    """
    p = 0
    cap = out.shape[0]
    i = lo
    while i < hi:
        n = length[i]
        t = ts[i] if has_ts else np.int64(0)
        w = wire[i] if has_wire else n
        if pcapng:
            blen = 32 + ((n + 3) & ~3)
            if blen > cap - p:
                break
            ticks = t if ns_res else t // 1000
            _wr32(out, p, BT_EPB, be)
            _wr32(out, p + 4, blen, be)
            _wr32(out, p + 8, fid[i], be)
            _wr32(out, p + 12, ticks >> 32, be)
            _wr32(out, p + 16, ticks & 0xFFFFFFFF, be)
            _wr32(out, p + 20, n, be)
            _wr32(out, p + 24, w, be)
            _copy(buf, off[i], out, p + 28, n)
            for k in range(p + 28 + n, p + blen - 4):
                out[k] = 0
            _wr32(out, p + blen - 4, blen, be)
            p += blen
        else:
            if 16 + n > cap - p:
                break
            sec = t // 1000000000
            frac = t - sec * 1000000000
            if not ns_res:
                frac //= 1000
            _wr32(out, p, sec, be)
            _wr32(out, p + 4, frac, be)
            _wr32(out, p + 8, n, be)
            _wr32(out, p + 12, w, be)
            _copy(buf, off[i], out, p + 16, n)
            p += 16 + n
        i += 1
    return p, i


@njit(cache=True, nogil=True)
def record_bytes(length, lo, hi, pcapng):
    """Bytes that frames ``lo..hi-1`` take as pcap records (``pcapng=0``) or EPBs."""
    t = 0
    if pcapng:
        for i in range(lo, hi):
            t += 32 + ((length[i] + 3) & ~3)
    else:
        for i in range(lo, hi):
            t += 16 + length[i]
    return t


@njit(cache=True, nogil=True)
def declared_ifaces(links, iface, has_iface, table, declared, fid):
    """The steady state of a pcapng writer, in one pass: when every frame goes to an
    interface whose IDB is already written, store its id in ``fid`` and return 1; else
    return 0 (the writer then takes its general path, which declares or refuses).

    With ``has_iface`` the id is the frame's ``iface`` and must have the frame's link
    type in ``table`` (link type per id); without, it is the lowest id with that link."""
    last_lk = np.int64(-1)
    last_g = np.int64(-1)
    nt = table.shape[0]
    for i in range(links.shape[0]):
        lk = np.int64(links[i])
        if has_iface:
            g = np.int64(iface[i])
            if g < 0 or g >= declared or table[g] != lk:
                return 0
        else:
            if lk != last_lk:
                last_g = -1
                for j in range(nt):
                    if table[j] == lk:
                        last_g = j
                        break
                if last_g < 0 or last_g >= declared:
                    return 0
                last_lk = lk
            g = last_g
        fid[i] = g
    return 1


# Records are built in a reusable buffer of at most this many bytes (more only for a
# single larger record) and handed to the file in one write() each.
_WRITE_CHUNK = 4 << 20
_NO_I64 = np.zeros(1, np.int64)
_NO_I32 = np.zeros(1, np.int32)


class PcapWriter(_Closing):
    """Write frames to a pcap or pcapng file, batch by batch.

    ``dest``: a path or a binary file object. ``format``: ``"pcap"`` or
    ``"pcapng"``. ``ts_resolution``: ``"us"`` or ``"ns"`` (default: ``"us"``
    for pcap, the most widely readable; ``"ns"`` for pcapng, written as
    ``if_tsresol`` = 9); µs timestamps are the batch's ns floored. ``byte_order``:
    ``"<"`` (little-endian, default) or ``">"``. ``snaplen`` in bytes goes into the
    file header / every IDB; a frame longer than it is refused (ValueError);
    0 means no limit (pcapng's convention).
    ``link`` (pcap only): the header's LINKTYPE; default: the first batch's
    ``meta['link']`` (every frame of a pcap file must share it).
    ``interfaces`` (pcapng only): the LINKTYPE of interface ids 0, 1, ... known
    in advance (:meth:`PcapReader.writer_options` passes the file's).

    pcapng interfaces: if a batch has ``iface``, those are the file's interface
    ids and each must keep one link type; an id not in ``interfaces`` and first
    used before lower ids were seen gets those lower ids declared with its link
    type. Without ``iface``, a frame goes to the first interface with its
    ``meta['link']``, a new link type gets a new interface. IDBs are written
    just before the first frame of an interface at or above their id (unused
    ones at :meth:`close`), so the output does not depend on how frames are
    batched.

    Per frame: ``ts`` (ns since the epoch; 0 when the batch has none; pcap
    needs 0 <= ts < 2**32 s), ``wire_len`` (orig_len; default the frame
    length).
    """

    def __init__(self, dest, format: str = "pcap", ts_resolution: str | None = None, byte_order: str = "<",
                 snaplen: int = DEFAULT_SNAPLEN, link: int | None = None, interfaces=None):
        if format not in ("pcap", "pcapng"):
            raise ValueError("format must be 'pcap' or 'pcapng'")
        if ts_resolution is None:
            ts_resolution = "us" if format == "pcap" else "ns"
        if ts_resolution not in ("us", "ns"):
            raise ValueError("ts_resolution must be 'us' or 'ns'")
        if byte_order not in ("<", ">"):
            raise ValueError("byte_order must be '<' or '>'")
        self.format = format
        self.ns = ts_resolution == "ns"
        self.bo = byte_order
        self.snaplen = int(snaplen)
        self.link = link
        self._own = not hasattr(dest, "write")
        self._f = builtins.open(dest, "wb") if self._own else dest
        self._table: list[int] = []      # pcapng: link type of every interface id known so far
        self._declared = 0               # pcapng: IDBs written (ids 0.._declared-1)
        self._header_done = False
        self._out: np.ndarray | None = None
        self._io = isinstance(self._f, io.IOBase)
        self._bytesio = type(self._f) is io.BytesIO    # a subclass may mean its own write()
        self.frames_written = 0
        if format == "pcapng":
            self._f.write(struct.pack(self.bo + "IIIHHq", PCAPNG_SHB, 28, PCAPNG_BOM, 1, 0, -1)
                          + struct.pack(self.bo + "I", 28))
            self._header_done = True
            self._table = [int(lk) for lk in interfaces or ()]
        elif interfaces:
            raise ValueError("interfaces= is for pcapng")

    def _pcap_header(self, link: int):
        magic = PCAP_MAGIC_NS if self.ns else PCAP_MAGIC_US
        self._f.write(struct.pack(self.bo + "IHHiIII", magic, 2, 4, 0, 0, self.snaplen, link))
        self.link = link
        self._header_done = True

    def _declare_upto(self, count: int):
        """Write the IDBs of interface ids ``_declared .. count-1``."""
        opts = b""
        if self.ns:
            opts = struct.pack(self.bo + "HHB3x", 9, 1, 9) + struct.pack(self.bo + "HH", 0, 0)
        blen = 20 + len(opts)
        for i in range(self._declared, count):
            self._f.write(struct.pack(self.bo + "IIHHI", BT_IDB, blen, self._table[i], 0, self.snaplen) + opts
                          + struct.pack(self.bo + "I", blen))
        self._declared = max(self._declared, count)

    def write(self, batch: PacketBatch) -> None:
        """Append the frames of ``batch``."""
        n = len(batch)
        if self.format == "pcap" and not self._header_done:
            self._pcap_header(int(self.link) if self.link is not None
                              else int(batch.meta["link"][0]) if n else LINK_ETHERNET)
        if n == 0:
            return
        buf = batch.buf if batch.buf.flags.c_contiguous else np.ascontiguousarray(batch.buf)
        has_ts = batch.ts is not None
        has_wire = batch.wire_len is not None
        ts = batch.ts if has_ts else _NO_I64
        wire = batch.wire_len if has_wire else _NO_I64
        links = batch.meta["link"]
        pcapng = self.format == "pcapng"
        bad = check_records(buf.size, batch.off, batch.len, wire, has_wire, ts, has_ts, links,
                            0 if pcapng else self.link & 0xFFFF, self.snaplen, pcapng)
        if bad:
            self._refuse(bad, batch, links)
        if pcapng:
            fid, cuts = self._assign_ifaces(batch, links)
        else:
            fid, cuts = _NO_I64, []
        pos = 0
        for at, upto in cuts + [(n, 0)]:
            self._emit(buf, batch, ts, has_ts, wire, has_wire, fid, pos, at)
            self._declare_upto(upto)
            pos = at
        self.frames_written += n

    def _refuse(self, bad: int, batch: PacketBatch, links) -> None:
        """Raise the ValueError for the first problem (in this order) that ``bad`` names."""
        if bad & W_SPAN:
            raise ValueError("a frame lies outside its batch's buffer")
        if bad & W_SNAPLEN:
            raise ValueError(f"a frame of {int(batch.len.max())} bytes exceeds snaplen {self.snaplen}; "
                             "pass a larger snaplen=")
        if bad & W_WIRE:
            raise ValueError("wire_len must fit in 32 bits")
        if bad & W_TS_PCAP:
            raise ValueError("classic pcap timestamps must lie in [0, 2**32) seconds")
        if bad & W_LINK:
            raise ValueError(f"classic pcap holds one link type ({self.link}); this batch has "
                             f"{sorted(set(links.tolist()))}: use format='pcapng'")
        raise ValueError("pcapng timestamps must not be negative")

    def _assign_ifaces(self, batch, links):
        """File interface id per frame, and where IDBs go: [(frame index, declare ids below this)]."""
        n = len(batch)
        fid = np.empty(n, np.int64)
        has_iface = batch.iface is not None
        if self._declared and declared_ifaces(links, batch.iface if has_iface else _NO_I32, has_iface,
                                              np.array(self._table, np.int64), self._declared, fid):
            return fid, []
        table = self._table
        if not has_iface:
            # one interface per link type: the first id with that link, else a new one
            ul, first = np.unique(links, return_index=True)
            for _, lk in sorted(zip(first.tolist(), ul.tolist())):
                if lk not in table:
                    table.append(lk)
            first_id = np.array([table.index(lk) for lk in ul.tolist()], np.int64)
            fid = first_id[np.searchsorted(ul, links)]
        else:
            fid = batch.iface.astype(np.int64)
            if int(fid.min()) < 0:
                raise ValueError("negative interface id")
        key = fid * 65536 + links
        uk, first = np.unique(key, return_index=True)
        ids = uk // 65536
        if np.any(ids[1:] == ids[:-1]):
            raise ValueError("an interface id has frames of two link types")
        link_of = dict(zip(ids.tolist(), (uk % 65536).tolist()))
        first_of = dict(zip(ids.tolist(), first.tolist()))
        for i in sorted(link_of):
            lk = link_of[i]
            while len(table) < i:
                table.append(lk)           # an id never seen: it takes the link of the id that needs it
            if i == len(table):
                table.append(lk)
            elif table[i] != lk:
                raise ValueError(f"interface {i} has link type {table[i]}, this batch has link type {lk}")
        new_ids = sorted(i for i in link_of if i >= self._declared)
        # id i (and every lower undeclared id) must be declared before the first frame of any id >= i
        need, m = {}, n
        for i in reversed(new_ids):
            m = min(m, first_of[i])
            need[i] = m
        cuts = []
        for i in new_ids:
            if cuts and cuts[-1][0] == need[i]:
                cuts[-1] = (need[i], i + 1)
            else:
                cuts.append((need[i], i + 1))
        return fid, cuts

    def _emit(self, buf, batch, ts, has_ts, wire, has_wire, fid, lo, hi):
        """Frames ``lo..hi-1``: records built by one kernel call per chunk in a reusable
        buffer, one ``write()`` per chunk."""
        if hi <= lo:
            return
        pcapng = self.format == "pcapng"
        be = 1 if self.bo == ">" else 0
        if self._bytesio:
            # in memory: the records are built in place in the BytesIO's own buffer
            # (a scratch buffer beside a growing BytesIO costs a page fault per 4 KB here)
            f = self._f
            pos = f.tell()
            end = pos + record_bytes(batch.len, lo, hi, pcapng)
            f.seek(end - 1)
            f.write(b"\0")
            with f.getbuffer() as mv:
                out = np.frombuffer(mv, np.uint8)[pos:end]
                w, _ = emit_records(buf, batch.off, batch.len, wire, has_wire, ts, has_ts, fid, lo, hi, be,
                                    pcapng, self.ns, out)
                del out
            assert w == end - pos
            return
        if self._out is None:
            need = record_bytes(batch.len, lo, hi, pcapng)
            self._out = np.empty(min(max(need, 1 << 16), _WRITE_CHUNK), np.uint8)
        while lo < hi:
            out = self._out
            w, nxt = emit_records(buf, batch.off, batch.len, wire, has_wire, ts, has_ts, fid, lo, hi, be,
                                  pcapng, self.ns, out)
            if nxt < hi:
                # full: the next buffer takes a whole chunk (or the one record that is larger)
                grow = max(_WRITE_CHUNK, int(batch.len[nxt]) + 36) if nxt == lo else _WRITE_CHUNK
                if grow > out.size:
                    self._out = np.empty(grow, np.uint8)
            if w:
                # io objects must not keep the buffer past write() (io docs), so it is
                # reused; any other object with a write() gets bytes of its own
                self._f.write(memoryview(out)[:w] if self._io else out[:w].tobytes())
            lo = nxt

    def close(self) -> None:
        """Finish the file (a pcap with no frames still gets its header) and close it if we opened it."""
        if self._f is None:
            return
        if not self._header_done:
            self._pcap_header(int(self.link) if self.link is not None else LINK_ETHERNET)
        if self.format == "pcapng":
            self._declare_upto(len(self._table))
        if self._own:
            self._f.close()
        else:
            self._f.flush()
        self._f = None


def write(dest, batch: PacketBatch, **kw) -> None:
    """Write ``batch`` to ``dest`` (path or binary file); options as :class:`PcapWriter`."""
    with PcapWriter(dest, **kw) as w:
        w.write(batch)


def to_bytes(batch: PacketBatch, **kw) -> bytes:
    """The file :func:`write` would produce, as bytes."""
    f = io.BytesIO()
    with PcapWriter(f, **kw) as w:
        w.write(batch)
    return f.getvalue()
