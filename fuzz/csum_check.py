"""Invariants for the checksum engine on hostile frames (shared by the pytest target and
the campaign): verify agrees with the independent byte-loop oracle; fill changes nothing
but checksum fields and leaves every checkable frame valid; complete (NEEDS_CSUM, any
virtio offsets) writes only inside its frame."""

from __future__ import annotations

import numpy as np

from fuzz.oracles import csum_ok
from offload import csum as C, status as S
from offload.batch import PacketBatch, new_meta
from offload.parse import parse_frames

GOOD = {S.OK, S.CSUM_NONE}
BAD = {S.CSUM_BAD_IP, S.CSUM_BAD_L4, S.CSUM_PARTIAL, S.CSUM_UDP_ZERO_V6}
GAP = 64
FILL = 0xA5


def arena(frames, links, vnet=None):
    """Frames in one buffer with GAP guard bytes (FILL) before and after each."""
    offs, pos = [], GAP
    for f in frames:
        offs.append(pos)
        pos += len(f) + GAP
    buf = np.full(pos + 3, FILL, np.uint8)
    for o, f in zip(offs, frames):
        buf[o:o + len(f)] = np.frombuffer(f, np.uint8)
    meta = new_meta(len(frames))
    meta["link"] = links
    b = PacketBatch(buf, offs, [len(f) for f in frames], meta=meta)
    if vnet is not None:
        from offload import vnet as V
        V.load_into_meta(b.meta, vnet)
    return b


def _outside_frames(b):
    mask = np.ones(b.buf.size, bool)
    for o, n in zip(b.off, b.len):
        mask[o:o + n] = False
    return mask


def violations(frames, links, hdrs) -> list[str]:
    v = []
    # verify vs the oracle
    b = arena(frames, links)
    before = b.buf.copy()
    r = C.verify_batch(b)
    if not np.array_equal(before, b.buf):
        v.append("verify wrote into the buffer")
    ora = np.zeros(len(b), np.int64)
    m2 = b.meta.copy()
    parse_frames(b.buf, b.off, b.len, m2)
    csum_ok(b.buf, b.off, b.len, m2, ora)
    for i, code in enumerate(b.meta["csum"].astype(int)):
        if ora[i] == 1 and code in BAD and code != S.CSUM_UDP_ZERO_V6:
            v.append(f"frame {i}: oracle says valid, verify says {S.NAMES.get(code, code)}")
        if ora[i] == 0 and code in GOOD:
            v.append(f"frame {i}: oracle says wrong, verify says {S.NAMES.get(code, code)}")
    # fill: only checksum fields change; checkable frames end valid
    b = arena(frames, links)
    before = b.buf.copy()
    C.fill_batch(b)
    out = _outside_frames(b)
    if not np.array_equal(before[out], b.buf[out]):
        v.append("fill wrote outside its frames")
    m3 = b.meta.copy()
    parse_frames(b.buf, b.off, b.len, m3)
    after = np.zeros(len(b), np.int64)
    csum_ok(b.buf, b.off, b.len, m3, after)
    for i in range(len(b)):
        if ora[i] in (0, 1) and after[i] == 0 and int(b.meta["csum"][i]) in GOOD | {S.OK}:
            v.append(f"frame {i}: filled ({S.NAMES.get(int(b.meta['csum'][i]))}) but the oracle finds it wrong")
        d = np.flatnonzero(before[b.off[i]:b.off[i] + b.len[i]] != b.buf[b.off[i]:b.off[i] + b.len[i]])
        if d.size > 6:   # IPv4 header checksum + L4 checksum (+ a UDP 0 -> 0xFFFF) at most
            v.append(f"frame {i}: fill changed {d.size} bytes")
    # complete with arbitrary virtio offsets: only inside the frame
    b = arena(frames, links, hdrs)
    before = b.buf.copy()
    C.complete_batch(b)
    out = _outside_frames(b)
    if not np.array_equal(before[out], b.buf[out]):
        v.append("complete wrote outside its frames")
    for i in range(len(b)):
        d = np.flatnonzero(before[b.off[i]:b.off[i] + b.len[i]] != b.buf[b.off[i]:b.off[i] + b.len[i]])
        if d.size > 2:
            v.append(f"frame {i}: complete changed {d.size} bytes")
    return v
