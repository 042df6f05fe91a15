"""Benchmarks (pytest-benchmark suites, ``test_*.py``) and the peer comparison.

A package so that ``bench/test_csum.py`` and ``tests/test_csum.py`` can both exist.

The comparison (``make bench`` / ``offload bench``, report in ``bench/RESULTS.md``):

* ``workloads.py`` builds every data set once and writes it as a pcap; every side
  reads those files and prints an FNV-1a 64 hash of what it loaded.
* ``test_compare.py`` + ``ours.py``: our side, one adapter per op on the public
  API (add an op: a builder in ``workloads.build``, an adapter in
  ``ours.ADAPTERS``, and the peers' forms in ``peers/``).
* ``peers/``: ``cref.c`` (careful C and memcpy), ``dpdk_peer.c`` (DPDK bare and
  full forms), ``pypeers.py`` (scapy, dpkt), ``kernel_peer.py`` (Linux over veth).
* ``runner.py``: runs all of it, checks the hashes, merges rows, writes the
  table, JSON, Markdown and plot.
"""
