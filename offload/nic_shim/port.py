"""The one Port interface every backend implements, and ``open_port(spec)``.

Think DPDK's ``rte_eth_rx_burst`` / ``rte_eth_tx_burst``:

* ``rx_burst(max_frames)`` returns a :class:`~offload.batch.PacketBatch` whose
  ``buf`` is the port's own memory (the AF_XDP UMEM, the TPACKET_V3 ring, the tap
  arena): frames are *views*, not copies. They stay valid until the batch is
  given back with ``release(batch)`` (or ``with port.rx(n) as batch:``); until
  then the memory is the caller's and the port will not reuse it.
* ``tx_burst(batch)`` queues the frames (copying them into the port's transmit
  memory) and returns how many of them, from the first, it took. Frames a port
  can never send (too large, malformed virtio header) are *taken* and counted
  as ``tx_dropped`` with status ``SHIM_DROPPED``, so a caller never spins on them.
  Frames past the returned count were not taken: retry them (ring full).
* ``meta`` carries the virtio_net_hdr of a super-packet in both directions
  (``vnet_flags``, ``gso_type``, ``gso_size``, ``csum_start``, ``csum_offset``,
  ``hdr_len``) on ports that speak it (``tap``, ``packet``);
  ``port.accepts_gso`` says whether ``tx_burst`` may be given super-packets and
  partial checksums; if not, the datapath must segment and complete checksums first.
* ``stats()`` returns a dict of counters (``rx_packets``, ``rx_bytes``,
  ``tx_packets``, ``tx_bytes``, ``tx_dropped``, ... plus backend ones).
* ``close()`` gives everything back to the kernel; ports are context managers.

Spec strings: ``afxdp:IFNAME[:QUEUE]`` (all queues when QUEUE is omitted),
``tap:NAME``, ``packet:IFNAME``, ``netmap:IFNAME`` (fails here: see netmap.py).
Options may follow as ``,key=value`` (e.g. ``afxdp:eth0:0,mode=skb,zc=0``).
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..batch import PacketBatch, trusted_batch


class Port:
    """Base class: one network port with burst RX/TX. See the module docstring."""

    kind = "port"
    #: True when tx_burst takes super-packets / CHECKSUM_PARTIAL frames (virtio_net_hdr).
    accepts_gso = False
    #: True when rx_burst may deliver super-packets / partial checksums.
    delivers_gso = False

    def __init__(self, name: str):
        self.name = name
        self.closed = False
        self._stats = dict(rx_packets=0, rx_bytes=0, rx_bursts=0, tx_packets=0, tx_bytes=0,
                           tx_dropped=0, tx_full=0)

    # -- the interface ----------------------------------------------------
    def rx_burst(self, max_frames: int = 64) -> PacketBatch:
        raise NotImplementedError

    def release(self, batch: PacketBatch) -> None:
        raise NotImplementedError

    def tx_burst(self, batch: PacketBatch) -> int:
        raise NotImplementedError

    def fileno(self) -> int:
        """A file descriptor that polls readable when ``rx_burst`` has frames."""
        raise NotImplementedError

    def stats(self) -> dict:
        return dict(self._stats)

    def warm_up(self) -> None:
        """Compile the port's kernels now rather than on the first burst."""

    def check_frames(self) -> dict:
        """Verify the port's buffer accounting; raise AssertionError on a leak.

        Returns the number of buffers in each state."""
        return {}

    def close(self) -> None:
        self.closed = True

    # -- shared bookkeeping of the backends ---------------------------------------
    def _hand_out(self, b: PacketBatch, *entry, nbytes: int | None = None) -> PacketBatch:
        """Record ``b`` as lent to the caller (``entry``: what release needs) and count it
        (``nbytes``: its bytes, when the caller's kernel has summed them already).
        The record holds ``b.off`` itself, so its id cannot be reused while the batch is out."""
        self._outstanding[id(b.off)] = (b.off, *entry)
        st = self._stats
        st["rx_packets"] += len(b)
        st["rx_bytes"] += int(b.len.sum()) if nbytes is None else nbytes
        st["rx_bursts"] += 1
        return b

    def _take_back(self, batch: PacketBatch) -> tuple:
        ent = self._outstanding.pop(id(batch.off), None)
        if ent is None or ent[0] is not batch.off:
            raise ValueError("release: this batch was not returned by this port's rx_burst, or was released already")
        return ent

    def _tx_frames(self, batch: PacketBatch, hlen: int):
        """What a TX burst hands the system: ``(buf, off, len, bad, hdrs)`` -- contiguous
        bytes (a strided buffer is copied: the frames are addressed by pointer), int64
        offsets and lengths, ``bad`` the frames that do not lie inside the buffer (refused,
        never addressed; compared without adding, so no length wraps past the check), and
        the virtio headers from ``meta`` as n records of ``hlen`` bytes (None if 0)."""
        from .. import vnet
        buf = batch.buf
        if buf.ndim != 1 or not buf.flags.c_contiguous:
            buf = np.ascontiguousarray(buf).reshape(-1)
        off = np.ascontiguousarray(batch.off, np.int64)
        ln = np.ascontiguousarray(batch.len, np.int64)
        bad = (off < 0) | (ln < 0) | (off > buf.shape[0] - ln)
        hdrs = None
        if hlen:
            hdrs = vnet.from_meta(batch.meta, mrg=hlen == vnet.HDR_LEN_MRG)
            assert hdrs.itemsize == hlen
        return buf, off, ln, bad, hdrs

    def _tx_count(self, sent: int, dropped: int, nbytes: int) -> int:
        """Count a TX burst (``dropped``: frames taken but refused, also in tx_errors);
        returns the frames taken."""
        st = self._stats
        st["tx_errors"] = st.get("tx_errors", 0) + dropped
        st["tx_packets"] += sent
        st["tx_bytes"] += nbytes
        st["tx_dropped"] += dropped
        return sent + dropped

    # -- conveniences ------------------------------------------------------
    @contextlib.contextmanager
    def rx(self, max_frames: int = 64):
        """``with port.rx(64) as batch:`` releases the batch on exit."""
        b = self.rx_burst(max_frames)
        try:
            yield b
        finally:
            self.release(b)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the port has frames to read (or ``timeout`` seconds pass)."""
        import select
        p = select.poll()
        p.register(self.fileno(), select.POLLIN)
        return bool(p.poll(None if timeout is None else int(timeout * 1000)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if not self.closed:
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}:{self.name}{' closed' if self.closed else ''}>"


def _parse_opts(rest: str) -> tuple[list[str], dict]:
    parts = rest.split(",")
    pos = parts[0].split(":") if parts[0] else []
    opts = {}
    for p in parts[1:]:
        if not p:
            continue
        k, _, v = p.partition("=")
        opts[k.strip()] = v.strip() if v else "1"
    return pos, opts


def open_port(spec: str, netns: str | None = None, **kw) -> Port:
    """Open a port from a spec string (see the module docstring).

    ``netns`` (a name under /run/netns or a path) opens the port inside that
    network namespace; the port's sockets then stay there. Keyword arguments
    override the spec's ``,key=value`` options.
    """
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError(f"port spec {spec!r}: expected KIND:NAME (afxdp:IF[:Q], tap:NAME, packet:IF, netmap:IF)")
    pos, opts = _parse_opts(rest)
    opts.update(kw)
    if kind == "afxdp":
        from .afxdp import AfXdpPort
        if len(pos) > 2:
            raise ValueError(f"port spec {spec!r}: afxdp:IFNAME[:QUEUE]")
        queue = int(pos[1]) if len(pos) == 2 else None
        return AfXdpPort(pos[0], queue=queue, netns=netns, **_typed(opts))
    if kind == "tap":
        from .tap import TapPort
        return TapPort(pos[0], netns=netns, **_typed(opts))
    if kind == "packet":
        from .packet import PacketPort
        return PacketPort(pos[0], netns=netns, **_typed(opts))
    if kind == "netmap":
        from .netmap import NetmapPort
        return NetmapPort(pos[0], netns=netns, **_typed(opts))
    raise ValueError(f"port spec {spec!r}: unknown kind {kind!r} (afxdp, tap, packet, netmap)")


def _typed(opts: dict) -> dict:
    out = {}
    for k, v in opts.items():
        if isinstance(v, str):
            if v.lower() in ("true", "yes", "on"):
                v = True
            elif v.lower() in ("false", "no", "off"):
                v = False
            else:
                try:
                    v = int(v, 0)
                except ValueError:
                    pass
        out[k] = v
    return out


def empty_batch() -> PacketBatch:
    return PacketBatch(np.zeros(4, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))


class MetaPool:
    """Fresh ``meta`` records for bursts without building them field by field each time
    (``new_meta`` costs ~8 us; copying a prepared template of n records ~1 us)."""

    def __init__(self, max_burst: int):
        from ..batch import new_meta
        self.tpl = new_meta(max_burst)
        self._tpl8 = self.tpl.view(np.uint8)
        self._isz = self.tpl.dtype.itemsize

    def take(self, n: int) -> np.ndarray:
        # copied as bytes: a structured-array copy goes field by field (~8x slower)
        out = np.empty(n, self.tpl.dtype)
        np.copyto(out.view(np.uint8), self._tpl8[:n * self._isz])
        return out


def fast_batch(buf, off, length, meta) -> PacketBatch:
    """A PacketBatch over frames a port has just placed itself (their bounds are right by
    construction): skips the constructor's checks, which cost more than a whole burst."""
    return trusted_batch(buf, off, length, meta)
