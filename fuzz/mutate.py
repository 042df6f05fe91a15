"""Fast batch mutation of seed frames (a Numba kernel), for the long fuzz campaigns.

One call turns a seed arena into ``count`` mutated frames: each case copies one seed and
applies 1-4 damages biased to where headers live (the first 128 bytes): bit flips,
"interesting" bytes and 16-bit big-endian values (0, 1, lengths near the frame's, 0xFFFF,
ethertypes, IP versions), truncation, insertion and deletion of chunks, a splice from
another seed, and random tails. Deterministic for a given ``seed``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_BYTES = np.array([0, 1, 2, 4, 5, 6, 0x0F, 0x10, 0x11, 0x3A, 0x2B, 0x2C, 0x33, 0x3C, 0x40, 0x45, 0x46,
                   0x4F, 0x50, 0x5F, 0x60, 0x7F, 0x80, 0x81, 0x88, 0x86, 0xA8, 0xC2, 0xDD, 0xF0, 0xFE, 0xFF],
                  np.int64)
_WORDS = np.array([0, 1, 7, 8, 19, 20, 39, 40, 60, 0x5DC, 0x5DD, 0x7FFF, 0x8000, 0xFFF8, 0xFFFE, 0xFFFF,
                   0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100, 0x0806], np.int64)

EXTRA = 96  # room per case for insertions and tails


@njit(cache=True, nogil=True)
def _pos(n, hot):
    if n <= 0:
        return 0
    if np.random.random() < 0.8:
        m = n if n < hot else hot
        return np.random.randint(0, m)
    return np.random.randint(0, n)


@njit(cache=True, nogil=True)
def mutate_batch(seed_buf, seed_off, seed_len, seed_link, links, count, seed, out_buf, out_off,
                 out_len, out_link, bytes_tab, words_tab, out_src, hot):
    """Fill ``out_*`` with ``count`` mutants (``out_src``: the seed each came from; ``hot``:
    most damage lands in the first ``hot`` bytes). ``out_buf`` must hold
    ``count * (max seed length + EXTRA)`` bytes. Returns the bytes used."""
    np.random.seed(seed)
    nseeds = seed_off.shape[0]
    pos = 0
    for c in range(count):
        j = np.random.randint(0, nseeds)
        s = seed_off[j]
        n = seed_len[j]
        o = pos
        for k in range(n):
            out_buf[o + k] = seed_buf[s + k]
        cap = n + EXTRA
        nops = 1 + np.random.randint(0, 4)
        for _ in range(nops):
            op = np.random.randint(0, 10)
            if op == 0 or op == 1:          # bit flip
                if n > 0:
                    p = _pos(n, hot)
                    out_buf[o + p] ^= np.uint8(1 << np.random.randint(0, 8))
            elif op == 2 or op == 3:        # interesting byte
                if n > 0:
                    p = _pos(n, hot)
                    out_buf[o + p] = np.uint8(bytes_tab[np.random.randint(0, bytes_tab.shape[0])])
            elif op == 4 or op == 5:        # interesting 16-bit value (big-endian), or n +- small
                if n > 1:
                    p = _pos(n - 1, hot)
                    if np.random.random() < 0.3:
                        v = n + np.random.randint(-24, 24)
                    else:
                        v = words_tab[np.random.randint(0, words_tab.shape[0])]
                    v = v & 0xFFFF
                    out_buf[o + p] = np.uint8(v >> 8)
                    out_buf[o + p + 1] = np.uint8(v & 0xFF)
            elif op == 6:                   # truncate
                if n > 0:
                    n = np.random.randint(0, n + 1)
            elif op == 7:                   # insert a chunk of random bytes
                k = np.random.randint(1, 17)
                if n + k <= cap:
                    p = _pos(n + 1, hot)
                    for q in range(n - 1, p - 1, -1):
                        out_buf[o + q + k] = out_buf[o + q]
                    for q in range(k):
                        out_buf[o + p + q] = np.uint8(np.random.randint(0, 256))
                    n += k
            elif op == 8:                   # delete a chunk
                if n > 1:
                    p = _pos(n, hot)
                    k = 1 + np.random.randint(0, 16)
                    if p + k > n:
                        k = n - p
                    for q in range(p, n - k):
                        out_buf[o + q] = out_buf[o + q + k]
                    n -= k
            else:                           # splice the tail of another seed at a hot spot
                j2 = np.random.randint(0, nseeds)
                s2 = seed_off[j2]
                n2 = seed_len[j2]
                p = _pos(n + 1, hot)
                p2 = np.random.randint(0, n2 + 1)
                k = n2 - p2
                if p + k > cap:
                    k = cap - p
                for q in range(k):
                    out_buf[o + p + q] = seed_buf[s2 + p2 + q]
                n = p + k
        out_off[c] = o
        out_len[c] = n
        out_src[c] = j
        if np.random.random() < 0.03:
            out_link[c] = links[np.random.randint(0, links.shape[0])]
        else:
            out_link[c] = seed_link[j]
        pos = o + cap
    return pos
