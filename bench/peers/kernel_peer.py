"""The Linux kernel as a peer, measured from user space across a veth pair.

Set-up (``offload.netns``, the oracle recipe of afxdp-findings.md Q5), in two private
namespaces ``off-bench-<pid>-<n>-a/-b`` removed afterwards, also on failure:

* **GSO**: super-frames sent with AF_PACKET + ``PACKET_VNET_HDR`` on the sender end
  with ``ethtool -K tx off``, so the kernel segments and checksums in software
  (``skb_gso_segment``) before veth transmits each segment. Timed: the ``send()``
  loop until the receiving end's ``rx_packets`` counter shows every segment. The
  time includes one ``send`` syscall per super-frame (Python), skb allocation, veth
  transmit and the receiving stack dropping the segments (no socket reads them).
* **GRO**: in-order TCP segments sent one ``send()`` each (the sender veth has TSO
  off, the receiver ``gro on`` with ``napi_defer_hard_irqs`` 1 and ``gro_flush_timeout``
  200 us: the oracle's 2 ms would make the timer, not the work, the measurement);
  an AF_PACKET socket in the receiving namespace collects the merged frames. Timed:
  first send to last merged frame read. Includes a syscall per input frame and the
  AF_PACKET delivery per merged frame; the GRO cost itself cannot be separated from
  user space.

Both are reported as ns per packet (= 1e9 / packets per second), next to ours with
``x ours``; the notes say what they include.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import time

SOL_PACKET = 263
PACKET_VNET_HDR = 15
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def _rx_packets(netns, ns: str, dev: str) -> int:
    out = netns.ns_exec(ns, ["ip", "-s", "-j", "link", "show", dev]).stdout
    return int(json.loads(out)[0]["stats64"]["rx"]["packets"])


def _vnet_for(w, frame: bytes) -> bytes:
    v6 = frame[12:14] == b"\x86\xdd"
    l3 = 40 if v6 else (frame[14] & 15) * 4
    if w.op == "uso4":
        gso_type, l4_hdr, csum_off = 5, 8, 6
    else:
        gso_type, csum_off = (4 if v6 else 1), 16
        l4_hdr = (frame[14 + l3 + 12] >> 4) * 4
    hdr_len = 14 + l3 + l4_hdr
    return struct.pack("<BBHHHH", 1, gso_type, hdr_len, w.params.get("mss", 1448), 14 + l3, csum_off)


def _row(w, impl, ns, notes, extra=0.0, unit="pkt", units=0):
    from statistics import median, quantiles
    ns = sorted(ns)
    q = quantiles(ns, n=4) if len(ns) > 1 else [ns[0]] * 3
    from bench.workloads import fnv1a64, read_pcap
    return {"peer": "kernel", "impl": impl, "op": w.op, "workload": w.name, "size": w.size, "unit": unit,
            "ns_per_pkt": median(ns), "min": ns[0], "max": ns[-1], "iqr": q[2] - q[0], "reps": len(ns),
            "pkts_per_rep": units, "fnv": fnv1a64(read_pcap(w.file)), "notes": notes, "extra": extra}


def _gso(netns, vp, w, frames, reps: int, rounds: int) -> dict:
    a, b = vp.ns_a, vp.ns_b
    with netns.in_netns(a):
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        tx.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        tx.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 32 << 20)
        tx.bind((vp.dev_a, 0))
        msgs = [_vnet_for(w, f) + f for f in frames]
        # how many segments the kernel makes of one pass (and proof that it segments). The
        # link's own IPv6 traffic (MLD reports, router solicitations) lands in the same rx
        # counter, late when the machine is loaded: a stray frame only adds, so take the
        # smallest count of three passes.
        counts = []
        for _ in range(3):
            before = _rx_packets(netns, b, vp.dev_b)
            for m in msgs:
                tx.send(m)
            time.sleep(0.05)
            counts.append(_rx_packets(netns, b, vp.dev_b) - before)
        segs = min(counts)
        if segs <= len(msgs):
            raise RuntimeError(f"kernel did not segment ({segs} frames for {len(msgs)} super-frames)")
        ns, lost = [], 0
        for _ in range(reps):
            before = _rx_packets(netns, b, vp.dev_b)
            want = before + segs * rounds
            t0 = time.perf_counter_ns()
            for _ in range(rounds):
                for m in msgs:
                    tx.send(m)
            t1 = time.perf_counter_ns()
            deadline = time.monotonic() + 2.0
            got = _rx_packets(netns, b, vp.dev_b)
            while got < want and time.monotonic() < deadline:
                time.sleep(0.001)
                got = _rx_packets(netns, b, vp.dev_b)
            # the receiving backlog (netdev_max_backlog) may drop a few segments under a
            # burst; they were still segmented and transmitted, so only a large loss is an error
            if got - before < 0.9 * segs * rounds:
                raise RuntimeError(f"kernel delivered {got - before} of {segs * rounds} segments")
            lost += want - got
            # the counter is polled after the loop: use the send loop's time (the segments
            # are built and transmitted synchronously inside send()) unless delivery lagged
            ns.append((t1 - t0) / (rounds * len(msgs)))
        return _row(w, "kernel", ns, "AF_PACKET+vnet send of the super-frame on a veth with tx off: kernel "
                    "software GSO + checksums + veth xmit + rx drop, one send() syscall (Python) per super-frame"
                    + (f"; {lost} segments dropped by the receiving backlog" if lost else ""),
                    extra=segs / len(msgs), units=rounds * len(msgs))
    finally:
        tx.close()


def _gro(netns, vp, w, frames, reps: int) -> dict:
    a, b = vp.ns_a, vp.ns_b
    with netns.in_netns(a):
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    with netns.in_netns(b):
        rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        tx.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 32 << 20)
        tx.bind((vp.dev_a, 0))
        rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        rx.bind((vp.dev_b, ETH_P_ALL))
        rx.setblocking(False)
        total_pay = sum(len(f) - 66 for f in frames)
        ns, merged = [], []
        for _ in range(reps):
            got_pay, nout, retries = 0, 0, 0
            t0 = time.perf_counter_ns()
            for f in frames:
                while True:
                    try:
                        tx.send(f)
                        break
                    except OSError as e:  # ENOBUFS: veth's NAPI ring (256) is full, let it drain
                        if e.errno != 105:
                            raise
                        time.sleep(0)
                        retries += 1
            deadline = time.monotonic() + 2.0
            t_last = t0
            while got_pay < total_pay and time.monotonic() < deadline:
                try:
                    data, addr = rx.recvfrom(1 << 18)
                except BlockingIOError:
                    select.select([rx], [], [], 0.01)
                    continue
                if addr[2] == PACKET_OUTGOING or len(data) < 66:
                    continue
                got_pay += len(data) - 66
                nout += 1
                t_last = time.perf_counter_ns()
            if got_pay < total_pay:
                raise RuntimeError(f"kernel GRO delivered {got_pay} of {total_pay} payload bytes")
            ns.append((t_last - t0) / len(frames))
            merged.append(nout)
            time.sleep(0.005)
        return _row(w, "kernel", ns, "one send() per 1514 B frame (Python) into a veth with TSO off, receiver "
                    "gro on + gro_flush_timeout 200 us + napi_defer_hard_irqs 1, merged frames read by AF_PACKET; "
                    f"{min(merged)}..{max(merged)} merged frames per pass; a full veth ring (ENOBUFS) is retried", extra=min(merged) / len(frames),
                    units=len(frames))
    finally:
        tx.close()
        rx.close()


def run_all(ws, short: bool = True, log=print) -> tuple[list[dict], list[dict]]:
    """Kernel rows for the GSO and GRO workloads, or skip records saying why not."""
    from offload import netns
    from bench.workloads import read_pcap

    todo = [w for w in ws if w.op in ("gso4", "gso6", "uso4") or (w.op == "gro4" and w.params.get("flows") == 1)]
    if not todo:
        return [], []
    ok, why = netns.available()
    if not ok:
        return [], [{"peer": "kernel", "op": w.op, "workload": w.name, "skipped": why} for w in todo]
    rows, skipped = [], []
    reps = 5 if short else 15
    with netns.veth_pair("off-bench", mtu=1500, dev_a="obka0", dev_b="obkb0", disable_ipv6=False) as vp:
        vp.add_veth("obga0", "obgb0")
        netns.ethtool_k(vp.ns_a, vp.dev_a, tx="off")
        netns.ethtool_k(vp.ns_b, vp.dev_b, gro="off")
        netns.ethtool_k(vp.ns_a, "obga0", tso="off")
        netns.ethtool_k(vp.ns_b, "obgb0", gro="on")
        netns.sysfs_write(vp.ns_b, "obgb0", "gro_flush_timeout", 200000)
        netns.sysfs_write(vp.ns_b, "obgb0", "napi_defer_hard_irqs", 1)
        gro_vp = netns.VethPair(vp.ns_a, vp.ns_b, "obga0", "obgb0")
        for w in todo:
            try:
                frames = read_pcap(w.file)
                if max(len(f) for f in frames) > 65535:
                    skipped.append({"peer": "kernel", "op": w.op, "workload": w.name,
                                    "skipped": "BIG TCP over veth needs gso_ipv4_max_size raised; not set up here"})
                    continue
                if w.op == "gro4":
                    if w.burst != 32:
                        continue  # the kernel has no burst: one row is enough
                    rows.append(_gro(netns, gro_vp, w, frames, reps))
                else:
                    rows.append(_gso(netns, vp, w, frames, reps, rounds=20 if short else 200))
            except (OSError, RuntimeError) as e:
                skipped.append({"peer": "kernel", "op": w.op, "workload": w.name, "skipped": str(e)})
                log(f"kernel {w.name}: {e}")
    return rows, skipped
