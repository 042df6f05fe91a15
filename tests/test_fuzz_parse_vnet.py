"""Fuzz targets (hostile input) for the parser and the virtio_net_hdr validator.

Budget: ``OFFLOAD_FUZZ_EXAMPLES`` hypothesis examples per target (default 200; ``make
fuzz`` raises it) and ``OFFLOAD_FUZZ_CASES`` mutants per batch target (default 20,000).
The million-case runs are ``fuzz/campaign.py`` (``make fuzz-long``).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies as FS
from invariants import parsed_meta_violations, vnet_verdict_violations
from offload import PacketBatch, status as S, vnet as V
from offload.batch import new_meta
from offload.parse import parse_batch, parse_frames

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fuzz import campaign  # noqa: E402

EXAMPLES = int(os.environ.get("OFFLOAD_FUZZ_EXAMPLES", "60"))
CASES = int(os.environ.get("OFFLOAD_FUZZ_CASES", "20000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

pytestmark = pytest.mark.hostile


@FUZZ
@given(st.lists(FS.mutated_frames(), min_size=1, max_size=16))
def test_fuzz_parser_batch_of_mutants(mfs):
    b = PacketBatch.from_frames([m.frame for m in mfs])
    b.meta["link"] = [m.link & 0xFFFF for m in mfs]
    before = b.buf.copy()
    parse_batch(b)
    v = parsed_meta_violations(b.meta, b.len)
    assert not v, ([m.what for m in mfs], v)
    assert np.array_equal(before, b.buf), "the parser wrote into the frames"


@FUZZ
@given(FS.mutated_frames(), st.lists(FS.vnet_headers(), min_size=1, max_size=6))
def test_fuzz_validator_matches_the_kernel_rules(mf, hdrs):
    b = PacketBatch.from_frames([mf.frame] * len(hdrs), vnet=hdrs, link=mf.link)
    parse_batch(b)
    codes = np.array([V.validate_one(len(mf.frame), b.meta, i) for i in range(len(hdrs))], np.int64)
    assert not vnet_verdict_violations(codes)
    ref = campaign.reference_vnet(b.len, b.meta, b.meta["l4_off"].astype(np.int64),
                                  b.meta["l4_proto"].astype(np.int64), b.meta["vlan_count"].astype(np.int64))
    assert (ref == (codes != 0)).all(), (mf.what, hdrs, [S.NAMES[int(c)] for c in codes], ref)


def test_fuzz_parser_on_mutated_corpus_and_generated_frames():
    """A short run of the campaign's batch mutator over generated and real-capture seeds."""
    from fuzz import seeds
    sets = [seeds.generated()]
    if os.path.isdir(seeds.CORPUS):
        sets.append(seeds.corpus())
    seed_set = seeds.merged(*sets)
    for target in ("parse", "vnet"):
        ok, done, _secs, stats = campaign.run(target, CASES, 4096, 77, seed_set, quiet=True)
        assert ok and done == CASES
        assert len(stats) > 5   # the mutants reach many verdicts, not one


def test_fuzz_parser_offsets_outside_the_arena_are_refused_not_read():
    """Frames whose off/len lie outside buf (a corrupt batch) get a status, no read."""
    buf = np.zeros(100, np.uint8)
    off = np.array([-5, 90, 0, 50], np.int64)
    ln = np.array([10, 20, -1, 50], np.int64)
    meta = new_meta(4)
    assert parse_frames(buf, off, ln, meta) == 0
    assert meta["status"].tolist()[:3] == [S.TRUNC_L2] * 3
