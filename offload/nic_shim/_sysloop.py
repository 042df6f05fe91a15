"""System calls from inside Numba kernels: ``read``, ``writev`` and ``errno``.

A port whose device has no batch interface (the tap character device: one frame
per ``read``/``write``) still pays Python only once per burst: the loop over the
frames, and the system call for each, run in a kernel. The libc functions are
declared to LLVM by name (resolved in the process when the kernel is loaded, so
the kernels are cached like the others).

The kernels take addresses and lengths the caller has checked (every frame
inside its buffer); they return counts and an errno, never raise.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic

_I8P = ir.IntType(8).as_pointer()


def _libc(builder, name, ret, args):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


@intrinsic
def _read(typingctx, fd, addr, n):
    """``read(fd, (void *)addr, n)``: bytes read, or -1."""
    sig = types.int64(types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        fn = _libc(builder, "read", ir.IntType(64), [ir.IntType(32), _I8P, ir.IntType(64)])
        return builder.call(fn, [builder.trunc(args[0], ir.IntType(32)), builder.inttoptr(args[1], _I8P), args[2]])
    return sig, codegen


@intrinsic
def _writev(typingctx, fd, iov, cnt):
    """``writev(fd, (struct iovec *)iov, cnt)``: bytes written, or -1."""
    sig = types.int64(types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        fn = _libc(builder, "writev", ir.IntType(64), [ir.IntType(32), _I8P, ir.IntType(32)])
        return builder.call(fn, [builder.trunc(args[0], ir.IntType(32)), builder.inttoptr(args[1], _I8P),
                                 builder.trunc(args[2], ir.IntType(32))])
    return sig, codegen


@intrinsic
def _errno(typingctx):
    """The calling thread's ``errno``."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        fn = _libc(builder, "__errno_location", ir.IntType(32).as_pointer(), [])
        return builder.sext(builder.load(builder.call(fn, [])), ir.IntType(64))
    return sig, codegen


@njit(cache=True, nogil=True)
def read_frames(fd, base, slot_size, slots, lens, min_len, retry_eagain_codes):
    """Read one frame into each slot of ``slots`` in order (slot ``s`` at address ``base +
    s * slot_size``, up to ``slot_size`` bytes), until the device has none. A read
    shorter than ``min_len`` (no room for its header) is counted and its slot reused.
    ``retry_eagain_codes``: (EAGAIN, EINTR), the errnos that mean "nothing more now".
    Returns (frames read, errno that stopped it or 0 if every slot was filled or the
    device was empty, short reads). At most ``slots.size + 1024`` reads per call."""
    n = slots.shape[0]
    k = 0
    short = 0
    tries = 0
    while k < n and tries < n + 1024:
        tries += 1
        r = _read(fd, base + slots[k] * slot_size, slot_size)
        if r < 0:
            e = _errno()
            if e == retry_eagain_codes[0] or e == retry_eagain_codes[1]:
                return k, 0, short
            return k, e, short
        if r < min_len:
            short += 1
            continue
        lens[k] = r - min_len
        k += 1
    return k, 0, short


@njit(cache=True, nogil=True)
def write_frames(fd, buf_addr, off, ln, hdr_addr, hlen, iov, status, dropped_code, full_codes):
    """``writev`` each frame ``i`` (bytes ``buf_addr + off[i]``, ``ln[i]`` long) behind its
    ``hlen``-byte header at ``hdr_addr + i * hlen`` (none when ``hlen`` is 0). An errno in
    ``full_codes`` (EAGAIN, EINTR, ENOBUFS) ends the burst (queue full: the caller
    retries the rest); any other refuses that frame: ``status[i] = dropped_code``.
    ``iov``: 4 int64 of scratch (two struct iovec). Returns (frames taken, of which
    dropped, bytes sent, 1 if the queue was full)."""
    n = off.shape[0]
    dropped = 0
    nbytes = 0
    iov_addr = iov.ctypes.data
    for i in range(n):
        if hlen > 0:
            iov[0] = hdr_addr + i * hlen
            iov[1] = hlen
            iov[2] = buf_addr + off[i]
            iov[3] = ln[i]
            r = _writev(fd, iov_addr, 2)
        else:
            iov[0] = buf_addr + off[i]
            iov[1] = ln[i]
            r = _writev(fd, iov_addr, 1)
        if r < 0:
            e = _errno()
            if e == full_codes[0] or e == full_codes[1] or e == full_codes[2]:
                return i, dropped, nbytes, 1
            status[i] = dropped_code
            dropped += 1
            continue
        nbytes += ln[i]
    return n, dropped, nbytes, 0
