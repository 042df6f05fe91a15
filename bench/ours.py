"""Our side of the peer comparison: one adapter per workload op, on the public API.

``prepare(workload, frames)`` returns a zero-argument callable that processes the
whole workload once, in bursts of ``workload.burst`` frames, plus a description of
what it measures; it raises :class:`Unavailable` when the engine for the op has not
landed (the comparison suite then skips that row and says why). Every callable
checks its own result once in ``prepare`` (verdicts, segment counts), so a broken
path is never timed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from offload.batch import PacketBatch
from offload.csum import raw_sum, sum_span


class Unavailable(Exception):
    """The engine for this op is not there (yet); the message says what is missing."""


def _batch(frames) -> PacketBatch:
    return PacketBatch.from_frames(frames, align=64)


def _bursts(batch: PacketBatch, burst: int) -> list[PacketBatch]:
    """Views of ``batch`` of ``burst`` frames each over the same arena (no copy)."""
    return [PacketBatch(batch.buf, batch.off[b:b + burst], batch.len[b:b + burst])
            for b in range(0, len(batch), burst)]


@njit(cache=True, nogil=True)
def _raw_sums(buf, w32, off, length, out):
    for i in range(off.shape[0]):
        out[i] = sum_span(buf, w32, off[i], length[i])
    return off.shape[0]


def _raw(w, frames):
    b = _batch(frames)
    out = np.zeros(len(b), np.uint64)
    bursts = _bursts(b, w.burst)

    def run():
        for x in bursts:
            _raw_sums(x.buf, x.w32, x.off, x.len, out)

    run()
    if any(int(out[i]) != raw_sum(frames[i]) for i in range(min(4, len(frames)))):
        raise AssertionError("raw sum disagrees with offload.csum.raw_sum")
    return run, "offload.csum.sum_span per span from one @njit loop per burst (the batch primitive)"


def _csum(w, frames):
    from offload import csum
    if not hasattr(csum, "verify_batch") or not hasattr(csum, "fill_batch"):
        raise Unavailable("offload.csum.verify_batch/fill_batch not on this branch yet")
    b = _batch(frames)
    bursts = _bursts(b, w.burst)
    n = max(len(x) for x in bursts)
    detail = np.empty((n, 6), np.int32)
    if w.op.startswith("verify"):
        def run():
            for x in bursts:
                csum.verify_batch(x, parse=True, detail=detail)
        bad = sum(csum.verify_batch(x, parse=True).count for x in bursts)
        if bad:
            raise AssertionError(f"{bad} frames failed our verification")
        return run, "parse + verify IPv4 header and TCP checksums, in place, verdict per frame in meta"

    def run():
        for x in bursts:
            csum.fill_batch(x, parse=True, detail=detail)
    run()
    if b.buf.tobytes() != _batch(frames).buf.tobytes():
        raise AssertionError("fill changed valid checksums")
    return run, "parse + compute and write IPv4 header and TCP checksums in place"


def _complete(w, frames):
    from offload import csum
    if not hasattr(csum, "complete_batch"):
        raise Unavailable("offload.csum.complete_batch not on this branch yet")
    b = _batch(frames)
    b.meta["csum_start"] = w.params["csum_start"]
    b.meta["csum_offset"] = w.params["csum_offset"]
    bursts = _bursts(b, w.burst)
    for x in bursts:
        x.meta["csum_start"] = w.params["csum_start"]
        x.meta["csum_offset"] = w.params["csum_offset"]
        x.meta["vnet_flags"] = 1
    done = sum(csum.complete_batch(x) for x in bursts)
    if done != len(b):
        raise AssertionError(f"completed {done} of {len(b)} frames")
    # the completed frames must be the frames with full checksums (checked against scapy in
    # tests/test_bench_peers.py through the same recipe)
    for i in range(min(8, len(b))):
        want = bytearray(frames[i])
        field = 34 + 16
        got = bytes(b.frame(i))
        if got[:field] != bytes(want[:field]) or got[field + 2:] != bytes(want[field + 2:]):
            raise AssertionError("completion touched bytes outside the checksum field")

    def run():
        for x in bursts:
            x.meta["vnet_flags"] = 1   # completion clears NEEDS_CSUM: set it again (timed, ~1 ns/frame)
            csum.complete_batch(x)
    return run, ("offload.csum.complete_batch per burst: sum from csum_start to the end, inverted sum written "
                 "(skb_checksum_help); re-arming NEEDS_CSUM in meta per burst is included")


def _parse(w, frames):
    from offload.parse import parse_batch
    b = _batch(frames)
    bursts = _bursts(b, w.burst)

    def run():
        for x in bursts:
            parse_batch(x)
    run()
    if any(int((x.meta["l4_off"] < 0).sum()) for x in bursts):
        raise AssertionError("parse missed an L4 header")
    return run, "offload.parse.parse_batch: L2/L3/L4 offsets, protocols, lengths into meta"


def _gso(w, frames):
    from offload import gso
    b = _batch(frames)
    bursts = _bursts(b, w.burst)
    mss = int(w.params["mss"])
    udp = w.op == "uso4"
    first = gso.segment(bursts[0], mss=mss, udp="uso", csum="full")
    arena = first.arena
    nseg = 0
    for x in bursts:
        r = gso.segment(x, mss=mss, udp="uso", csum="full", arena=arena)
        if r.refused or len(r.out) == 0:
            raise AssertionError(f"GSO refused the workload: {r.refused}")
        nseg += len(r.out)

    def run():
        for x in bursts:
            gso.segment(x, mss=mss, udp="uso", csum="full", arena=arena)
    run.extra = {"out_units": nseg}
    what = "USO datagrams" if udp else "TCP segments"
    return run, (f"offload.gso.segment(mss={mss}, csum='full') per burst of {w.burst}: parse + flat {what} "
                 "in a reused OutputArena, IPv4 header and L4 checksums written")


def _gro(w, frames):
    from offload import gro
    b = _batch(frames)
    bursts = _bursts(b, w.burst)
    c = gro.Coalescer(max_burst=w.burst, csum="full", verify=True)
    nout = sum(len(c.run(x)) for x in bursts)
    # Linux's rules merge nothing when each segment arrives before its predecessor (reorder
    # workload); every in-order workload with two segments of a flow per burst must merge
    if nout >= len(b) and w.params.get("flows", 1) * 2 <= w.burst and "reorder" not in w.name:
        raise AssertionError(f"GRO merged nothing ({nout} frames out of {len(b)})")

    def run():
        for x in bursts:
            c.run(x)
    run.extra = {"out_units": nout}
    return run, (f"offload.gro.Coalescer(csum='full', verify=True).run per burst of {w.burst}: parse, IPv4+TCP "
                 f"checksums of every input verified, merged, flushed as flat frames with full checksums "
                 f"({nout} frames out)")


def _gro_table(w, frames):
    from offload import gro
    b = _batch(frames)
    bursts = _bursts(b, w.burst)
    flows = int(w.params.get("flows", 1))
    t = gro.GroTable(max_flows=max(flows, 64), max_held=8192, csum="full", verify=True)

    def once():
        n = 0
        for x in bursts:
            n += len(t.push(x))
        return n + len(t.flush())
    nout = once()

    def run():
        for x in bursts:
            t.push(x)
        t.flush()
    run.extra = {"out_units": nout}
    return run, (f"offload.gro.GroTable(max_flows={max(flows, 64)}, csum='full', verify=True): push per burst of "
                 f"{w.burst}, one table across bursts, flush at the end; inputs verified, flat output with full "
                 f"checksums ({nout} frames out)")


def _ufo(w, frames):
    from offload import gso
    b = _batch(frames)
    bursts = _bursts(b, w.burst)
    mtu = 20 + 8 + int(w.params["mss"])
    arena = gso.fragment_udp(bursts[0], mtu=mtu, csum="full").arena
    nout = sum(len(gso.fragment_udp(x, mtu=mtu, csum="full", arena=arena).out) for x in bursts)

    def run():
        for x in bursts:
            gso.fragment_udp(x, mtu=mtu, csum="full", arena=arena)
    run.extra = {"out_units": nout}
    return run, (f"offload.gso.fragment_udp(mtu={mtu}, csum='full'): UFO, IPv4 fragments as flat frames, UDP "
                 "checksum over the whole datagram and IPv4 header checksums written (the form DPDK 22.11 does)")


VARIANTS = {"gro4": [("offload-table", _gro_table)], "uso4": [("offload-ufo", _ufo)]}


def prepare_variant(w, impl, frames):
    """(callable, notes) for an extra form of ours (``VARIANTS``); raises :class:`Unavailable`."""
    fn = dict(VARIANTS.get(w.op, []))[impl]
    try:
        return fn(w, frames)
    except ImportError as e:
        raise Unavailable(f"engine for {w.op} not on this branch yet ({e})") from None


def _pcap(w, frames):
    from offload import pcap
    from offload.parse import parse_batch
    path = w.file

    def once():
        return pcap.read(path, parse=True)
    b = once()
    if len(b) != len(frames) or bytes(b.frame(len(b) - 1)) != frames[-1]:
        raise AssertionError("offload.pcap read different frames")
    # the walk's parse must be the parser's: same meta as parse_batch afterwards
    sep = pcap.read(path)
    parse_batch(sep)
    if not np.array_equal(sep.meta, b.meta):
        raise AssertionError("pcap.read(parse=True) parsed differently from parse_batch")

    def run():
        once()
    return run, ("offload.pcap.read(parse=True): mmap of the file (page cache), every frame parsed during "
                 "the record walk, one call for the whole file")


def _pcapw(w, frames):
    from offload import pcap
    import io
    b = _batch(frames)
    data = pcap.to_bytes(b)
    from bench.workloads import read_pcap
    tmp = io.BytesIO(data)
    got = pcap.read(np.frombuffer(tmp.getbuffer(), np.uint8))
    if len(got) != len(frames) or bytes(got.frame(len(got) - 1)) != frames[-1]:
        raise AssertionError("offload.pcap.to_bytes wrote different frames")
    del read_pcap

    def run():
        pcap.to_bytes(b)
    return run, "offload.pcap.to_bytes of the whole batch (classic pcap into a BytesIO), one call"


def memcpy_ref(frames):
    """np.copyto of the same bytes (the frames' arena) into a preallocated array."""
    b = _batch(frames)
    dst = np.empty_like(b.buf)

    def run():
        np.copyto(dst, b.buf)
    return run, "np.copyto of the frames' arena (same bytes, 64-byte aligned frames)"


ADAPTERS = {
    "raw": _raw,
    "verify4": _csum, "verify6": _csum, "fill4": _csum, "fill6": _csum, "complete4": _complete,
    "parse": _parse,
    "gso4": _gso, "gso6": _gso, "uso4": _gso,
    "gro4": _gro,
    "pcap": _pcap,
    "pcapw": _pcapw,
}


def prepare(w, frames):
    """(callable, notes) for workload ``w``; raises :class:`Unavailable`."""
    fn = ADAPTERS.get(w.op)
    if fn is None:
        raise Unavailable(f"no adapter for op {w.op!r} yet (engine not landed)")
    try:
        return fn(w, frames)
    except ImportError as e:
        raise Unavailable(f"engine for {w.op} not on this branch yet ({e})") from None
