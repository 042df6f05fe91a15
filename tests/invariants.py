"""Invariants every fuzz case must satisfy, shared by the pytest fuzz targets and the long
campaigns (``fuzz/campaign.py``). Each check returns a list of human-readable violations
(empty = fine) so callers can report all of them at once.
"""

from __future__ import annotations

import numpy as np

from offload import status as S

PARSER_CODES = frozenset(c for c in S.NAMES if 0 <= c < 64)
VNET_CODES = frozenset(c for c in S.NAMES if 64 <= c < 96)


def parsed_meta_violations(meta: np.ndarray, lengths: np.ndarray) -> list[str]:
    """The parser's promises about ``meta`` (vectorised over a whole batch).

    * the status is a parser code;
    * status OK: 0 <= l3_off, l3_off + l3_hdr_len == l4_off, l4_off + l4_hdr_len == pay_off,
      pay_off + pay_len == l3_end <= frame length, and every header byte lies in the frame;
      IPv6 ext_len == l3_hdr_len - 40; dst_off + addr size <= l4_off;
    * TRUNC_PAYLOAD: headers as above but l3_end > frame length;
    * vlan_count <= MAX_VLANS.
    """
    out = []
    st = meta["status"].astype(np.int64)
    bad = ~np.isin(st, list(PARSER_CODES))
    if bad.any():
        out.append(f"non-parser status {sorted(set(st[bad].tolist()))} at {np.flatnonzero(bad)[:5].tolist()}")
    if (meta["vlan_count"] > S.MAX_VLANS).any():
        out.append("vlan_count above MAX_VLANS")
    n = lengths.astype(np.int64)
    l3 = meta["l3_off"].astype(np.int64)
    l4 = meta["l4_off"].astype(np.int64)
    po = meta["pay_off"].astype(np.int64)
    pl = meta["pay_len"].astype(np.int64)
    end = meta["l3_end"].astype(np.int64)
    hl3 = meta["l3_hdr_len"].astype(np.int64)
    hl4 = meta["l4_hdr_len"].astype(np.int64)
    dst = meta["dst_off"].astype(np.int64)
    v6 = meta["l3_proto"] == 0x86DD
    for code, end_ok in ((S.OK, end <= n), (S.TRUNC_PAYLOAD, end > n)):
        sel = st == code
        if not sel.any():
            continue
        checks = {
            "l3_off < 0": l3 < 0,
            "l3_off + l3_hdr_len != l4_off": l3 + hl3 != l4,
            "l4_off + l4_hdr_len != pay_off": l4 + hl4 != po,
            "pay_off + pay_len != l3_end": po + pl != end,
            "pay_len < 0": pl < 0,
            "headers past the frame": po > n,
            "l3_end vs frame length wrong for the status": ~end_ok,
            "ext_len != l3_hdr_len - 40 (IPv6)": v6 & (meta["ext_len"].astype(np.int64) != hl3 - 40),
            "dst_off outside the L3 header": (dst < l3) | (dst + np.where(v6, 16, 4) > l4),
            "l3_proto not IP": (meta["l3_proto"] != 0x0800) & ~v6,
        }
        for what, viol in checks.items():
            viol = viol & sel
            if viol.any():
                i = int(np.flatnonzero(viol)[0])
                out.append(f"{S.NAMES[code]}: {what} (frame {i}: n={int(n[i])} l3={int(l3[i])} hl3={int(hl3[i])} "
                           f"l4={int(l4[i])} hl4={int(hl4[i])} pay={int(po[i])}+{int(pl[i])} end={int(end[i])} dst={int(dst[i])})")
    return out


def vnet_verdict_violations(codes: np.ndarray) -> list[str]:
    bad = ~np.isin(codes.astype(np.int64), list(VNET_CODES | {S.OK}))
    return [f"validator returned non-vnet codes {sorted(set(codes[bad].tolist()))}"] if bad.any() else []


def guard_violations(arena: np.ndarray, used_end: int, pattern: int = 0xA5) -> list[str]:
    """Bytes after ``used_end`` must still hold the guard pattern: nothing was written past
    the end of what the engine said it used (nor past the arena into the guard)."""
    tail = arena[used_end:]
    bad = np.flatnonzero(tail != pattern)
    return [f"{bad.size} guard bytes overwritten, first at +{int(bad[0])} past the end"] if bad.size else []
