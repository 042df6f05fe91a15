"""PacketBatch: one byte arena, per-frame offsets and lengths, per-frame metadata.

A batch is a *view*: ``buf`` is any ``uint8`` array (a user array, an mmapped
capture file, an AF_XDP UMEM), frame ``i`` is ``buf[off[i] : off[i] + len[i]]``.
Nothing is copied to build a batch over existing memory; only stages whose
output is new (segments, merged frames) write, into an :class:`OutputArena`.

``meta`` is a structured array (:data:`META_DTYPE`), one record per frame:

* virtio_net_hdr fields (host integers; ``vnet.py`` packs them little-endian):
  ``vnet_flags``, ``gso_type``, ``hdr_len``, ``gso_size``, ``csum_start``,
  ``csum_offset`` (offsets in bytes from the first byte of the frame).
* the parsed layout written by :func:`offload.parse.parse_batch` (byte offsets
  from the first byte of the frame; ``-1`` where a layer is absent):
  ``link`` (pcap LINKTYPE_*), ``vlan_count``, ``l3_off``, ``l3_proto``
  (ethertype, 0x0800 / 0x86DD, 0 if not IP), ``l3_hdr_len`` (IPv4 header incl.
  options, IPv6 fixed header + extension headers), ``ext_len`` (IPv6
  extension-header bytes), ``l3_end`` (offset just past the IP packet as its
  length fields declare it; may exceed the frame when it is truncated),
  ``l4_off``, ``l4_proto`` (IP protocol number), ``l4_hdr_len``, ``pay_off``,
  ``pay_len`` (declared payload bytes after the L4 header), ``dst_off``
  (offset of the destination address that goes into the pseudo-header: the
  final destination when an IPv6 routing header has segments left), ``pflags``
  (``status.PF_*`` bits).
* ``status``: the most recent stage's verdict (``offload.status``).
* ``csum``: the checksum engine's verdict (``offload.status`` CSUM_* or OK),
  kept apart so later stages do not overwrite it.
* ``seg``: a stage-defined index (GSO: segment number within its
  super-packet; GRO: number of frames merged into an output frame).
* ``src``: index of the input frame an output frame came from (-1 if none).

All multi-byte header fields inside frames are network byte order; all fields
of ``meta`` are host integers.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

# pcap LINKTYPE_* values understood by the parser.
LINK_NULL = 0          # BSD loopback: 4-byte address family in host byte order
LINK_ETHERNET = 1
LINK_RAW = 101         # raw IPv4 or IPv6, version from the first nibble
LINK_LOOP = 108        # OpenBSD loopback: 4-byte address family, network order
LINK_LINUX_SLL = 113   # Linux cooked capture v1 (16-byte header)
LINK_IPV4 = 228
LINK_IPV6 = 229
LINK_LINUX_SLL2 = 276  # Linux cooked capture v2 (20-byte header)
LINK_DLT_RAW_12 = 12   # DLT_RAW as written by some platforms
LINK_DLT_RAW_14 = 14

META_DTYPE = np.dtype(
    [
        # virtio_net_hdr
        ("vnet_flags", np.uint8),
        ("gso_type", np.uint8),
        ("hdr_len", np.uint16),
        ("gso_size", np.uint16),
        ("csum_start", np.uint16),
        ("csum_offset", np.uint16),
        ("num_buffers", np.uint16),
        # parsed layout
        ("link", np.uint16),
        ("vlan_count", np.uint8),
        ("l4_proto", np.uint8),
        ("l3_proto", np.uint16),
        ("l3_hdr_len", np.uint16),
        ("ext_len", np.uint16),
        ("l4_hdr_len", np.uint16),
        ("pflags", np.uint16),
        ("status", np.uint16),
        ("csum", np.uint16),
        ("l3_off", np.int32),
        ("l3_end", np.int32),
        ("l4_off", np.int32),
        ("pay_off", np.int32),
        ("pay_len", np.int32),
        ("dst_off", np.int32),
        ("seg", np.int32),
        ("src", np.int32),
    ],
    align=True,
)


def new_meta(n: int, link: int = LINK_ETHERNET) -> np.ndarray:
    """A zeroed meta array of ``n`` records with ``link`` set and layers marked absent."""
    meta = np.zeros(n, dtype=META_DTYPE)
    meta["link"] = link
    for f in ("l3_off", "l3_end", "l4_off", "pay_off", "dst_off", "src"):
        meta[f] = -1
    return meta


def u32_view(buf: np.ndarray) -> np.ndarray:
    """A ``uint32`` view of the 4-byte-aligned prefix of ``buf`` for word-wise kernels.

    Returns an empty array when ``buf`` does not start 4-byte aligned (kernels
    then fall back to byte loops). Words are read in host (little-endian) order.
    """
    if buf.size < 4 or not buf.flags.c_contiguous:
        return _NO_WORDS
    # numpy marks a view of misaligned memory as not aligned; asking the flag is several
    # times cheaper than reading the address through buf.ctypes
    words = buf[: buf.size & ~3].view(np.uint32)
    return words if words.flags.aligned else _NO_WORDS


_NO_WORDS = np.empty(0, np.uint32)


class PacketBatch:
    """Frames in a byte arena: ``buf``, ``off``, ``len``, ``meta``, optional ``ts``.

    Attributes
    ----------
    buf : np.ndarray of uint8
        The arena. Frames are byte ranges of it; it is never copied by the batch.
    off, len : np.ndarray of int64
        Start offset and length in bytes of each frame in ``buf``.
    meta : np.ndarray of META_DTYPE
        Per-frame metadata (see module docstring).
    ts : np.ndarray of int64 or None
        Per-frame timestamp, nanoseconds since the Unix epoch.
    wire_len : np.ndarray of int64 or None
        Per-frame original length on the wire (pcap ``orig_len``); ``None`` means
        equal to ``len``.
    iface : np.ndarray of int32 or None
        Per-frame interface index (pcapng interface id); ``None`` means 0.
    """

    __slots__ = ("buf", "off", "len", "meta", "ts", "wire_len", "iface", "_w32")

    def __init__(self, buf, off, len, meta=None, ts=None, wire_len=None, iface=None, link=LINK_ETHERNET):
        self.buf = np.asarray(buf, dtype=np.uint8).reshape(-1) if not isinstance(buf, np.ndarray) else buf
        if self.buf.dtype != np.uint8 or self.buf.ndim != 1:
            raise TypeError("buf must be a 1-D uint8 array")
        self.off = np.ascontiguousarray(off, dtype=np.int64)
        self.len = np.ascontiguousarray(len, dtype=np.int64)
        n = self.off.shape[0]
        if self.len.shape[0] != n:
            raise ValueError("off and len differ in length")
        # (compared without adding: off + len could wrap past 2**63 and pass)
        if n and (int(self.off.min()) < 0 or int(self.len.min()) < 0
                  or bool((self.off > self.buf.size - self.len).any())):
            raise ValueError("a frame lies outside buf")
        if meta is None:
            meta = new_meta(n, link)
        elif meta.dtype != META_DTYPE or meta.shape[0] != n:
            raise ValueError("meta must be META_DTYPE with one record per frame")
        elif meta.dtype is not META_DTYPE:
            # an equal dtype that is another object (after unpickling, say) makes Numba look
            # its record type up the slow way on every kernel call: ~1.2 us per argument
            meta = meta.view(META_DTYPE)
        self.meta = meta
        self.ts = None if ts is None else np.ascontiguousarray(ts, dtype=np.int64)
        self.wire_len = None if wire_len is None else np.ascontiguousarray(wire_len, dtype=np.int64)
        self.iface = None if iface is None else np.ascontiguousarray(iface, dtype=np.int32)
        self._w32 = None

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_frames(cls, frames: Iterable[bytes], vnet: Sequence | np.ndarray | None = None,
                    link: int = LINK_ETHERNET, ts=None, align: int = 64) -> "PacketBatch":
        """Copy ``frames`` (bytes-like) into a fresh arena, each frame ``align``-byte aligned.

        ``vnet`` optionally gives one virtio_net_hdr per frame, either as 10/12-byte
        ``bytes`` (little-endian) or as tuples ``(flags, gso_type, hdr_len,
        gso_size, csum_start, csum_offset)``.
        """
        frames = [memoryview(f).cast("B") for f in frames]
        n = len(frames)
        lens = np.fromiter((f.nbytes for f in frames), dtype=np.int64, count=n)
        padded = (lens + (align - 1)) // align * align
        offs = np.zeros(n, np.int64)
        if n:
            np.cumsum(padded[:-1], out=offs[1:])
        total = int(padded.sum()) if n else 0
        buf = np.zeros(max(total, 4), np.uint8)
        for f, o in zip(frames, offs):
            buf[o:o + f.nbytes] = np.frombuffer(f, np.uint8)
        b = cls(buf, offs, lens, ts=ts, link=link)
        if vnet is not None:
            from . import vnet as _vnet
            _vnet.load_into_meta(b.meta, vnet)
        return b

    @classmethod
    def empty(cls, link: int = LINK_ETHERNET) -> "PacketBatch":
        return cls(np.zeros(4, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64), link=link)

    # -- access ---------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.off.shape[0])

    @property
    def w32(self) -> np.ndarray:
        """Cached ``uint32`` view of ``buf`` (see :func:`u32_view`)."""
        if self._w32 is None:
            self._w32 = u32_view(self.buf)
        return self._w32

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as a ``uint8`` view into ``buf`` (no copy)."""
        o = int(self.off[i])
        return self.buf[o:o + int(self.len[i])]

    def __getitem__(self, i):
        if isinstance(i, slice) or (isinstance(i, np.ndarray) and i.ndim == 1) or isinstance(i, list):
            return self.select(i)
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {i} out of range for a batch of {n}")
        return self.frame(i)

    def __iter__(self):
        for i in range(len(self)):
            yield self.frame(i)

    def select(self, idx) -> "PacketBatch":
        """A batch of the frames ``idx`` (slice, index array or boolean mask); shares ``buf``."""
        return PacketBatch(
            self.buf, self.off[idx], self.len[idx], self.meta[idx].copy() if not isinstance(idx, slice) else self.meta[idx],
            None if self.ts is None else self.ts[idx],
            None if self.wire_len is None else self.wire_len[idx],
            None if self.iface is None else self.iface[idx],
        )

    def to_frames(self) -> list[bytes]:
        """Every frame as ``bytes`` (copies)."""
        buf = self.buf
        return [buf[o:o + n].tobytes() for o, n in zip(self.off.tolist(), self.len.tolist())]

    @property
    def nbytes(self) -> int:
        """Sum of frame lengths in bytes."""
        return int(self.len.sum())

    def compact(self) -> "PacketBatch":
        """A copy whose arena holds just these frames, contiguous and 64-byte aligned."""
        out = PacketBatch.from_frames(self.to_frames())
        out.meta[:] = self.meta
        out.ts = None if self.ts is None else self.ts.copy()
        out.wire_len = None if self.wire_len is None else self.wire_len.copy()
        out.iface = None if self.iface is None else self.iface.copy()
        return out

    @staticmethod
    def concat(batches: Sequence["PacketBatch"]) -> "PacketBatch":
        """One batch holding the frames of ``batches`` in order (copies into a new arena)."""
        batches = list(batches)
        if not batches:
            return PacketBatch.empty()
        frames = [f for b in batches for f in b.to_frames()]
        out = PacketBatch.from_frames(frames)
        if len(out):
            out.meta[:] = np.concatenate([b.meta for b in batches])
        if any(b.ts is not None for b in batches):
            out.ts = np.concatenate([b.ts if b.ts is not None else np.zeros(len(b), np.int64) for b in batches])
        if any(b.wire_len is not None for b in batches):
            out.wire_len = np.concatenate([b.wire_len if b.wire_len is not None else b.len for b in batches])
        if any(b.iface is not None for b in batches):
            out.iface = np.concatenate([b.iface if b.iface is not None else np.zeros(len(b), np.int32) for b in batches])
        return out

    def __add__(self, other: "PacketBatch") -> "PacketBatch":
        return PacketBatch.concat([self, other])

    def __repr__(self) -> str:
        return f"PacketBatch({len(self)} frames, {self.nbytes} bytes)"


def trusted_batch(buf, off, length, meta, ts=None, w32=None) -> PacketBatch:
    """A PacketBatch over arrays a kernel or a port has just filled, built without the
    constructor's checks and conversions (reductions over off/len cost more than a small
    burst's work): the caller guarantees a 1-D uint8 ``buf``, int64 ``off``/``len`` and a
    META_DTYPE ``meta`` of one entry per frame, every frame inside ``buf``."""
    b = PacketBatch.__new__(PacketBatch)
    b.buf = buf
    b.off = off
    b.len = length
    b.meta = meta
    b.ts = ts
    b.wire_len = None
    b.iface = None
    b._w32 = w32
    return b


class OutputArena:
    """A preallocated output area that kernels fill without reallocating.

    ``buf`` holds ``capacity`` bytes; ``off``/``len``/``meta``/``ts`` hold up to
    ``max_frames`` frames. A kernel writes frames at increasing offsets and
    returns how many it wrote (``n``) and the bytes used (``used``); the Python
    layer records them with :meth:`commit`. :meth:`batch` returns a
    :class:`PacketBatch` view of what was written; :meth:`reset` reuses the arena.
    """

    __slots__ = ("buf", "off", "len", "meta", "ts", "n", "used", "_w32")

    def __init__(self, capacity: int, max_frames: int):
        cap = max(64, (int(capacity) + 63) // 64 * 64)
        self.buf = np.zeros(cap, np.uint8)
        self.off = np.zeros(max_frames, np.int64)
        self.len = np.zeros(max_frames, np.int64)
        self.meta = new_meta(max_frames)
        self.ts = np.zeros(max_frames, np.int64)
        self.n = 0
        self.used = 0
        self._w32 = None

    @property
    def w32(self) -> np.ndarray:
        if self._w32 is None:
            self._w32 = u32_view(self.buf)
        return self._w32

    @property
    def capacity(self) -> int:
        return int(self.buf.size)

    @property
    def max_frames(self) -> int:
        return int(self.off.size)

    def commit(self, n: int, used: int) -> None:
        self.n = int(n)
        self.used = int(used)

    def reset(self) -> None:
        self.n = 0
        self.used = 0

    def batch(self, with_ts: bool = True) -> PacketBatch:
        """A PacketBatch view of the ``n`` frames written so far (shares memory)."""
        n = self.n
        b = PacketBatch(self.buf, self.off[:n], self.len[:n], self.meta[:n], self.ts[:n] if with_ts else None)
        b._w32 = self.w32
        return b
