"""Benchmarks (pytest-benchmark suites, ``test_*.py``) and the peer comparison.

A package so that ``bench/test_csum.py`` and ``tests/test_csum.py`` can both exist.
"""
