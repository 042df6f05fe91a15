"""Kernel TCP/UDP endpoints for the forwarder end-to-end tests (run inside a namespace).

    python shim_peer.py tcp-server PORT [SEND_BYTES]      accept one connection, read to EOF,
                                                          then send SEND_BYTES back, print JSON
    python shim_peer.py tcp-client HOST PORT SEND_BYTES   connect, send, shut down the write side,
                                                          read what comes back, print JSON
    python shim_peer.py udp-server PORT COUNT             receive COUNT datagrams, ack each window
    python shim_peer.py udp-client HOST PORT COUNT SEG    send COUNT datagrams of SEG bytes with
                                                          UDP_SEGMENT (USO), windowed by acks

Every JSON line holds byte counts and SHA-256 hashes of the streams, so the test
compares what one kernel sent with what the other received.
"""

import hashlib
import json
import socket
import struct
import sys
import time

CHUNK = 1 << 16
UDP_SEGMENT = 103
WINDOW = 64


def stream(nbytes, seed):
    """Deterministic bytes: 64 KiB chunks of a pseudo-random block, each stamped with its index."""
    import random
    block = random.Random(seed).randbytes(CHUNK * 17)
    i = 0
    sent = 0
    while sent < nbytes:
        k = min(CHUNK, nbytes - sent)
        o = (i * 7919) % (CHUNK * 16)
        c = bytearray(block[o:o + k])
        c[:8] = struct.pack(">Q", i)[:k] if k >= 8 else c[:8]
        yield bytes(c)
        sent += k
        i += 1


def send_stream(s, nbytes, seed):
    h = hashlib.sha256()
    n = 0
    for c in stream(nbytes, seed):
        s.sendall(c)
        h.update(c)
        n += len(c)
    return n, h.hexdigest()


def recv_stream(s):
    h = hashlib.sha256()
    n = 0
    while True:
        d = s.recv(1 << 20)
        if not d:
            return n, h.hexdigest()
        h.update(d)
        n += len(d)


def tcp_server(port, back):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    print(json.dumps({"listening": port}), flush=True)
    c, _ = ls.accept()
    t = time.monotonic()
    n, h = recv_stream(c)
    dt = time.monotonic() - t
    nb, hb = send_stream(c, back, 2) if back else (0, None)
    c.close()
    print(json.dumps({"recv_bytes": n, "recv_sha": h, "recv_s": dt, "sent_bytes": nb, "sent_sha": hb}), flush=True)


def tcp_client(host, port, nbytes):
    s = socket.create_connection((host, port), timeout=60)
    t = time.monotonic()
    n, h = send_stream(s, nbytes, 1)
    s.shutdown(socket.SHUT_WR)
    dt = time.monotonic() - t
    nb, hb = recv_stream(s)
    s.close()
    print(json.dumps({"sent_bytes": n, "sent_sha": h, "send_s": dt, "recv_bytes": nb, "recv_sha": hb}), flush=True)


def dgram(i, seg):
    import random
    return struct.pack(">I", i) + random.Random(i).randbytes(seg - 4)


def udp_server(port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)
    s.bind(("0.0.0.0", port))
    s.settimeout(20)
    print(json.dumps({"listening": port}), flush=True)
    got = {}
    sizes = set()
    while len(got) < count:
        try:
            d, peer = s.recvfrom(65536)
        except socket.timeout:
            break
        i = struct.unpack(">I", d[:4])[0]
        got[i] = d
        sizes.add(len(d))
        if len(got) % WINDOW == 0 or len(got) == count:
            s.sendto(struct.pack(">I", len(got)), peer)
    h = hashlib.sha256()
    for i in sorted(got):
        h.update(got[i])
    print(json.dumps({"recv_count": len(got), "recv_sha": h.hexdigest(), "sizes": sorted(sizes)}), flush=True)


def udp_client(host, port, count, seg):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_UDP, UDP_SEGMENT, seg)
    s.settimeout(10)
    s.connect((host, port))
    h = hashlib.sha256()
    per_send = 16
    i = 0
    while i < count:
        w_end = min(count, i + WINDOW)
        while i < w_end:
            k = min(per_send, w_end - i)
            buf = b"".join(dgram(j, seg) for j in range(i, i + k))
            for j in range(i, i + k):
                h.update(dgram(j, seg))
            s.send(buf)          # one super-send, segmented by USO somewhere on the path
            i += k
        want = w_end
        while True:
            a = struct.unpack(">I", s.recv(16)[:4])[0]
            if a >= want:
                break
    print(json.dumps({"sent_count": count, "sent_sha": h.hexdigest()}), flush=True)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "tcp-server":
        tcp_server(int(args[0]), int(args[1]) if len(args) > 1 else 0)
    elif cmd == "tcp-client":
        tcp_client(args[0], int(args[1]), int(args[2]))
    elif cmd == "udp-server":
        udp_server(int(args[0]), int(args[1]))
    elif cmd == "udp-client":
        udp_client(args[0], int(args[1]), int(args[2]), int(args[3]))
    else:
        sys.exit(f"unknown command {cmd}")
