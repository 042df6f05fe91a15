"""The shim's ring kernels fed by a lying kernel: fake AF_XDP rings and TPACKET_V3 blocks
built in numpy, with descriptors and headers that point anywhere. Every bad entry must be
counted, never read out of bounds, never lose or duplicate a UMEM frame.

Runs without privileges; marked hostile so ``make test`` repeats it with bounds checks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload.batch import new_meta
from offload.nic_shim import afxdp as X
from offload.nic_shim import packet as P

pytestmark = pytest.mark.hostile

SIZE = 64
NFRAMES = 256
CHUNK = 2048
BOUNCE = 1 << 16


class FakeXsk:
    """Our side of one queue (as AfXdpPort holds it) plus fake kernel-side rings."""

    def __init__(self):
        self.rxp = np.zeros(1, np.uint32)
        self.rxc = np.zeros(1, np.uint32)
        self.d64 = np.zeros(SIZE * 2, np.uint64)
        self.d32 = self.d64.view(np.uint32)
        self.fp = np.zeros(1, np.uint32)
        self.fc = np.zeros(1, np.uint32)
        self.fr = np.zeros(SIZE, np.uint64)
        self.umem = np.zeros(NFRAMES * CHUNK + BOUNCE, np.uint8)
        self.fstate = np.zeros(NFRAMES, np.uint8)
        self.free = np.arange(NFRAMES, dtype=np.int64)[::-1].copy()
        self.ctl = np.zeros(X.C_LEN, np.int64)
        self.ctl[X.C_FREE_TOP] = NFRAMES
        self.ctl[X.C_CNT + X.FREE] = NFRAMES
        self.qf = np.zeros(1, np.int64)
        self.oo = np.zeros(256, np.int64)
        self.ol = np.zeros(256, np.int64)
        self.oc = np.zeros(256, np.int64)
        X._refill(self.fp, self.fc, self.fr, SIZE, SIZE, self.free, self.fstate, self.ctl, CHUNK, self.qf)

    def deliver(self, descs):
        """The 'kernel' puts (addr, len, options) descriptors on the RX ring."""
        p = int(self.rxp[0])
        for k, (a, ln, opt) in enumerate(descs):
            j = (p + k) % SIZE
            self.d64[2 * j] = a
            self.d32[4 * j + 2] = ln
            self.d32[4 * j + 3] = opt
        self.rxp[0] = (p + len(descs)) & 0xFFFFFFFF

    def take_fill(self, n):
        """Addresses the 'kernel' takes off the fill ring."""
        c = int(self.fc[0])
        out = [int(self.fr[(c + k) % SIZE]) for k in range(n)]
        self.fc[0] = c + n
        return out

    def rx(self, maxn=256):
        return X._rx(self.rxp, self.rxc, self.d64, self.d32, SIZE, maxn, self.oo, self.ol, self.oc, self.umem,
                     NFRAMES, CHUNK, NFRAMES * CHUNK, BOUNCE, self.free, self.fstate, self.ctl, self.qf, 0)

    def counts(self):
        c = np.bincount(self.fstate, minlength=4)
        for s in range(4):
            assert c[s] == self.ctl[X.C_CNT + s]
        assert self.ctl[X.C_FREE_TOP] == c[X.FREE]
        assert np.unique(self.free[: self.ctl[X.C_FREE_TOP]]).size == c[X.FREE]
        return c


def test_good_and_chained_frames():
    x = FakeXsk()
    addrs = x.take_fill(4)
    x.umem[addrs[1]:addrs[1] + 100] = 7
    x.umem[addrs[2]:addrs[2] + 50] = 9
    x.deliver([(addrs[0] + 256, 60, 0), (addrs[1], 100, X.XDP_PKT_CONTD), (addrs[2], 50, 0)])
    n = x.rx()
    assert n == 2 and x.ctl[X.C_ERR] == 0
    assert x.ol[0] == 60 and x.oo[0] == addrs[0] + 256 and x.oc[0] == addrs[0] // CHUNK
    # the chained frame was copied to the bounce area and its chunks freed
    assert x.oc[1] == -1 and x.ol[1] == 150 and x.oo[1] >= NFRAMES * CHUNK
    assert (x.umem[x.oo[1]:x.oo[1] + 100] == 7).all() and (x.umem[x.oo[1] + 100:x.oo[1] + 150] == 9).all()
    c = x.counts()
    assert c[X.INUSE] == 1
    assert X._release(x.oc[:n].copy(), x.free, x.fstate, x.ctl) == 0
    assert x.counts()[X.INUSE] == 0 and x.ctl[X.C_BOUNCE_LIVE] == 0


def test_incomplete_chain_waits():
    x = FakeXsk()
    a = x.take_fill(2)
    x.deliver([(a[0], 100, X.XDP_PKT_CONTD)])
    assert x.rx() == 0 and x.rxc[0] == 0      # nothing consumed until the last piece is published
    x.deliver([(a[1], 10, 0)])
    assert x.rx() == 1 and x.ol[0] == 110


def test_double_release_is_refused():
    x = FakeXsk()
    a = x.take_fill(1)
    x.deliver([(a[0], 60, 0)])
    n = x.rx()
    ch = x.oc[:n].copy()
    assert X._release(ch, x.free, x.fstate, x.ctl) == 0
    assert X._release(ch, x.free, x.fstate, x.ctl) == 1
    x.counts()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.integers(0, 3)),
                min_size=1, max_size=40),
       st.integers(0, 40))
def test_lying_rx_descriptors(descs, n_valid):
    """Descriptors with any address, length and options, mixed with valid ones: bad ones are
    counted, every chunk stays in exactly one state, nothing is read out of bounds."""
    x = FakeXsk()
    valid = x.take_fill(min(n_valid, SIZE))
    mixed = []
    for i, d in enumerate(descs):
        mixed.append(d)
        if i < len(valid):
            mixed.append((valid[i], 60, 0))
    mixed = mixed[:SIZE]
    x.deliver(mixed)
    n = x.rx()
    assert 0 <= n <= len(mixed)
    assert ((x.ol[:n] >= 0) & (x.oo[:n] + x.ol[:n] <= x.umem.size)).all()
    c = x.counts()
    assert c.sum() == NFRAMES
    X._release(x.oc[:n].copy(), x.free, x.fstate, x.ctl)
    assert x.counts()[X.INUSE] == 0


def test_completion_of_unknown_address_is_counted():
    x = FakeXsk()
    cp = np.zeros(1, np.uint32)
    cc = np.zeros(1, np.uint32)
    ring = np.array([5 * CHUNK, 2**63, 3], np.uint64)
    ring = np.concatenate([ring, np.zeros(SIZE - 3, np.uint64)])
    cp[0] = 3
    assert X._reap(cp, cc, ring, SIZE, NFRAMES, CHUNK, x.free, x.fstate, x.ctl) == 3
    assert x.ctl[X.C_ERR] == 3 and cc[0] == 3      # none were in TX: all refused, ring still consumed
    x.counts()


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=4096), st.integers(0, 10**6), st.integers(0, 5000))
def test_tpacket_block_garbage(data, left, first):
    """A TPACKET_V3 block full of garbage: the walker stops at the first impossible header."""
    bs = 4096
    ring = np.zeros(bs * 2, np.uint8)
    ring[:len(data)] = np.frombuffer(data, np.uint8)
    meta = new_meta(64)
    oo = np.zeros(64, np.int64)
    ol = np.zeros(64, np.int64)
    bad = np.zeros(1, np.int64)
    n, pkt, rest, _ = P._walk_block(ring, 0, bs, first, left, 64, 0, oo, ol, meta, 10, bad)
    assert 0 <= n <= 64
    assert ((oo[:n] >= 10) & (oo[:n] + ol[:n] <= bs)).all()
    assert rest <= left


def test_chain_longer_than_bounce_is_dropped_not_stuck():
    x = FakeXsk()
    a = x.take_fill(3)
    x.deliver([(a[0], 2**31, X.XDP_PKT_CONTD), (a[1], 2**31, 0), (a[2], 60, 0)])
    n = x.rx()
    assert n == 1 and x.ol[0] == 60 and x.rxc[0] == 3
    assert x.ctl[X.C_ERR] == 1
    c = x.counts()
    assert c[X.FREE] == NFRAMES - SIZE + 2 and c[X.INUSE] == 1
