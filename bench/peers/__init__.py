"""Peers measured against offload: a C DPDK program, a careful-C reference, scapy/dpkt, the kernel."""
