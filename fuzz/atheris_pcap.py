"""Coverage-guided fuzzing of the pcap/pcapng readers with atheris (the reader's Python
layer is instrumented; its Numba walker is opaque).

    NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=.numba-cache-boundscheck \
        python fuzz/atheris_pcap.py -atheris_runs=1000000 -max_len=65536 [corpus_dir]

``--make-seeds DIR`` writes files from the campaign's capture seeds (written by
offload.pcap and the real-capture corpus). Only PcapError may escape a read; every
delivered frame must lie inside the file.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

pcap_check = None


def _load(instrument: bool):
    """Import the checks; with ``instrument``, instrument the reader's *Python* methods for
    coverage (atheris rewrites bytecode, which Numba cannot compile: the njit walkers are
    left alone and stay opaque to the coverage signal)."""
    global pcap_check
    from fuzz import pcap_check as pc
    pcap_check = pc
    if instrument:
        import inspect

        import atheris
        from offload import pcap
        for cls in (pcap.PcapReader,):
            for name, fn in list(vars(cls).items()):
                if inspect.isfunction(fn):
                    setattr(cls, name, atheris.instrument_func(fn))
        pc.read_frames = atheris.instrument_func(pc.read_frames)
        pc.violations = atheris.instrument_func(pc.violations)


def one_input(data: bytes) -> None:
    got, err = pcap_check.read_frames(data, max_frame=pcap_check.MAX_FRAME)
    if got is not None and len(got):
        if (got.off < 0).any() or (got.off + got.len > len(data)).any():
            raise AssertionError("a frame outside the file")
    if err is not None and not 0 <= err.offset <= len(data):
        raise AssertionError(f"error offset {err.offset} outside a {len(data)}-byte file")


def make_seeds(d: str) -> None:
    from fuzz import seeds
    os.makedirs(d, exist_ok=True)
    buf, off, ln, _ = seeds.capture_files()
    for i in range(len(off)):
        with open(os.path.join(d, f"seed-{i}"), "wb") as f:
            f.write(buf[off[i]:off[i] + ln[i]].tobytes())


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--make-seeds":
        make_seeds(sys.argv[2])
        return
    import atheris
    _load(True)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
