"""offload: software packet offloads (checksum, GSO, GRO) as Numba kernels over numpy buffers.

The public API, re-exported here. Names are resolved lazily (PEP 562), so
``import offload`` stays cheap and a command compiles only the kernels it uses.

Ten lines::

    from offload import PacketBatch, pcap, segment, coalesce, verify_batch
    b = pcap.read("tso.pcap", parse=True)           # frames are views of the mmapped file
    r = segment(b, mtu=1500)                        # Linux GSO rules, full checksums
    g = coalesce(r.out)                             # Linux GRO rules; virtio_net_hdr in meta
    again = segment(g.out).out                      # GSO(GRO(x)) == x, per flow (flows may interleave)
    assert sorted(again.to_frames()) == sorted(r.out.to_frames())
    v = verify_batch(r.out)                         # per-frame checksum verdicts
    pcap.write("wire.pcap", r.out)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # containers and codes
    "PacketBatch": "batch", "OutputArena": "batch", "META_DTYPE": "batch",
    "status": None, "vnet": None, "pcap": None, "netns": None, "nic_shim": None,
    # the one parser
    "parse_batch": "parse",
    # virtio_net_hdr
    "validate_batch": "vnet",
    # checksums
    "raw_sum": "csum", "checksum": "csum", "verify_batch": "csum", "fill_batch": "csum",
    "complete_batch": "csum", "CsumResult": "csum",
    # GSO
    "segment": "gso", "fragment_udp": "gso", "GsoResult": "gso", "GSO_MAX_SEGS": "gso",
    # GRO
    "coalesce": "gro", "GroTable": "gro", "Coalescer": "gro", "GroResult": "gro",
    # capture files
    "PcapError": "pcap", "PcapReader": "pcap", "PcapWriter": "pcap",
    # NIC shim
    "open_port": "nic_shim", "Port": "nic_shim", "Forwarder": "nic_shim",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        mod = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'offload' has no attribute {name!r}") from None
    if mod is None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
