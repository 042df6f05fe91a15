"""Linux system-call plumbing shared by the ports: libc via ctypes, bpf(), setns.

No protocol logic lives here. Everything is plain ctypes: no libbpf, no clang
(see shared/reference/afxdp-findings.md for the measured facts this follows).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import socket
import struct
import threading

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.sendto.restype = ctypes.c_ssize_t
libc.sendto.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
libc.bind.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.sendmmsg.restype = ctypes.c_int
libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]

CLONE_NEWNET = 0x40000000
SYS_BPF = 321  # x86-64
MSG_DONTWAIT = 0x40


UIO_MAXIOV = 1024      # messages per sendmmsg call at most (the kernel caps vlen there)
MMSG_WORDS = 8         # struct mmsghdr (x86-64): struct msghdr (56 bytes) + msg_len, padded to 64
IOV_WORDS = 2          # struct iovec: base, length


def mmsg_table(n: int, iovs: int):
    """Zeroed ``struct mmsghdr[n]`` (as an (n, 8) uint64 array) whose messages point at
    ``iovs`` iovecs each in the returned (n * iovs, 2) uint64 iovec array: fill in the
    iovecs' base and length and the table is ready for :func:`sendmmsg`."""
    import numpy as np
    mm = np.zeros((n, MMSG_WORDS), np.uint64)
    iov = np.zeros((n * iovs, IOV_WORDS), np.uint64)
    mm[:, 2] = iov.ctypes.data + np.arange(n, dtype=np.uint64) * (16 * iovs)   # msg_iov
    mm[:, 3] = iovs                                                             # msg_iovlen
    return mm, iov


def sendmmsg(fd: int, table_addr: int, vlen: int, flags: int) -> tuple[int, int]:
    """``sendmmsg(2)``: (messages sent, errno or 0)."""
    k = libc.sendmmsg(fd, table_addr, vlen, flags)
    return (k, 0) if k >= 0 else (-1, ctypes.get_errno())


def errcheck(rc: int, what: str) -> int:
    """Raise ``OSError`` with errno and a message naming ``what`` when ``rc`` < 0."""
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return rc


# -- bpf() -----------------------------------------------------------------
BPF_MAP_CREATE = 0
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_PROG_LOAD = 5
BPF_LINK_CREATE = 28
BPF_MAP_TYPE_XSKMAP = 17
BPF_PROG_TYPE_XDP = 6
BPF_XDP = 37
BPF_F_XDP_HAS_FRAGS = 1 << 5
XDP_FLAGS_SKB_MODE = 2
XDP_FLAGS_DRV_MODE = 4


def bpf(cmd: int, attr: bytes, what: str) -> int:
    """The raw bpf(2) system call; ``attr`` is the packed ``union bpf_attr`` prefix."""
    buf = ctypes.create_string_buffer(attr, max(len(attr), 128))
    return errcheck(libc.syscall(SYS_BPF, cmd, buf, len(buf)), what)


def xskmap_create(max_entries: int) -> int:
    return bpf(BPF_MAP_CREATE, struct.pack("<IIII", BPF_MAP_TYPE_XSKMAP, 4, 4, max_entries), "bpf(MAP_CREATE xskmap)")


def map_update_u32(map_fd: int, key: int, value: int) -> None:
    k = ctypes.c_uint32(key)
    v = ctypes.c_uint32(value)
    bpf(BPF_MAP_UPDATE_ELEM, struct.pack("<IIQQQ", map_fd, 0, ctypes.addressof(k), ctypes.addressof(v), 0),
        "bpf(MAP_UPDATE_ELEM)")


def xdp_redirect_prog(map_fd: int, frags: bool) -> int:
    """Load the 6-instruction program ``return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS)``.

    With ``frags`` it is loaded with BPF_F_XDP_HAS_FRAGS, which native (DRV) mode
    on veth requires once the MTU exceeds a page (multi-buffer frames)."""
    insns = b"".join([
        bytes.fromhex("6112100000000000"),                      # r2 = *(u32 *)(r1 + 16)  rx_queue_index
        bytes([0x18, 0x11, 0, 0]) + struct.pack("<I", map_fd),  # r1 = map_fd ll (BPF_PSEUDO_MAP_FD)
        bytes(8),
        bytes.fromhex("b703000002000000"),                      # r3 = XDP_PASS (when no socket in the slot)
        bytes.fromhex("8500000033000000"),                      # call bpf_redirect_map
        bytes.fromhex("9500000000000000"),                      # exit
    ])
    ibuf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = struct.pack("<IIQQIIQII16sII", BPF_PROG_TYPE_XDP, len(insns) // 8, ctypes.addressof(ibuf),
                       ctypes.addressof(lic), 1, len(log), ctypes.addressof(log), 0,
                       BPF_F_XDP_HAS_FRAGS if frags else 0, b"offload_xsk", 0, BPF_XDP)
    try:
        return bpf(BPF_PROG_LOAD, attr, "bpf(PROG_LOAD xdp redirect)")
    except OSError as e:
        msg = log.value.decode(errors="replace").strip()
        raise OSError(e.errno, f"{e.strerror}; verifier log: {msg[-400:]}") from None


def link_create_xdp(prog_fd: int, ifindex: int, mode_flags: int) -> int:
    """Attach ``prog_fd`` to ``ifindex`` (resolved in the calling thread's netns) with a
    BPF link; closing the returned fd (or exiting) detaches it."""
    return bpf(BPF_LINK_CREATE, struct.pack("<IIII", prog_fd, ifindex, BPF_XDP, mode_flags), "bpf(LINK_CREATE xdp)")


# -- network namespaces ------------------------------------------------------
_ns_lock = threading.Lock()


@contextlib.contextmanager
def in_netns(name_or_path: str | None):
    """Run the body with the calling thread in network namespace ``name_or_path``
    (a name under /run/netns or a path); ``None`` does nothing. Sockets keep the
    namespace they were created in, so a port opened inside stays there."""
    if not name_or_path:
        yield
        return
    path = name_or_path if "/" in name_or_path else f"/run/netns/{name_or_path}"
    with _ns_lock:
        old = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        new = os.open(path, os.O_RDONLY)
        try:
            errcheck(libc.setns(new, CLONE_NEWNET), f"setns({path})")
            try:
                yield
            finally:
                errcheck(libc.setns(old, CLONE_NEWNET), "setns(back)")
        finally:
            os.close(new)
            os.close(old)


def ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise OSError(19, f"no interface {name!r} in this network namespace") from None
