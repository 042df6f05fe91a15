"""Invariants for reading a damaged capture (shared by the pytest target and the campaign)."""

from __future__ import annotations

import numpy as np

from offload import pcap

MAX_FRAME = 65536


BATCH = 97   # an odd batch size, so damage also lands across batch boundaries


def read_frames(data: bytes, n: int = BATCH, **kw):
    """(batch or None, PcapError or None): what the reader delivers for ``data``, read in
    batches of ``n`` frames (``n=0``: :func:`offload.pcap.read`). Any exception other than
    PcapError propagates (a finding)."""
    if n == 0:
        try:
            return pcap.read(data, **kw), None
        except pcap.PcapError as e:
            return e.batch, e
    parts = []
    err = None
    try:
        for b in pcap.PcapReader(data, **kw).iter_batches(n):
            parts.append(b)
    except pcap.PcapError as e:
        err = e
    if not parts:
        return None, err
    from offload.batch import PacketBatch
    cat = np.concatenate
    b = PacketBatch(parts[0].buf, cat([p.off for p in parts]), cat([p.len for p in parts]),
                    cat([p.meta for p in parts]), cat([p.ts for p in parts]))
    return b, err


def boundaries(batch, fmt: str, size: int) -> np.ndarray:
    """For frame i, a byte offset at or after the end of the record/block that holds it:
    damage at or after it cannot excuse losing frame i."""
    n = len(batch)
    out = np.full(n, size, np.int64)
    if n > 1:
        hdr = 16 if fmt == "pcap" else 12      # the smallest record/block header in front of a frame
        out[:-1] = batch.off[1:] - hdr
    return out


def violations(original: bytes, mutant: bytes, ref=None, outcome=None, fmt=None) -> list[str]:
    """Read ``mutant`` (a damaged copy of ``original``, which reads cleanly) and check:
    only PcapError escapes; every delivered frame lies in the file and within max_frame;
    the frames stored before the first damaged byte are delivered unchanged; an error
    names an offset inside the file and counts the frames delivered before it."""
    v = []
    if ref is None:
        ref, err0 = read_frames(original, max_frame=MAX_FRAME)
        if err0 is not None:
            return []          # the seed itself is damaged: only the "no crash" part applies
    m = min(len(original), len(mutant))
    a = np.frombuffer(original, np.uint8, m)
    b = np.frombuffer(mutant, np.uint8, m)
    d = np.flatnonzero(a != b)
    p = int(d[0]) if d.size else m
    got, err = read_frames(mutant, max_frame=MAX_FRAME)
    if outcome is not None:
        outcome.append(err)
    size = len(mutant)
    if got is not None and len(got):
        if (got.off < 0).any() or (got.off + got.len > size).any():
            v.append("a frame outside the file")
        if (got.len > MAX_FRAME).any():
            v.append("a frame above max_frame")
    if err is not None:
        if not 0 <= err.offset <= size:
            v.append(f"error offset {err.offset} outside the file of {size} bytes")
        if err.frames_read != (0 if got is None else len(got)):
            v.append("frames_read differs from the frames delivered")
    if ref is not None and len(ref):
        if fmt is None:
            try:
                fmt = pcap.PcapReader(original).format
            except pcap.PcapError:
                return v
        safe = int(np.count_nonzero(boundaries(ref, fmt, len(original)) <= p))
        if p < 24 and fmt == "pcap":
            safe = 0        # the file header itself was damaged
        have = 0 if got is None else len(got)
        if have < safe:
            v.append(f"{safe} frames lie before the first damaged byte {p}, {have} delivered"
                     f" ({err})")
        else:
            for i in range(safe):
                if got.off[i] != ref.off[i] or got.len[i] != ref.len[i] or \
                        int(got.meta["link"][i]) != int(ref.meta["link"][i]) or \
                        (got.ts is not None and ref.ts is not None and got.ts[i] != ref.ts[i]):
                    v.append(f"frame {i} before the damage at {p} changed")
                    break
    return v
