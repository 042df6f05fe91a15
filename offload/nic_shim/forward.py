"""The offloading datapath: frames between two ports, with GRO, GSO and checksum
completion where one side cannot do them -- what netmap's VALE switch does
between a virtio-net port and a NIC.

For each direction X -> Y, per burst:

1. ``X.rx_burst``;
2. ``gro`` and Y accepts super-packets: coalesce the burst (``offload.gro.Coalescer``,
   Linux's rules, CHECKSUM_PARTIAL output). As in Linux, frames with a partial
   checksum (NEEDS_CSUM) merge like verified ones, and a frame GRO does not merge
   -- a super-packet from a tap, say (counted in ``gro_bypass``) -- leaves with the
   virtio header it came with, in its place among its flow's frames;
3. Y does not accept super-packets: segment super-packets (``gso``,
   ``offload.gso.segment`` in full-checksum mode, which also completes the
   partial checksums of the frames it passes) and complete CHECKSUM_PARTIAL
   frames (``csum``, ``offload.csum.complete_batch``). A frame Y cannot take and that the
   forwarder was not allowed to fix is dropped and counted
   (``drop_needs_gso`` / ``drop_needs_csum``): putting a super-packet or a
   half-computed checksum on a wire would only make the receiver drop it;
4. ``Y.tx_burst`` until every frame is taken (bounded; the rest is counted in
   ``drop_tx_full``); release X's batch.

Counters: per direction ``rx``, ``tx``, ``gro_in``/``gro_out``,
``gso_in``/``gso_out``, ``csum_completed``, drops; see :meth:`Forwarder.stats`.
``run()`` stops cleanly on ``stop()`` (or SIGINT in the CLI): the batch in hand
is finished, TX is flushed, every buffer goes back and the accounting is checked.

Every kernel is compiled when the Forwarder is built (``warm_up``): a TCP
handshake must not wait seconds for Numba on its first frame. GRO works per
burst (aggregates never wait for a later burst), so it adds no latency.
"""

from __future__ import annotations

import select
import threading
import time

import numpy as np

from .. import status as _status
from .. import vnet
from .port import Port

_GRO_ALREADY_GSO = _status.GRO_ALREADY_GSO


def _have(mod: str):
    try:
        return __import__(f"offload.{mod}", fromlist=["_"])
    except ImportError:
        return None


class Direction:
    """One direction X -> Y with its pipeline and counters."""

    def __init__(self, src: Port, dst: Port, gso: bool, gro: bool, csum: bool, burst: int):
        self.src = src
        self.dst = dst
        self.burst = burst
        self.do_gro = bool(gro and dst.accepts_gso)
        self.do_gso = bool(gso and not dst.accepts_gso)
        self.do_csum = bool((csum or gso) and not dst.accepts_gso)
        self.fix_needed = not dst.accepts_gso
        self.c = dict(rx=0, tx=0, rx_bytes=0, tx_bytes=0, gro_in=0, gro_out=0, gro_bypass=0, gso_in=0, gso_out=0,
                      csum_completed=0, gso_refused=0, drop_needs_gso=0, drop_needs_csum=0, drop_tx_full=0)
        self._gro = self._gso = self._complete = None
        if self.do_gro:
            self._gro = _gro_engine(burst)
        if self.do_gso:
            self._gso = _gso_engine(burst)
        if self.do_csum:
            from .. import csum as _csum
            self._complete = getattr(_csum, "complete_batch", None)
            if self._complete is None and self._gso is None:
                raise RuntimeError("checksum completion requested, but offload.csum.complete_batch is not "
                                   "in this build (GSO's full-checksum mode would do it: add --gso)")

    def warm_up(self) -> None:
        """Compile every kernel of this direction now (a TCP super-packet and a plain frame
        through the pipeline), so the first real frames do not wait for Numba."""
        b = _warm_batch()
        if self._gro is not None:
            self._gro(b.compact())
        if self._gso is not None:
            self._gso(b.compact())
        if self._complete is not None:
            self._complete(b.compact())

    def step(self) -> int:
        """Move one burst. Returns the number of frames received."""
        b = self.src.rx_burst(self.burst)
        n = len(b)
        if n == 0:
            return 0
        c = self.c
        c["rx"] += n
        c["rx_bytes"] += int(b.len.sum())
        try:
            out = b
            if self._gro is not None:
                # every frame goes through GRO: super-packets and frames it cannot merge come
                # out as they went in (virtio header included), partial checksums merge
                out = self._gro(b)
                c["gro_in"] += n
                c["gro_out"] += len(out)
                c["gro_bypass"] += int(np.count_nonzero(b.meta["status"] == _GRO_ALREADY_GSO))
            if self.fix_needed:
                out = self._fix(out)
            self._send(out)
        finally:
            self.src.release(b)
        return n

    def _fix(self, b):
        """Make every frame something ``dst`` can take: segment, complete, or drop."""
        meta = b.meta
        gso = (meta["gso_type"] & 0x7F) != vnet.GSO_NONE
        partial = (meta["vnet_flags"] & vnet.F_NEEDS_CSUM) != 0
        if self._gso is not None and (gso.any() or partial.any()):
            # GSO in full-checksum mode cuts super-packets and completes partial
            # checksums of the frames it passes: one pass over the burst
            k = int(gso.sum())
            n_in = len(b)
            before = self._gso.refused
            b = self._gso(b)
            refused = self._gso.refused - before
            self.c["gso_refused"] += refused
            self.c["gso_in"] += k
            self.c["gso_out"] += len(b) - (n_in - k - refused) if k else 0
            self.c["csum_completed"] += int(partial.sum() - (partial & gso).sum())
        elif gso.any():
            self.c["drop_needs_gso"] += int(gso.sum())
            b = b.select(~gso)
        partial = (b.meta["vnet_flags"] & vnet.F_NEEDS_CSUM) != 0
        if partial.any():
            if self._complete is None:
                self.c["drop_needs_csum"] += int(partial.sum())
                b = b.select(~partial)
            else:
                self.c["csum_completed"] += int(self._complete(b))
                still = (b.meta["vnet_flags"] & vnet.F_NEEDS_CSUM) != 0
                if still.any():      # offsets outside the frame: refused by the checksum engine
                    self.c["drop_needs_csum"] += int(still.sum())
                    b = b.select(~still)
        return b

    def _send(self, b):
        total = len(b)
        done = 0
        tries = 0
        while done < total:
            part = b if done == 0 else b.select(slice(done, total))
            k = self.dst.tx_burst(part)
            done += k
            if k == 0:
                tries += 1
                if tries > 2000:
                    self.c["drop_tx_full"] += total - done
                    break
                if tries > 50:
                    time.sleep(0.0001)
        self.c["tx"] += done
        self.c["tx_bytes"] += int(b.len[:done].sum())


def _gro_engine(burst):
    """Burst GRO with Linux's rules (``offload.gro.Coalescer``): the output is a view of the
    coalescer's arena, valid until its next run -- the forwarder transmits it before that."""
    mod = _have("gro")
    if mod is None or not hasattr(mod, "Coalescer"):
        raise RuntimeError("GRO requested, but offload.gro (Coalescer) is not in this build")
    co = mod.Coalescer(max_burst=burst, csum="partial")

    def run(b):
        return co.run(b)
    run.counters = lambda: co.counters
    return run


def _gso_engine(burst):
    """Segmentation from each frame's virtio header (``offload.gso.segment``, csum="full":
    segments valid on the wire, and NEEDS_CSUM frames that need no cutting completed)."""
    mod = _have("gso")
    if mod is None or not hasattr(mod, "segment"):
        raise RuntimeError("GSO requested, but offload.gso (segment) is not in this build")
    from ..batch import OutputArena
    # worst case per input frame: 64 KiB of payload cut into UDP_MAX_SEGMENTS (128) datagrams
    arena = OutputArena(burst * (96 << 10), burst * 128)

    def run(b):
        r = mod.segment(b, use_vnet=True, csum="full", refused="drop", arena=arena)
        run.refused += sum(r.refused.values())
        return r.out
    run.refused = 0
    return run


def _warm_batch():
    import struct
    from ..batch import PacketBatch
    payload = bytes(300)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 1, 0x4000, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    tcp = struct.pack(">HHIIBBHHH", 1000, 2000, 1, 1, 0x50, 0x18, 512, 0, 0)
    eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    frame = eth + ip + tcp + payload
    return PacketBatch.from_frames([frame, frame[:54]],
                                   vnet=[(vnet.F_NEEDS_CSUM, vnet.GSO_TCPV4, 54, 100, 34, 16), (0, 0, 0, 0, 0, 0)])


class Forwarder:
    """Forward frames between ports ``a`` and ``b`` in both directions.

    ``gso``: segment super-packets for a port that cannot take them (and fill their
    checksums); ``gro``: coalesce frames for a port that can take super-packets;
    ``csum``: complete CHECKSUM_PARTIAL frames for a port that cannot take them.
    ``burst``: frames per rx_burst. ``busy_poll``: never sleep in poll().
    """

    def __init__(self, a: Port, b: Port, gso: bool = False, gro: bool = False, csum: bool = False,
                 burst: int = 64, busy_poll: bool = False):
        self.a, self.b = a, b
        self.ab = Direction(a, b, gso, gro, csum, burst)
        self.ba = Direction(b, a, gso, gro, csum, burst)
        self.busy_poll = busy_poll
        for d in (self.ab, self.ba):
            d.warm_up()
        for port in (a, b):
            port.warm_up()
        self._stop = threading.Event()
        self.polls = 0

    def poll_once(self) -> int:
        """One burst each way. Returns frames received."""
        return self.ab.step() + self.ba.step()

    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: float | None = None, idle_timeout_ms: int = 50) -> dict:
        """Forward until :meth:`stop` (or ``duration`` seconds). Returns :meth:`stats`."""
        p = select.poll()
        for port in (self.a, self.b):
            p.register(port.fileno(), select.POLLIN)
        end = None if duration is None else time.monotonic() + duration
        idle = 0
        while not self._stop.is_set():
            n = self.poll_once()
            if n:
                idle = 0
                continue
            idle += 1
            if end is not None and time.monotonic() > end:
                break
            if not self.busy_poll and idle > 4:
                self.polls += 1
                p.poll(idle_timeout_ms)
        self.drain()
        return self.stats()

    def drain(self) -> None:
        """Flush what is queued for transmit (AF_XDP completions) and return buffers."""
        for port in (self.a, self.b):
            if hasattr(port, "flush"):
                port.flush(0.5)
            if hasattr(port, "release_all"):
                port.release_all()

    def check_frames(self) -> dict:
        return {"a": self.a.check_frames(), "b": self.b.check_frames()}

    def stats(self) -> dict:
        return {"a_to_b": dict(self.ab.c), "b_to_a": dict(self.ba.c),
                "ports": {"a": _plain(self.a.stats()), "b": _plain(self.b.stats())},
                "pipeline": {"a_to_b": self.ab_desc(self.ab), "b_to_a": self.ab_desc(self.ba)}}

    @staticmethod
    def ab_desc(d: Direction) -> str:
        parts = [p for p, on in (("gro", d.do_gro), ("gso", d.do_gso), ("csum", d.do_csum)) if on]
        return "+".join(parts) or "pass"


def _plain(d):
    return {k: (int(v) if isinstance(v, (np.integer,)) else v) for k, v in d.items()}
