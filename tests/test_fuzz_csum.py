"""Fuzz target (hostile input) for the checksum engine: verify / fill / complete on valid
and damaged frames with arbitrary virtio headers (fuzz/csum_check.py)."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies as FS

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fuzz import csum_check  # noqa: E402

EXAMPLES = int(os.environ.get("OFFLOAD_FUZZ_EXAMPLES", "60")) // 2 or 1
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
pytestmark = pytest.mark.hostile


@FUZZ
@given(st.lists(st.one_of(FS.frames(jumbo=False, max_payload=400).map(lambda b: (b.frame, b.link)),
                          FS.mutated_frames().map(lambda m: (m.frame, m.link))), min_size=1, max_size=8),
       st.data())
def test_fuzz_checksum_verify_fill_complete(items, data):
    hdrs = [data.draw(FS.vnet_headers()) for _ in items]
    hdrs = [(h[0] | 1,) + tuple(h[1:]) for h in hdrs]          # NEEDS_CSUM on every frame
    v = csum_check.violations([f for f, _l in items], [l & 0xFFFF for _f, l in items], hdrs)
    assert not v, v
