"""Coverage-guided fuzzing of the parser and the virtio_net_hdr validator with atheris.

    pip install -e '.[fuzz]'
    NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=.numba-cache-boundscheck \
        python fuzz/atheris_parse.py -atheris_runs=1000000 [corpus_dir]

Input layout: 2 bytes link type (little-endian), 10 bytes virtio_net_hdr, the frame.
atheris instruments Python only; the Numba kernels are opaque to it, so coverage comes
from the Python around them and from the seed corpus (written by ``--make-seeds DIR``
from the generated frames). A crash (exception, bounds-check IndexError, invariant
violation) stops the run and atheris writes the input to ``crash-*``.
"""

from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

from invariants import parsed_meta_violations, vnet_verdict_violations  # noqa: E402
from offload import vnet as V  # noqa: E402
from offload.batch import new_meta  # noqa: E402
from offload.parse import parse_frames  # noqa: E402

_meta = new_meta(1)
_off = np.zeros(1, np.int64)
_len = np.zeros(1, np.int64)


def one_input(data: bytes) -> None:
    if len(data) < 12:
        return
    link = int.from_bytes(data[:2], "little")
    hdr = V.unpack(data[2:12])
    frame = np.frombuffer(data, np.uint8)[12:].copy()
    _meta["link"] = link
    _len[0] = frame.size
    for f, v in zip(V._META_FIELDS, hdr):
        _meta[f] = v
    buf = frame if frame.size else np.zeros(1, np.uint8)
    parse_frames(buf, _off, _len, _meta)
    v = parsed_meta_violations(_meta, _len)
    code = V.validate_one(int(_len[0]), _meta, 0)
    v += vnet_verdict_violations(np.array([code]))
    if v:
        raise AssertionError(f"{v} link={link} hdr={hdr} frame={frame.tobytes().hex()}")


def make_seeds(d: str) -> None:
    from fuzz import seeds
    os.makedirs(d, exist_ok=True)
    buf, off, ln, lk = seeds.generated()
    for i in range(len(off)):
        with open(os.path.join(d, f"seed-{i}"), "wb") as f:
            f.write(int(lk[i]).to_bytes(2, "little") + V.pack(1, 1, 0, 1448, 34, 16) + buf[off[i]:off[i] + ln[i]].tobytes())


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--make-seeds":
        make_seeds(sys.argv[2])
        return
    import atheris
    # the kernels are Numba machine code atheris cannot see; instrument the Python around
    # them (vnet helpers, invariants) so at least those paths guide the search
    atheris.instrument_func(one_input)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
