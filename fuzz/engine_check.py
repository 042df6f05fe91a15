"""Invariants for GSO and GRO runs on hostile bursts (shared by pytest targets and the
campaign): every input frame accounted for, payload bytes conserved in order, outputs
parse and carry valid checksums when the mode promises them, nothing written past an
output arena."""

from __future__ import annotations

import numpy as np

from fuzz.oracles import check_csums, guard_violations, guarded_arenas
from offload import PacketBatch, status as S
from offload.parse import parse_batch

GSO_EMITTED = {S.GSO_SEGMENTED, S.GSO_FRAGMENTED, S.GSO_PASS, S.GSO_NOT_SUPPORTED}


def _payload(b, i):
    m = b.meta[i]
    s = int(b.off[i])
    return b.buf[s + int(m["pay_off"]): s + int(m["pay_off"]) + int(m["pay_len"])]


def gso_violations(batch: PacketBatch, **kw) -> list[str]:
    """Run offload.gso.segment(batch, **kw) (refused='drop') and check it."""
    from offload import gso
    n = len(batch)
    inp = PacketBatch.from_frames(batch.to_frames(), link=1)
    inp.meta[:] = batch.meta
    parse_batch(inp)          # the input layout, before GSO rewrites statuses
    before = batch.buf.copy()
    with guarded_arenas() as made:
        r = gso.segment(batch, **kw)
    v = guard_violations(made)
    if not np.array_equal(before, batch.buf):
        v.append("GSO wrote into its input")
    out = r.out
    st = batch.meta["status"].astype(np.int64)
    src = out.meta["src"].astype(np.int64)
    if len(out) and ((src < 0).any() or (src >= n).any() or (np.diff(src) < 0).any()):
        return v + ["output src out of range or out of input order"]
    cnt = np.bincount(src, minlength=n) if len(out) else np.zeros(n, np.int64)
    for i in range(n):
        code = int(st[i])
        if code in GSO_EMITTED:
            if cnt[i] < 1:
                v.append(f"frame {i} {S.NAMES[code]} but nothing emitted")
        elif cnt[i]:
            v.append(f"frame {i} refused ({S.NAMES.get(code, code)}) but {cnt[i]} frames emitted")
        if int(batch.meta["seg"][i]) != cnt[i]:
            v.append(f"frame {i}: meta.seg {int(batch.meta['seg'][i])} != {cnt[i]} outputs")
    if v or not len(out):
        return v
    chk = PacketBatch(out.buf, out.off, out.len, out.meta.copy())
    parse_batch(chk)
    full = kw.get("csum", "full") == "full"
    ok = check_csums(chk)
    pos = 0
    for i in range(n):
        k = int(cnt[i])
        js = range(pos, pos + k)
        pos += k
        code = int(st[i])
        if code == S.GSO_SEGMENTED:
            if any(int(chk.meta["status"][j]) != S.OK for j in js):
                v.append(f"frame {i}: a segment does not parse")
                continue
            got = np.concatenate([_payload(chk, j) for j in js])
            want = _payload(inp, i)
            if not np.array_equal(got, want):
                v.append(f"frame {i}: segment payloads ({got.size} B) != super-packet payload ({want.size} B)")
            if full and any(ok[j] == 0 for j in js):
                v.append(f"frame {i}: a segment with a wrong checksum")
        elif code in (S.GSO_PASS, S.GSO_NOT_SUPPORTED) and k == 1:
            j = js[0]
            a = inp.frame(i)
            b = out.frame(j)
            if a.size != b.size:
                v.append(f"frame {i} passed through with another length")
            else:
                d = np.flatnonzero(a != b)
                if d.size and not (int(inp.meta["vnet_flags"][i]) & 1 and d.size <= 2 and
                                   int(d[0]) >= int(inp.meta["csum_start"][i])):
                    v.append(f"frame {i} passed through changed at byte {int(d[0])}")
    return v


GRO_CODES = set(range(192, 256))


def _copy(o):
    """A copy of an output batch (frames and meta) that outlives the engine's arena."""
    if not len(o):
        return None
    c = PacketBatch.from_frames(o.to_frames())
    c.meta[:] = o.meta
    return c


def _flow_key(b, i):
    m = b.meta[i]
    if int(m["status"]) not in (S.OK,) or int(m["l4_proto"]) not in (6, 17) or m["pflags"] & 2:
        return None
    f = b.frame(i)
    l3 = int(m["l3_off"])
    l4 = int(m["l4_off"])
    if m["l3_proto"] == 0x0800:
        k = f[:l3].tobytes() + f[l3 + 12:l3 + 20].tobytes() + bytes([int(m["l4_proto"])])
    else:
        k = f[:l3].tobytes() + bytes([f[l3 + 1] & 0x0F]) + f[l3 + 2:l3 + 4].tobytes() + \
            f[l3 + 8:l4].tobytes()
    return k + f[l4:l4 + 4].tobytes()


def gro_violations(bursts, streaming=False, **kw) -> list[str]:
    """Run GRO over ``bursts`` (a list of PacketBatch; burst mode: one coalesce per burst;
    streaming: one GroTable, pushes then a flush) and check it."""
    from offload import gro
    v = []
    ins, outs = [], []
    with guarded_arenas() as made:
        if streaming:
            t = gro.GroTable(max_flows=kw.pop("max_flows", 8), max_held=kw.pop("max_held", 64),
                             timeout_ns=kw.pop("timeout_ns", 1000), **kw)
            now = 0
            for b in bursts:
                inp = PacketBatch.from_frames(b.to_frames(), link=1)
                parse_batch(inp)
                ins.append(inp)
                now += 400
                o = t.push(b, now)
                outs.append(_copy(o))
                if t.held > t.max_held or t.flows > t.max_flows:
                    v.append(f"table holds {t.held} frames / {t.flows} flows over its limits")
            o = t.flush(now)
            outs.append(_copy(o))
            segs = sum(int(x.meta["seg"].sum()) for x in outs if x is not None)
            if segs != sum(len(b) for b in bursts):
                v.append(f"outputs account for {segs} frames, {sum(len(b) for b in bursts)} went in")
            cnt_in = sum(len(b) for b in bursts)
            c = t.counters
            if c["status"].get("GRO_NO_ROOM"):
                v.append(f"{c['status']['GRO_NO_ROOM']} frames GRO_NO_ROOM (lost)")
            if c["frames_in"] != cnt_in:
                v.append(f"counters say {c['frames_in']} frames in, {cnt_in} pushed")
        else:
            for b in bursts:
                inp = PacketBatch.from_frames(b.to_frames(), link=1)
                parse_batch(inp)
                ins.append(inp)
                r = gro.coalesce(b, **kw)
                o = r.batch
                if len(o):
                    segs = int(o.meta["seg"].sum())
                    if segs != len(b):
                        v.append(f"outputs account for {segs} frames, {len(b)} went in")
                merged = int(np.count_nonzero(b.meta["status"] == S.GRO_MERGED))
                if len(o) + merged != len(b):
                    v.append(f"{len(o)} out + {merged} merged != {len(b)} in")
                bad = set(b.meta["status"].astype(int).tolist()) - GRO_CODES
                if bad:
                    v.append(f"input statuses outside GRO's range: {bad}")
                outs.append(_copy(o))
    v += guard_violations(made)
    # payload conservation, in order, per flow; other frames come out unchanged
    want, have = {}, {}
    other_in, other_out = [], []
    for inp in ins:
        for i in range(len(inp)):
            k = _flow_key(inp, i)
            if k is None:
                other_in.append(inp.frame(i).tobytes())
            else:
                want.setdefault(k, []).append(_payload(inp, i).tobytes())
    full = kw.get("csum", "partial") == "full"
    for o in outs:
        if o is None:
            continue
        meta_engine = o.meta.copy()
        parse_batch(o)
        ok = check_csums(o) if full else None
        for j in range(len(o)):
            k = _flow_key(o, j)
            if int(meta_engine["seg"][j]) > 1:
                if k is None:
                    v.append(f"an aggregate of {int(meta_engine['seg'][j])} frames does not parse "
                             f"({S.NAMES.get(int(o.meta['status'][j]))})")
                    continue
                if full and ok[j] == 0:
                    v.append("an aggregate with a wrong checksum")
            if k is None:
                other_out.append(o.frame(j).tobytes())
            else:
                have.setdefault(k, []).append(_payload(o, j).tobytes())
    for k in set(want) | set(have):
        a = b"".join(want.get(k, []))
        b = b"".join(have.get(k, []))
        if a != b:
            v.append(f"flow payload not conserved: {len(a)} bytes in, {len(b)} out")
            break
    if sorted(other_in) != sorted(other_out):
        v.append(f"frames GRO does not merge changed or were lost ({len(other_in)} in, {len(other_out)} out)")
    return v
