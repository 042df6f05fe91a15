"""Internet checksum (RFC 1071) kernels.

Conventions
-----------
* A *sum* is the 16-bit one's-complement sum of a span read as big-endian
  16-bit words starting at the span's first byte (odd trailing byte padded with
  zero), folded, **not** inverted, as a Python/Numba int in 0..0xFFFF. The
  checksum stored in a header is ``~sum & 0xFFFF``.
* Internally a span is summed by :func:`_vacc` (64-byte vector blocks, masked
  edges, read through the data pointer) into a 64-bit accumulator of its
  little-endian 16-bit lanes relative to its start; :func:`acc_span` gives it "in
  absolute parity" (a byte at an even buffer offset is the low byte of its lane)
  and :func:`acc_to_sum` turns that into a sum relative to the span's start. This
  is why spans at any alignment cost the same.
* Kernels take ``buf`` (uint8) and, for compatibility, ``w32``
  (``PacketBatch.w32``); the sums no longer read it.
"""

from __future__ import annotations

import os as _os

import numpy as np
from llvmlite import ir as _llvm_ir
from numba import njit
from numba.core import cgutils as _cgutils
from numba.core import config as _nb_config
from numba.core import types as _nb_types
from numba.core.extending import intrinsic

from . import status as S
from .batch import u32_view
from .parse import _borrow, _parse_fast, _parse_general

_U64 = np.uint64
_M16 = np.uint64(0xFFFF)
_M32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def fold16(acc):
    """Fold a 64-bit one's-complement accumulator to 16 bits (uint64 0..0xFFFF)."""
    acc = np.uint64(acc)
    acc = (acc & _M32) + (acc >> np.uint64(32))
    acc = (acc & _M32) + (acc >> np.uint64(32))
    acc = (acc & _M16) + (acc >> np.uint64(16))
    acc = (acc & _M16) + (acc >> np.uint64(16))
    acc = (acc & _M16) + (acc >> np.uint64(16))
    return acc


@njit(cache=True, nogil=True, inline="always")
def bswap16(x):
    x = np.uint64(x)
    return ((x & np.uint64(0xFF)) << np.uint64(8)) | ((x >> np.uint64(8)) & np.uint64(0xFF))


@njit(cache=True, nogil=True, inline="always")
def acc_to_sum(acc, start):
    """Absolute-parity accumulator of a span starting at buffer offset ``start`` -> its sum."""
    f = fold16(acc)
    if start & 1:
        return f
    return bswap16(f)


@njit(cache=True, nogil=True, inline="always")
def csum_add(a, b):
    """One's-complement addition of two 16-bit sums."""
    s = np.uint64(a) + np.uint64(b)
    s = (s & _M16) + (s >> np.uint64(16))
    return (s & _M16) + (s >> np.uint64(16))


@njit(cache=True, nogil=True, inline="always")
def csum_sub(a, b):
    """One's-complement subtraction: ``a - b`` (RFC 1624 style)."""
    return csum_add(a, np.uint64(0xFFFF) ^ np.uint64(b))


@njit(cache=True, nogil=True, inline="always")
def csum_add_at(total, part, rel_off):
    """Add ``part`` (the sum of a span) to ``total`` (the sum of an enclosing span)
    when the part starts ``rel_off`` bytes after the enclosing span: an odd offset
    contributes byte-swapped."""
    if rel_off & 1:
        return csum_add(total, bswap16(part))
    return csum_add(total, part)


@intrinsic
def _load64_raw(typingctx, arr, idx):
    sig = _nb_types.uint64(arr, idx)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        p = builder.bitcast(builder.gep(a.data, [args[1]]), _llvm_ir.IntType(64).as_pointer())
        return builder.load(p, align=1)
    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _load64_indexed(arr, idx):
    v = np.uint64(0)
    for k in range(8):
        v |= np.uint64(arr[idx + k]) << np.uint64(8 * k)
    return v


# load64(buf, i): the 8 bytes buf[i:i+8] as one little-endian uint64, at any alignment
# (one unaligned load). The caller guarantees i + 8 <= len(buf); bounds-checked runs
# (NUMBA_BOUNDSCHECK=1) read through indexing instead, so every byte is checked.
load64 = _load64_indexed if _nb_config.BOUNDSCHECK else _load64_raw


@njit(cache=True, nogil=True, inline="always")
def _acc(buf, w32, start, n, fast):
    """Absolute-parity accumulator of ``buf[start:start+n]`` (see :func:`acc_span`).

    One vector pass over the span (:func:`_vacc`: 64-byte blocks, masked edges) read
    through the data pointer: no word view, no byte loops at the edges, no slice and no
    array variable in the caller's loop (each costs two atomic reference-count updates).
    ``w32`` and ``fast`` are no longer needed (kept for the callers' signatures)."""
    r = _vacc(buf, start, n)
    if start & 1:
        # relative lanes of a span at an odd offset are the absolute ones swapped
        return bswap16(fold16(r))
    return r


@njit(cache=True, nogil=True, inline="always")
def acc_span(buf, w32, start, n):
    """Absolute-parity 64-bit accumulator of ``buf[start:start+n]``: a byte at an even
    buffer offset is the low byte of its 16-bit lane. Combine accumulators by adding
    them; :func:`acc_to_sum` gives the sum relative to the span's start.

    ``w32`` is not read (any uint32 array); callers keep ``0 <= start`` and
    ``start + n <= len(buf)``; ``n <= 0`` gives 0. Inlined into its callers: a call
    between Numba functions costs more than summing a 20-byte header.
    """
    return _acc(buf, w32, start, n, False)


@njit(cache=True, nogil=True, inline="always")
def acc_span_fast(buf, w32, start, n):
    """:func:`acc_span` (once faster for spans inside the word view; the vector sum
    reads no word view, so the two are now the same)."""
    return _acc(buf, w32, start, n, True)


@njit(cache=True, nogil=True, inline="always")
def sum_span(buf, w32, start, n):
    """Folded big-endian sum (not inverted) of ``buf[start:start+n]``."""
    return acc_to_sum(acc_span(buf, w32, start, n), start)


@njit(cache=True, nogil=True)
def copy_sum(src, sw32, s, dst, dw32, d, n):
    """Copy ``src[s:s+n]`` to ``dst[d:d+n]`` and return the sum of the bytes (relative
    to the span start, as :func:`sum_span`). One pass when ``s`` and ``d`` have the
    same alignment mod 4 and both arenas have word views; otherwise copy, then sum."""
    if (s & 3) == (d & 3) and sw32.shape[0] > 0 and dw32.shape[0] > 0:
        acc = np.uint64(0)
        i = 0
        while i < n and ((s + i) & 3) != 0:
            b = src[s + i]
            dst[d + i] = b
            acc += np.uint64(b) << np.uint64(((s + i) & 1) * 8)
            i += 1
        js = (s + i) >> 2
        jd = (d + i) >> 2
        nw = (n - i) >> 2
        lim = min(sw32.shape[0] - js, dw32.shape[0] - jd)
        if nw > lim:
            nw = max(0, lim)
        if nw > 0:
            sw = sw32[js:js + nw]
            dw = dw32[jd:jd + nw]
            a1 = np.uint64(0)
            for k in range(nw):
                w = sw[k]
                dw[k] = w
                a1 += np.uint64(w)
            acc += a1
            i += nw * 4
        while i < n:
            b = src[s + i]
            dst[d + i] = b
            acc += np.uint64(b) << np.uint64(((s + i) & 1) * 8)
            i += 1
        return acc_to_sum(acc, s)
    sv = src[s:s + n]
    dv = dst[d:d + n]
    for k in range(n):
        dv[k] = sv[k]
    return sum_span(dst, dw32, d, n)


@njit(cache=True, nogil=True)
def copy_bytes(src, s, dst, d, n):
    """Copy ``n`` bytes with an explicit loop (vectorised; slice assignment is ~18x slower)."""
    sv = src[s:s + n]
    dv = dst[d:d + n]
    for k in range(n):
        dv[k] = sv[k]


def u64_view(buf: np.ndarray) -> np.ndarray:
    """A ``uint64`` view of the 8-byte-aligned prefix of ``buf`` for :func:`copy_sum64`
    (empty when ``buf`` does not start 8-byte aligned)."""
    if buf.size < 8 or buf.ctypes.data % 8 or not buf.flags.c_contiguous:
        return np.empty(0, np.uint64)
    return buf[: buf.size & ~7].view(np.uint64)


_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def copy_sum64(src, sw64, s, dst, dw64, d, n):
    """:func:`copy_sum` over 64-bit words, inlined into the caller: for many short spans
    (GSO segments) it costs ~30 ns per 1448 bytes where ``copy_sum`` costs ~50 (half the
    loop trips, no call, no byte loops). Each word is summed as its two 32-bit halves
    into 64-bit accumulators. The partial first and last words are copied by masked
    read-modify-write of the destination word (the bytes around the span are rewritten
    with their own values: do not run it concurrently with a writer of those bytes).

    One pass when ``s`` and ``d`` are equal mod 8 and both word views (``uint64`` views
    of ``src``/``dst`` from their first byte) cover the words touched; otherwise a byte
    copy with a byte-wise sum. Returns the sum relative to the span start, as
    :func:`sum_span`."""
    if n > 0 and (s & 7) == (d & 7) and sw64.shape[0] > 0 and dw64.shape[0] > 0:
        js = s >> 3
        jd = d >> 3
        nwords = ((s + n - 1) >> 3) - js + 1
        if js + nwords <= sw64.shape[0] and jd + nwords <= dw64.shape[0]:
            h = np.uint64(s & 7)
            t = np.uint64((s + n) & 7)
            hmask = _M64 << (np.uint64(8) * h)
            tmask = _M64 if t == 0 else (_M64 >> (np.uint64(64) - np.uint64(8) * t))
            if nwords == 1:
                m = hmask & tmask
                w = sw64[js] & m
                dw64[jd] = (dw64[jd] & ~m) | w
                return acc_to_sum((w & _M32) + (w >> np.uint64(32)), s)
            w = sw64[js] & hmask
            dw64[jd] = (dw64[jd] & ~hmask) | w
            edge = (w & _M32) + (w >> np.uint64(32))
            w = sw64[js + nwords - 1] & tmask
            dw64[jd + nwords - 1] = (dw64[jd + nwords - 1] & ~tmask) | w
            edge += (w & _M32) + (w >> np.uint64(32))
            nm = nwords - 2
            sv = sw64[js + 1:js + 1 + nm]
            dv = dw64[jd + 1:jd + 1 + nm]
            lo = np.uint64(0)
            hi = np.uint64(0)
            for k in range(nm):
                w = sv[k]
                dv[k] = w
                lo += w & _M32
                hi += w >> np.uint64(32)
            return acc_to_sum(lo + hi + edge, s)
    return _copy_sum_bytes(src, s, dst, d, n)


@njit(cache=True, nogil=True)
def _copy_sum_bytes(src, s, dst, d, n):
    """Byte-wise copy and sum (the rare unaligned / uncovered case of copy_sum64); kept out of
    line so the word loop of the inlined caller stays vectorised."""
    acc = np.uint64(0)
    for i in range(n):
        b = src[s + i]
        dst[d + i] = b
        acc += np.uint64(b) << np.uint64(((s + i) & 1) * 8)
    return acc_to_sum(acc, s)




@njit(cache=True, nogil=True, inline="always")
def _store64_indexed(arr, idx, val):
    for k in range(8):
        arr[idx + k] = (val >> np.uint64(8 * k)) & np.uint64(0xFF)


_P8 = _nb_types.CPointer(_nb_types.uint8)


@intrinsic
def _ptr(typingctx, arr):
    """The data pointer of a uint8 array as a plain value: inlined helpers that take it
    instead of the array bind no array variable, so Numba emits no reference-count
    updates around their loops (atomic operations that wait for the store buffer to
    drain: ~8 ns each after a 1.5 KB copy)."""
    sig = _P8(arr)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.bitcast(a.data, _llvm_ir.IntType(8).as_pointer())
    return sig, codegen


def _mk_ptr_load(bits):
    @intrinsic
    def ld(typingctx, p, idx):
        sig = _nb_types.uint64(_P8, idx)

        def codegen(context, builder, signature, args):
            q = builder.bitcast(builder.gep(args[0], [args[1]]), _llvm_ir.IntType(bits).as_pointer())
            v = builder.load(q, align=1)
            return builder.zext(v, _llvm_ir.IntType(64)) if bits < 64 else v
        return sig, codegen
    return ld


def _mk_ptr_store(bits):
    @intrinsic
    def st(typingctx, p, idx, val):
        sig = _nb_types.void(_P8, idx, _nb_types.uint64)

        def codegen(context, builder, signature, args):
            q = builder.bitcast(builder.gep(args[0], [args[1]]), _llvm_ir.IntType(bits).as_pointer())
            v = builder.trunc(args[2], _llvm_ir.IntType(bits)) if bits < 64 else args[2]
            builder.store(v, q, align=1)
            return context.get_dummy_value()
        return sig, codegen
    return st


@njit(cache=True, nogil=True, inline="always")
def _same(arr):
    return arr


@njit(cache=True, nogil=True, inline="always")
def _ild8(arr, idx):
    return np.uint64(arr[idx])


@njit(cache=True, nogil=True, inline="always")
def _ist8(arr, idx, val):
    arr[idx] = val & np.uint64(0xFF)


# What the word copies read and write through: the data pointer (no reference counting,
# no checks), or, in bounds-checked runs, the array itself with indexed (checked) access.
if _nb_config.BOUNDSCHECK:
    _ref, _ld8, _ld64, _st8, _st64 = _same, _ild8, _load64_indexed, _ist8, _store64_indexed
else:
    _ref, _ld8, _ld64, _st8, _st64 = (_ptr, _mk_ptr_load(8), _mk_ptr_load(64), _mk_ptr_store(8),
                                      _mk_ptr_store(64))


# --- the span sum: 64-byte vector blocks, masked edges ---------------------------------

def _host_has_avx512bw() -> bool:
    """pmaddwd on 512-bit vectors is used only when Numba compiles for this host and the
    host has AVX-512BW (a ``NUMBA_CPU_NAME`` override, e.g. for portable caches, gets the
    generic block sum). ``OFFLOAD_CSUM_GENERIC=1`` forces the generic sum, to test it on
    an AVX-512 host: use it with a fresh ``NUMBA_CACHE_DIR`` (the cache is keyed on the
    source and the CPU, not on this switch)."""
    if _nb_config.CPU_NAME or _os.environ.get("OFFLOAD_CSUM_GENERIC"):
        return False
    try:
        from llvmlite import binding as _llb
        return "+avx512bw" in _llb.get_host_cpu_features().flatten().split(",")
    except Exception:       # pragma: no cover - no feature query: stay generic
        return False


_PMADD = _host_has_avx512bw()
_RUN = 16384        # 64-byte blocks per run of the 32-bit lane accumulators (no overflow)


def _vsum_ir(builder, ptr, a, n, aligned):
    """LLVM IR: sum of the little-endian 16-bit lanes of the bytes ``ptr[a:a+n]``, lanes
    relative to ``ptr + a`` (see :func:`_vacc`); an i64 congruent to that sum modulo
    0xFFFF and zero only when every byte is.

    The span is read as 64-byte blocks; the partial first/last block with a masked load
    (``llvm.masked.load``: bytes outside the span are neither read nor faulted on), so no
    scalar head or tail loop. Full blocks: with AVX-512BW each 16-bit lane is flipped by
    0x8000 and ``pmaddwd``-ed with ones into signed 32-bit lanes (one multiply-add per 64
    bytes, fused with the add into ``vpdpwssd`` on VNNI hosts; the flip is undone by
    adding 0x8000 per lane at the end), four independent accumulators; elsewhere the
    lanes are split with a mask and a shift into two 32-bit accumulators. ``aligned``
    starts the blocks at the 64-byte boundary at or below ``ptr + a`` (the head block
    masked): long spans then never split a load across cache lines (64 KB: ~7% faster),
    and lanes follow the address parity, swapped back at the end for an odd start."""
    i1, i8, i16, i32, i64 = (_llvm_ir.IntType(b) for b in (1, 8, 16, 32, 64))
    v16 = _llvm_ir.VectorType(i32, 16)
    v32w = _llvm_ir.VectorType(i16, 32)
    v16q = _llvm_ir.VectorType(i64, 16)
    v64b = _llvm_ir.VectorType(i8, 64)
    mod = builder.module
    fn = _cgutils.get_or_insert_function
    redq = fn(mod, _llvm_ir.FunctionType(i64, [v16q]), "llvm.vector.reduce.add.v16i64")
    redd = fn(mod, _llvm_ir.FunctionType(i32, [v16]), "llvm.vector.reduce.add.v16i32")
    mload = fn(mod, _llvm_ir.FunctionType(v64b, [ptr.type, i32, _llvm_ir.VectorType(i1, 64), v64b]),
               "llvm.masked.load.v64i8.p0")

    def c64(x):
        return _llvm_ir.Constant(i64, x)

    zero = _llvm_ir.Constant(v16, [0] * 16)
    m16 = _llvm_ir.Constant(v16, [0xFFFF] * 16)
    s16 = _llvm_ir.Constant(v16, [16] * 16)
    lane = _llvm_ir.Constant(v64b, list(range(64)))

    def splat8(x):
        v = builder.insert_element(_llvm_ir.Constant(v64b, _llvm_ir.Undefined), builder.trunc(x, i8),
                                   _llvm_ir.Constant(i32, 0))
        return builder.shuffle_vector(v, _llvm_ir.Constant(v64b, _llvm_ir.Undefined),
                                      _llvm_ir.Constant(_llvm_ir.VectorType(i32, 64), [0] * 64))

    def masked(q, lo, hi):
        # bytes [lo, hi) of the 64-byte block at q: lane sum as i64 (< 2**21)
        mk = builder.icmp_unsigned('<', lane, splat8(hi))
        if lo is not None:
            mk = builder.and_(mk, builder.icmp_unsigned('>=', lane, splat8(lo)))
        v = builder.bitcast(builder.call(mload, [q, _llvm_ir.Constant(i32, 1), mk,
                                                 _llvm_ir.Constant(v64b, [0] * 64)]), v16)
        s = builder.add(builder.and_(v, m16), builder.lshr(v, s16))
        return builder.zext(builder.call(redd, [s]), i64)

    total = _cgutils.alloca_once_value(builder, c64(0))
    start = builder.gep(ptr, [a])
    if aligned:
        addr = builder.ptrtoint(start, i64)
        mis = builder.and_(addr, c64(63))
        base = builder.gep(start, [builder.neg(mis)])
        span = builder.add(mis, n)
    else:
        mis = None
        base = start
        span = n
    with builder.if_else(builder.icmp_signed('<=', span, c64(64))) as (small, big):
        with small:
            with builder.if_then(builder.icmp_signed('>', n, c64(0))):
                builder.store(masked(base, mis, span), total)
        with big:
            if aligned:
                builder.store(masked(base, mis, c64(64)), total)
                body = builder.gep(base, [c64(64)])
                nfull = builder.sub(builder.lshr(span, c64(6)), c64(1))
            else:
                body = base
                nfull = builder.lshr(span, c64(6))
            nacc = 4 if _PMADD else 2
            accs = [_cgutils.alloca_once_value(builder, zero) for _ in range(nacc)]
            nrun = builder.lshr(builder.add(nfull, c64(_RUN - 1)), c64(14))
            with _cgutils.for_range(builder, nrun) as outer:
                c0 = builder.shl(outer.index, c64(14))
                rem = builder.sub(nfull, c0)
                m = builder.select(builder.icmp_unsigned('<', rem, c64(_RUN)), rem, c64(_RUN))
                for ap in accs:
                    builder.store(zero, ap)

                def block(bi, k):
                    q = builder.bitcast(builder.gep(body, [builder.shl(bi, c64(6))]), v32w.as_pointer())
                    v = builder.load(q, align=64 if aligned else 1)
                    if _PMADD:
                        pm = fn(mod, _llvm_ir.FunctionType(v16, [v32w, v32w]), "llvm.x86.avx512.pmaddw.d.512")
                        v = builder.xor(v, _llvm_ir.Constant(v32w, [0x8000] * 32))
                        ap = accs[k]
                        builder.store(builder.add(builder.load(ap),
                                                  builder.call(pm, [v, _llvm_ir.Constant(v32w, [1] * 32)])), ap)
                    else:
                        v = builder.bitcast(v, v16)
                        builder.store(builder.add(builder.load(accs[0]), builder.and_(v, m16)), accs[0])
                        builder.store(builder.add(builder.load(accs[1]), builder.lshr(v, s16)), accs[1])

                if _PMADD:
                    with _cgutils.for_range(builder, builder.lshr(m, c64(2))) as inner:
                        b0 = builder.add(c0, builder.shl(inner.index, c64(2)))
                        for u in range(4):
                            block(builder.add(b0, c64(u)), u)
                    m4 = builder.add(c0, builder.and_(m, c64(-4)))
                    with _cgutils.for_range(builder, builder.and_(m, c64(3))) as inner:
                        block(builder.add(m4, inner.index), 0)
                    ext = builder.sext
                else:
                    with _cgutils.for_range(builder, m) as inner:
                        block(builder.add(c0, inner.index), 0)
                    ext = builder.zext
                if aligned:
                    s = ext(builder.load(accs[0]), v16q)
                    for ap in accs[1:]:
                        s = builder.add(s, ext(builder.load(ap), v16q))
                    r = builder.call(redq, [s])
                else:
                    # short spans (< 2 KB, see _vacc_ptr): every lane of every accumulator
                    # stays below 2**22 in magnitude, so one 32-bit reduction is exact
                    s = builder.load(accs[0])
                    for ap in accs[1:]:
                        s = builder.add(s, builder.load(ap))
                    r = ext(builder.call(redd, [s]), i64)
                builder.store(builder.add(builder.load(total), r), total)
            if _PMADD:
                # each of the 32 lanes of a full block entered as (lane - 0x8000)
                builder.store(builder.add(builder.load(total), builder.shl(nfull, c64(20))), total)
            t = builder.and_(span, c64(63))
            with builder.if_then(builder.icmp_unsigned('!=', t, c64(0))):
                q = builder.gep(body, [builder.shl(nfull, c64(6))])
                builder.store(builder.add(builder.load(total), masked(q, None, t)), total)
    acc = builder.load(total)
    if aligned:
        # lanes followed the address parity: for an odd start, fold and swap the bytes
        f = acc
        for sh, mk in ((32, 0xFFFFFFFF), (32, 0xFFFFFFFF), (16, 0xFFFF), (16, 0xFFFF), (16, 0xFFFF)):
            f = builder.add(builder.and_(f, c64(mk)), builder.lshr(f, c64(sh)))
        sw = builder.or_(builder.shl(builder.and_(f, c64(0xFF)), c64(8)), builder.lshr(f, c64(8)))
        acc = builder.select(builder.trunc(addr, i1), sw, acc)
    return acc


# _vacc_u: unaligned blocks, only for spans shorter than 2 KB (its 32-bit reduction);
# _vacc_a: aligned blocks, any length
def _mk_vacc(aligned):
    @intrinsic
    def vacc(typingctx, p, a, n):
        sig = _nb_types.uint64(_P8, _nb_types.int64, _nb_types.int64)

        def codegen(context, builder, signature, args):
            return _vsum_ir(builder, args[0], args[1], args[2], aligned)
        return sig, codegen
    return vacc


_vacc_u = _mk_vacc(False)
_vacc_a = _mk_vacc(True)


@njit(cache=True, nogil=True, inline="always")
def _vacc_ptr(p, a, n):
    # unaligned blocks for short spans (no head block, no parity fix-up), aligned for long
    if n >= 2048:
        return _vacc_a(p, a, n)
    return _vacc_u(p, a, n)


@njit(cache=True, nogil=True, inline="always")
def _vacc_indexed(arr, a, n):
    acc = np.uint64(0)
    for k in range(n):
        acc += np.uint64(arr[a + k]) << np.uint64((k & 1) * 8)
    return acc


@njit(cache=True, nogil=True, inline="always")
def _vacc_any(buf, a, n):
    if buf.strides[0] != 1:
        return _vacc_indexed(buf, a, n)
    return _vacc_ptr(_ptr(buf), a, n)


# _vacc(buf, a, n): accumulator of buf[a:a+n] relative to its start (a byte at an even
# distance from ``a`` is the low byte of its lane; ``bswap16(fold16(acc))`` is the sum).
# The caller keeps the span inside ``buf``; ``n <= 0`` gives 0. A contiguous array is
# read through its data pointer (:func:`_vacc_ptr`); a strided one, and every array in
# bounds-checked runs, byte by byte through (checked) indexing.
_vacc = _vacc_indexed if _nb_config.BOUNDSCHECK else _vacc_any


@njit(cache=True, nogil=True, inline="always")
def _copy_words_at(ps, s, pd, d, n):
    if n < 8:
        for k in range(n):
            _st8(pd, d + k, _ld8(ps, s + k))
        return
    for k in range(n >> 3):
        _st64(pd, d + 8 * k, _ld64(ps, s + 8 * k))
    if n & 7:
        _st64(pd, d + n - 8, _ld64(ps, s + n - 8))


@njit(cache=True, nogil=True, inline="always")
def _copy_sum_words_at(ps, s, pd, d, n):
    if n < 8:
        acc = np.uint64(0)
        for k in range(n):
            b = _ld8(ps, s + k)
            _st8(pd, d + k, b)
            acc += b << np.uint64((k & 1) * 8)
        return bswap16(fold16(acc))
    lo = np.uint64(0)
    hi = np.uint64(0)
    for k in range(n >> 3):
        w = _ld64(ps, s + 8 * k)
        _st64(pd, d + 8 * k, w)
        lo += w & _M32
        hi += w >> np.uint64(32)
    r = n & 7
    if r:
        # the last 8 bytes again: stored whole (same values), summed only for their
        # last r bytes, which start at an even distance from s (8 * (n >> 3))
        w = _ld64(ps, s + n - 8)
        _st64(pd, d + n - 8, w)
        w >>= np.uint64(64 - 8 * r)
        lo += w & _M32
        hi += w >> np.uint64(32)
    return bswap16(fold16(lo + hi))


@njit(cache=True, nogil=True, inline="always")
def copy_words(src, s, dst, d, n):
    """Copy ``src[s:s+n]`` to ``dst[d:d+n]`` (uint8 arrays; distinct buffers, or spans
    that do not overlap) with unaligned 64-bit loads and stores, inlined. No slice and no
    call (each costs atomic reference-count updates), and the arrays are read through
    their data pointers, so the caller's loop carries no reference counting either: a
    66-byte header costs a few ns where :func:`copy_bytes` costs ~40. Vectorised for long
    spans. Nothing outside ``dst[d:d+n]`` is written (the last word overlaps the one
    before it). The caller guarantees both spans lie inside their arrays; bounds-checked
    runs (``NUMBA_BOUNDSCHECK=1``) index the arrays instead, so every byte is checked."""
    _copy_words_at(_ref(src), s, _ref(dst), d, n)


@njit(cache=True, nogil=True, inline="always")
def copy_sum_words(src, s, dst, d, n):
    """:func:`copy_words` fused with the checksum: returns the sum of the bytes relative
    to the span start (as :func:`sum_span`). Any alignment, no word views, nothing read
    or written outside the two spans; each word is summed as its two 32-bit halves into
    64-bit accumulators (LLVM vectorises the loop to AVX-512 here). In GSO's segment
    loop: ~38 ns per 1448 bytes, np.copyto of the same bytes ~32, copy_sum64 ~70."""
    return _copy_sum_words_at(_ref(src), s, _ref(dst), d, n)


@njit(cache=True, nogil=True, inline="always")
def sum_short(buf, start, n):
    """:func:`sum_span` for short spans (headers: 20-60 bytes) at any alignment: 64-bit
    unaligned loads, no word view, no slice, inlined. Same result as ``sum_span``."""
    acc = np.uint64(0)
    k = 0
    while k + 8 <= n:
        w = load64(buf, start + k)
        acc += (w & _M32) + (w >> np.uint64(32))
        k += 8
    while k < n:
        acc += np.uint64(buf[start + k]) << np.uint64((k & 1) * 8)
        k += 1
    # lanes were read relative to the span start (its even bytes are low bytes)
    return bswap16(fold16(acc))


@njit(cache=True, nogil=True)
def acc_any(buf, start, n):
    """Accumulator of ``buf[start:start+n]`` *relative to the span start* (a byte at an
    even distance from ``start`` is the low byte of its lane), from 64-bit unaligned
    loads: no word view needed, any alignment, vectorised. ``fold16`` then
    ``bswap16`` gives the sum. For Python-level calls, where building a word view
    (``u32_view``: ~3 us for ``buf.ctypes``) costs more than summing 64 KB."""
    a = np.uint64(0)
    b = np.uint64(0)
    nw = n >> 3
    for k in range(nw):
        w = load64(buf, start + 8 * k)
        a += w & _M32
        b += w >> np.uint64(32)
    acc = a + b
    for k in range(nw * 8, n):
        acc += np.uint64(buf[start + k]) << np.uint64((k & 1) * 8)
    return acc


@njit(cache=True, nogil=True)
def pseudo_sum_v4(buf, l3, proto, l4_len):
    """Sum of the IPv4 pseudo-header of the packet whose IP header starts at ``buf[l3]``."""
    acc = np.uint64(0)
    for k in range(0, 8, 2):
        acc += (np.uint64(buf[l3 + 12 + k]) << np.uint64(8)) | np.uint64(buf[l3 + 13 + k])
    acc += np.uint64(proto)
    acc += np.uint64(l4_len & 0xFFFF) + np.uint64((l4_len >> 16) & 0xFFFF)
    return fold16(acc)


@njit(cache=True, nogil=True)
def pseudo_sum_v6(buf, l3, dst, proto, l4_len):
    """Sum of the IPv6 pseudo-header; ``dst`` is the offset of the (final) destination address."""
    acc = np.uint64(0)
    for k in range(0, 16, 2):
        acc += (np.uint64(buf[l3 + 8 + k]) << np.uint64(8)) | np.uint64(buf[l3 + 9 + k])
        acc += (np.uint64(buf[dst + k]) << np.uint64(8)) | np.uint64(buf[dst + 1 + k])
    acc += np.uint64(proto)
    acc += np.uint64(l4_len & 0xFFFF) + np.uint64((l4_len >> 16) & 0xFFFF)
    return fold16(acc)


# --- incremental update (RFC 1624) ------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def csum_replace16(check, old, new):
    """RFC 1624 eqn. 3: the new stored checksum after a 16-bit field changes from
    ``old`` to ``new`` (big-endian field values as host ints): ``~(~check + ~old + new)``.

    Unlike RFC 1141's ``check - ~old - new`` this never turns a correct 0x0000 into
    0xFFFF. A UDP result of 0 must still be stored as 0xFFFF by the caller, and a UDP
    checksum of 0 ("none", IPv4) must not be updated at all.
    """
    c = csum_add(np.uint64(0xFFFF) ^ (np.uint64(check) & _M16), np.uint64(0xFFFF) ^ (np.uint64(old) & _M16))
    c = csum_add(c, np.uint64(new) & _M16)
    return np.uint64(0xFFFF) ^ c


@njit(cache=True, nogil=True, inline="always")
def csum_replace32(check, old, new):
    """RFC 1624 for a 32-bit field (an IPv4 address, a TCP sequence number): both
    16-bit halves replaced in one step; same conventions as :func:`csum_replace16`."""
    old = np.uint64(old)
    new = np.uint64(new)
    c = csum_add(np.uint64(0xFFFF) ^ (np.uint64(check) & _M16), np.uint64(0xFFFF) ^ ((old >> np.uint64(16)) & _M16))
    c = csum_add(c, np.uint64(0xFFFF) ^ (old & _M16))
    c = csum_add(c, (new >> np.uint64(16)) & _M16)
    c = csum_add(c, new & _M16)
    return np.uint64(0xFFFF) ^ c


@njit(cache=True, nogil=True, inline="always")
def csum_fold(partial):
    """Linux ``csum_fold``: fold an unfolded partial sum (any uint64) to 16 bits **and
    invert it** -- the value to store in a header. (:func:`fold16` folds without
    inverting, like DPDK's ``__rte_raw_cksum_reduce``.)"""
    return np.uint64(0xFFFF) ^ fold16(partial)


# --- per-frame helpers for the batch kernels ---------------------------------

@njit(cache=True, nogil=True, inline="always")
def _be16(buf, i):
    return (np.uint64(buf[i]) << np.uint64(8)) | np.uint64(buf[i + 1])


@njit(cache=True, nogil=True, inline="always")
def _store16(buf, i, v):
    buf[i] = np.uint8((v >> np.uint64(8)) & np.uint64(0xFF))
    buf[i + 1] = np.uint8(v & np.uint64(0xFF))


# L4 kinds the engine checksums
K_NONE = 0
K_TCP = 1
K_UDP = 2
K_ICMP4 = 3
K_ICMP6 = 4


@njit(cache=True, nogil=True, inline="always")
def _plan(buf, s, n, st, l3p, pflags, proto, l3, l4, end, dst):
    """:func:`l4_plan` on the record's fields, read once by the caller into locals
    (each structured-record field read is a load the compiler cannot share across
    the stores into ``detail``/``meta``)."""
    if l3p != 0x0800 and l3p != 0x86DD:
        if st != S.OK and st != S.NOT_IP:
            return S.CSUM_SKIP_TRUNC, K_NONE, 0, 0
        return S.CSUM_SKIP_PROTO, K_NONE, 0, 0
    if pflags & S.PF_FRAG:
        return S.CSUM_SKIP_FRAG, K_NONE, 0, 0
    if st != S.OK:
        return S.CSUM_SKIP_TRUNC, K_NONE, 0, 0
    hmin = 8
    if proto == 6:
        kind = K_TCP
        hmin = 20
    elif proto == 17:
        kind = K_UDP
    elif proto == 1 and l3p == 0x0800:
        kind = K_ICMP4
    elif proto == 58 and l3p == 0x86DD:
        kind = K_ICMP6
        hmin = 4
    else:
        return S.CSUM_SKIP_PROTO, K_NONE, 0, 0
    if l3 < 0 or l4 < l3 or end > n or l4 + hmin > end:
        return S.CSUM_SKIP_TRUNC, K_NONE, 0, 0
    if l3p == 0x0800:
        if l3 + 20 > l4:
            return S.CSUM_SKIP_TRUNC, K_NONE, 0, 0
    elif l3 + 40 > l4 or dst < l3 or dst + 16 > n:
        return S.CSUM_SKIP_TRUNC, K_NONE, 0, 0
    ln = end - l4
    if kind == K_UDP:
        # the checksum covers the UDP length, not trailing IP payload; 0 = jumbo/USO
        ulen = np.int64(_be16(buf, s + l4 + 4))
        if ulen != 0:
            if ulen < 8 or ulen > ln:
                return S.CSUM_SKIP_TRUNC, K_NONE, 0, 0
            ln = ulen
    return 0, kind, l4, ln


@njit(cache=True, nogil=True, inline="always")
def l4_plan(buf, s, n, meta, i):
    """Whether frame ``i`` (``buf[s:s+n]``, already parsed into ``meta[i]``) has an L4
    checksum this engine computes, from the parser's layout.

    Returns ``(code, kind, l4, l4_len)``: ``code`` is 0 when the checksum covers the
    frame bytes ``[l4, l4 + l4_len)`` (``l4`` relative to the frame; the field is at
    ``l4 + field_offset(kind)``), else the CSUM_* reason it cannot be computed. Every
    offset is re-checked against ``n``, so a caller-supplied (unparsed, corrupt)
    ``meta`` cannot cause an out-of-bounds access.
    """
    m = meta[i]
    return _plan(buf, s, n, np.int64(m.status), np.int64(m.l3_proto), np.int64(m.pflags),
                 np.int64(m.l4_proto), np.int64(m.l3_off), np.int64(m.l4_off),
                 np.int64(m.l3_end), np.int64(m.dst_off))


@njit(cache=True, nogil=True, inline="always")
def field_offset(kind):
    """Offset of the checksum field from the L4 header start, for an ``l4_plan`` kind."""
    if kind == K_TCP:
        return 16
    if kind == K_UDP:
        return 6
    return 2


@njit(cache=True, nogil=True, inline="always")
def _pacc(buf, w32, s, l3p, l3, dst, fast):
    """Addresses of the pseudo-header as an accumulator in the parity of ``l4abs``.

    Both addresses sit an even number of bytes before the L4 header (IPv4: 12+8 vs
    IHL*4; IPv6: 8/24 vs 40+8k; a routing header's final address at 8+16k inside it),
    so their absolute-parity accumulators combine directly with the L4 span's."""
    if l3p == 0x0800:
        return _acc(buf, w32, s + l3 + 12, 8, fast)
    return _acc(buf, w32, s + l3 + 8, 16, fast) + _acc(buf, w32, s + dst, 16, fast)


@njit(cache=True, nogil=True, inline="always")
def _sums(buf, w32, s, l3p, l3, dst, proto, kind, l4, ln, fast):
    """(total, pseudo0): the folded sum of the L4 span plus its pseudo-header (none for
    ICMP) with the checksum field as it is, and the folded pseudo-header sum with
    upper-layer length 0 (addresses + protocol), from the same reads."""
    l4abs = s + l4
    acc = _acc(buf, w32, l4abs, ln, fast)
    if kind == K_ICMP4:
        return acc_to_sum(acc, l4abs), np.uint64(0)
    pacc = _pacc(buf, w32, s, l3p, l3, dst, fast)
    p0 = fold16(acc_to_sum(pacc, l4abs) + np.uint64(proto))
    total = fold16(acc_to_sum(acc, l4abs) + p0 + np.uint64(ln & 0xFFFF) + np.uint64((ln >> 16) & 0xFFFF))
    return total, p0


@njit(cache=True, nogil=True, inline="always")
def l4_sum(buf, w32, s, meta, i, kind, l4, ln, fast=False):
    """Folded sum (not inverted) of the L4 span plus its pseudo-header (none for ICMP),
    as planned by :func:`l4_plan`; the checksum field is included as it is."""
    m = meta[i]
    return _sums(buf, w32, s, np.int64(m.l3_proto), np.int64(m.l3_off), np.int64(m.dst_off),
                 np.int64(m.l4_proto), kind, l4, ln, fast)[0]


@njit(cache=True, nogil=True, inline="always")
def pseudo_sum(buf, w32, s, meta, i, ln):
    """Folded pseudo-header sum of frame ``i`` with upper-layer length ``ln``."""
    m = meta[i]
    l4abs = s + np.int64(m.l4_off)
    acc = _pacc(buf, w32, s, np.int64(m.l3_proto), np.int64(m.l3_off), np.int64(m.dst_off), False)
    return fold16(acc_to_sum(acc, l4abs) + np.uint64(m.l4_proto) + np.uint64(ln & 0xFFFF)
                  + np.uint64((ln >> 16) & 0xFFFF))


@njit(cache=True, nogil=True, inline="always")
def _same16(a, b):
    """Equal as one's-complement numbers (0x0000 and 0xFFFF are both zero)."""
    return a == b or (a == 0 and b == 0xFFFF) or (a == 0xFFFF and b == 0)


@njit(cache=True, nogil=True, inline="always")
def _is_partial(found, p0, ln):
    """CHECKSUM_PARTIAL capture: the field holds the folded pseudo-header sum (Linux:
    with the L4 length; DPDK TSO: with length 0) or its inverse. ``p0``: the pseudo
    sum with length 0. Arithmetic only: a call here cost every frame ~5 ns."""
    p = fold16(p0 + np.uint64(ln & 0xFFFF) + np.uint64((ln >> 16) & 0xFFFF))
    return (_same16(found, p) or _same16(found, np.uint64(0xFFFF) ^ p)
            or _same16(found, p0) or _same16(found, np.uint64(0xFFFF) ^ p0))


# detail columns written by verify_frames / fill_frames
D_IP = 0          # IPv4 header verdict (OK or CSUM_*)
D_L4 = 1          # L4 verdict
D_IP_FOUND = 2    # IPv4 header checksum in the frame (-1: none)
D_IP_WANT = 3     # the correct value
D_L4_FOUND = 4
D_L4_WANT = 5
D_COLS = 6


@njit(cache=True, nogil=True, inline="always")
def _layout(m):
    """The nine layout fields of a record that the verify and fill paths use, as int64
    locals read once, up front (each structured-record field read is a load the compiler
    cannot share across the stores into ``detail``/``meta``): status, l3_proto, pflags,
    l4_proto, l3_off, l3_hdr_len, l4_off, l3_end, dst_off."""
    return (np.int64(m.status), np.int64(m.l3_proto), np.int64(m.pflags), np.int64(m.l4_proto),
            np.int64(m.l3_off), np.int64(m.l3_hdr_len), np.int64(m.l4_off), np.int64(m.l3_end),
            np.int64(m.dst_off))


@njit(cache=True, nogil=True, inline="always")
def _ip_verdict(tot, found):
    """(code, wanted value) of an IPv4 header checksum from ``tot``, the folded sum of the
    header with the field as found (``found``, big-endian value)."""
    if tot == 0xFFFF:
        return S.OK, np.int64(found)
    return S.CSUM_BAD_IP, np.int64(np.uint64(0xFFFF) ^ csum_sub(tot, found))


@njit(cache=True, nogil=True, inline="always")
def _l4_verdict(kind, found, tot):
    """(code, wanted value) of an L4 checksum from ``tot``, the folded sum of the span and
    its pseudo-header with the field as found: UDP_ZERO_V6, OK or BAD_L4 (the caller
    tells CHECKSUM_PARTIAL captures from BAD_L4, see :func:`_is_partial`)."""
    want = np.uint64(0xFFFF) ^ csum_sub(tot, found)
    if kind == K_UDP and want == 0:
        want = np.uint64(0xFFFF)
    if kind == K_UDP and found == 0:
        code = S.CSUM_UDP_ZERO_V6
    elif tot == 0xFFFF:
        code = S.OK
    else:
        code = S.CSUM_BAD_L4
    return code, np.int64(want)


@njit(cache=True, nogil=True, inline="always")
def _verify_rec(buf, w32, s, n, m, detail, i, fast):
    """Verify the parsed frame whose record is ``m`` (``meta[i]``); fill ``detail[i]``;
    return the overall CSUM_* code. Every layout field is read once (:func:`_layout`)."""
    st, l3p, pflags, proto, l3, hl, l4o, end, dst = _layout(m)
    ip = S.CSUM_NA
    ipf = -1
    ipw = -1
    if l3p == 0x0800 and hl >= 20 and l3 >= 0 and l3 + hl <= n:
        a3 = s + l3
        found = _be16(buf, a3 + 10)
        ipf = np.int64(found)
        ip, ipw = _ip_verdict(acc_to_sum(_acc(buf, w32, a3, hl, fast), a3), found)
    code, kind, l4, ln = _plan(buf, s, n, st, l3p, pflags, proto, l3, l4o, end, dst)
    l4f = -1
    l4w = -1
    if code == 0:
        found = _be16(buf, s + l4 + field_offset(kind))
        l4f = np.int64(found)
        if kind == K_UDP and found == 0 and l3p == 0x0800:
            code = S.CSUM_NONE
        else:
            tot, p0 = _sums(buf, w32, s, l3p, l3, dst, proto, kind, l4, ln, fast)
            code, l4w = _l4_verdict(kind, found, tot)
            if code == S.CSUM_BAD_L4 and (kind == K_TCP or kind == K_UDP) and _is_partial(found, p0, ln):
                code = S.CSUM_PARTIAL
    _store_detail(detail, i, ip, code, ipf, ipw, l4f, l4w)
    if ip == S.CSUM_BAD_IP:
        return S.CSUM_BAD_IP
    return code


@njit(cache=True, nogil=True, inline="always")
def verify_one(buf, w32, s, n, meta, i, detail, fast):
    """Verify frame ``i`` (parsed); fill ``detail[i]``; return the overall CSUM_* code."""
    return _verify_rec(buf, w32, s, n, meta[i], detail, i, fast)


@njit(cache=True, nogil=True)
def _verify_general(b, s, n, m, d, i):
    """:func:`_verify_rec` out of line: every frame the fused path does not take (other
    protocols, options, routing headers, fragments, truncated or malformed frames)."""
    return _verify_rec(b, b, s, n, m, d, i, False)


@njit(cache=True, nogil=True, inline="always")
def _bad_span(m):
    """Record of a frame whose (offset, length) lie outside the arena."""
    m.status = S.TRUNC_L2
    m.l3_proto = 0


@njit(cache=True, nogil=True, inline="always")
def _store_detail(detail, i, ip, code, ipf, ipw, l4f, l4w):
    """One row of a batch result: per-layer verdicts, and the values found and wanted."""
    detail[i, D_IP] = ip
    detail[i, D_L4] = code
    detail[i, D_IP_FOUND] = ipf
    detail[i, D_IP_WANT] = ipw
    detail[i, D_L4_FOUND] = l4f
    detail[i, D_L4_WANT] = l4w


@njit(cache=True, nogil=True, inline="always")
def _frame_span(b, nbuf, s, n, m, parse):
    """The batch kernels' per-frame prologue: a frame lying outside the arena is marked and
    treated as empty; otherwise it is parsed first when asked (the parser's fast path
    inline). Returns the (start, length) to work on, and whether the parser's fast path
    accepted the frame (see :func:`_parsed_plan`)."""
    if s < 0 or n < 0 or s + n > nbuf:
        _bad_span(m)
        return 0, 0, False
    if parse:
        if _parse_fast(b, s, n, m):
            return s, n, True
        _parse_general(b, s, n, m)
    return s, n, False


@njit(cache=True, nogil=True, inline="always")
def _lohi(w):
    return (w & _M32) + (w >> np.uint64(32))


@njit(cache=True, nogil=True, inline="always")
def _fused_plan(b, s, n, m, contig):
    """The per-frame prologue shared by the verify and fill kernels' fused path: the
    layout (:func:`_layout`), the L4 plan, and whether the frame is the common case the
    fused code handles -- TCP or UDP, IPv4 without options (``l4 == l3 + 20``) or IPv6
    whose pseudo-header destination is the fixed header's (``l4 - l3`` even), in a
    contiguous arena. The plan re-checks every offset, so a caller-supplied ``meta``
    is as safe here as on the general path."""
    st, l3p, pflags, proto, l3, hl, l4o, end, dst = _layout(m)
    code, kind, l4, ln = _plan(b, s, n, st, l3p, pflags, proto, l3, l4o, end, dst)
    ok = contig and code == 0 and (kind == K_TCP or kind == K_UDP)
    if l3p == 0x0800:
        ok = ok and hl == 20 and l4 == l3 + 20
    else:
        ok = ok and dst == l3 + 24 and ((l4 - l3) & 1) == 0
    return ok, l3p, proto, l3, kind, l4, ln


@njit(cache=True, nogil=True, inline="always")
def _parsed_plan(b, s, m, contig):
    """:func:`_fused_plan` for a frame the parser's fast path has just accepted
    (``parse._parse_fast`` returned True): Ethernet / IPv4 unfragmented or IPv6 without
    extension headers / TCP or UDP, every length consistent (UDP length in 8..IP
    payload), the whole packet in the frame -- exactly what the L4 plan would check, so
    only the IPv4-options case is left to tell apart."""
    l3p = np.int64(m.l3_proto)
    proto = np.int64(m.l4_proto)
    l3 = np.int64(m.l3_off)
    l4 = np.int64(m.l4_off)
    if proto == 6:
        kind = K_TCP
        ln = np.int64(m.l3_end) - l4
    else:
        kind = K_UDP
        ln = np.int64(_be16(b, s + l4 + 4))
    ok = contig and (l3p == 0x86DD or l4 == l3 + 20)
    return ok, l3p, proto, l3, kind, l4, ln


@njit(cache=True, nogil=True, inline="always")
def _frame_plan(b, nbuf, s, n, m, parse, contig):
    """The verify and fill kernels' per-frame prologue: span check and parse
    (:func:`_frame_span`), then the plan of the fused path, from the parser's fast path
    when it took the frame (:func:`_parsed_plan`), else from the record
    (:func:`_fused_plan`). Returns (s, n, ok, l3p, proto, l3, kind, l4, ln)."""
    s, n, fp = _frame_span(b, nbuf, s, n, m, parse)
    if fp:
        ok, l3p, proto, l3, kind, l4, ln = _parsed_plan(b, s, m, contig)
    else:
        ok, l3p, proto, l3, kind, l4, ln = _fused_plan(b, s, n, m, contig)
    return s, n, ok, l3p, proto, l3, kind, l4, ln


@njit(cache=True, nogil=True, inline="always")
def _fused_sums(p, b, s, l3p, l3, proto, l4, ln):
    """The sums of a fused-path frame, from 64-bit loads of the IP header and one vector
    pass over the L4 span: (IPv4 header accumulator without its checksum field (0 for
    IPv6), the lane of that field (its value byte-swapped), the L4 total (folded sum of
    span + pseudo-header, field as found), the pseudo-header address accumulator).

    Accumulators are relative to their span (:func:`_vacc`); the addresses lie an even
    number of bytes before the L4 header, so their lanes add to the span's directly, and
    one fold gives the same 1..0xFFFF value as the general path's (sums that include the
    protocol number are never zero)."""
    a3 = s + l3
    if l3p == 0x0800:
        w0 = _ld64(p, a3)
        w1 = _ld64(p, a3 + 8)
        w2 = _ld64(p, a3 + 12)          # bytes 12..19: the two addresses
        pacc = _lohi(w2)
        ipx = _lohi(w0) + (w1 & np.uint64(0xFFFF)) + pacc
        ipf = (w1 >> np.uint64(16)) & _M16     # the field's lane (its bytes swapped)
    else:
        pacc = (_lohi(_ld64(p, a3 + 8)) + _lohi(_ld64(p, a3 + 16)) + _lohi(_ld64(p, a3 + 24))
                + _lohi(_ld64(p, a3 + 32)))
        ipx = np.uint64(0)
        ipf = np.uint64(0)
    # protocol and length enter the lanes times 2**8 (a byte swap, modulo 0xFFFF): one
    # fold and one swap for the whole sum
    c = np.uint64(proto) + np.uint64(ln & 0xFFFF) + np.uint64((ln >> 16) & 0xFFFF)
    tot = bswap16(fold16(_vacc(b, s + l4, ln) + pacc + (c << np.uint64(8))))
    return ipx, ipf, tot, pacc


@njit(cache=True, nogil=True, inline="always")
def _pseudo0(pacc, proto):
    """Folded pseudo-header sum with length 0, from the address accumulator."""
    return fold16(bswap16(fold16(pacc)) + np.uint64(proto))


@njit(cache=True, nogil=True, inline="always")
def _verify_fused(p, b, s, l3p, proto, l3, kind, l4, ln):
    """:func:`_verify_rec` for a frame :func:`_fused_plan` accepted: the same verdicts and
    detail values. Returns (ip, ipf, ipw, code, l4f, l4w)."""
    ipx, ipf, tot, pacc = _fused_sums(p, b, s, l3p, l3, proto, l4, ln)
    ip = S.CSUM_NA
    ipfv = np.int64(-1)
    ipw = np.int64(-1)
    if l3p == 0x0800:
        ipfv = np.int64(bswap16(ipf))
        ip, ipw = _ip_verdict(bswap16(fold16(ipx + ipf)), bswap16(ipf))
    found = _be16(b, s + l4 + field_offset(kind))
    l4f = np.int64(found)
    l4w = np.int64(-1)
    if kind == K_UDP and found == 0 and l3p == 0x0800:
        code = S.CSUM_NONE
    else:
        code, l4w = _l4_verdict(kind, found, tot)
        # the pseudo-header sum for the partial test only when the checksum is wrong
        if code == S.CSUM_BAD_L4 and _is_partial(found, _pseudo0(pacc, proto), ln):
            code = S.CSUM_PARTIAL
    return ip, ipfv, ipw, code, l4f, l4w


# what the batch kernels return instead of a count when len / meta / detail are shorter
# than off or detail has fewer than D_COLS columns (nothing is read or written then)
_BAD_SHAPE = -1


@njit(cache=True, nogil=True, inline="always")
def _bad_shape(off, length, meta, detail):
    n = off.shape[0]
    return length.shape[0] < n or meta.shape[0] < n or detail.shape[0] < n or detail.shape[1] < D_COLS


@njit(cache=True, nogil=True, _nrt=False)
def _verify_kernel(buf, off, length, meta, detail, parse):
    """:func:`verify_frames` without the word view (one array fewer to unbox per call:
    ~0.1 us); what :func:`verify_batch` calls. Compiled without NRT: unboxing an array
    argument then allocates no meminfo (~30 ns each)."""
    if _bad_shape(off, length, meta, detail):
        return _BAD_SHAPE
    bad = 0
    nbuf = buf.shape[0]
    b = _borrow(buf)
    p = _ref(b)
    contig = buf.strides[0] == 1
    d = _borrow(detail)
    for i in range(off.shape[0]):
        m = meta[i]
        s, n, ok, l3p, proto, l3, kind, l4, ln = _frame_plan(b, nbuf, off[i], length[i], m, parse, contig)
        if ok:
            ip, ipf, ipw, code, l4f, l4w = _verify_fused(p, b, s, l3p, proto, l3, kind, l4, ln)
            _store_detail(d, i, ip, code, ipf, ipw, l4f, l4w)
            if ip == S.CSUM_BAD_IP:
                code = S.CSUM_BAD_IP
        else:
            code = _verify_general(b, s, n, m, d, i)
        m.csum = code
        if code != S.CSUM_SKIP_TRUNC:
            m.status = code
        if code == S.OK or code == S.CSUM_NONE:
            m.vnet_flags |= 2
        elif code == S.CSUM_BAD_IP or code == S.CSUM_BAD_L4 or code == S.CSUM_UDP_ZERO_V6 or code == S.CSUM_PARTIAL:
            m.vnet_flags &= 0xFD
            if code != S.CSUM_PARTIAL:
                bad += 1
    return bad


@njit(cache=True, nogil=True)
def verify_frames(buf, w32, off, length, meta, detail, parse):
    """Batch verify kernel. ``parse``: run the parser first (else trust ``meta``).

    Writes ``meta.csum`` (overall verdict), ``meta.status`` (the same, except that a
    malformed frame keeps its parser code), ``detail`` (int32, ``(n, D_COLS)``) and the
    DATA_VALID bit of ``meta.vnet_flags`` (set when good or UDP/IPv4 without checksum,
    cleared when bad or partial, untouched when not checked). Returns the number of
    frames found bad (BAD_IP, BAD_L4, UDP_ZERO_V6; partial is not counted). ``w32`` is
    not used (kept for callers).

    The loop works on refcount-free views of the arrays (``parse._borrow``) and on the
    record ``m = meta[i]``, with the parser's fast path inline; the common frame
    (:func:`_fused_plan`) is verified by straight-line code (:func:`_verify_fused`),
    every other one by an out-of-line call to the general path."""
    return _verify_kernel(buf, off, length, meta, detail, parse)


@njit(cache=True, nogil=True, inline="always")
def _fill_rec(buf, w32, s, n, m, detail, i, keep_udp_none, fast):
    """:func:`fill_one` on the record ``m`` (``meta[i]``), its fields read once."""
    st, l3p, pflags, proto, l3, hl, l4o, end, dst = _layout(m)
    ip = S.CSUM_NA
    ipf = -1
    ipw = -1
    if l3p == 0x0800 and hl >= 20 and l3 >= 0 and l3 + hl <= n:
        a3 = s + l3
        ipf = np.int64(_be16(buf, a3 + 10))
        buf[a3 + 10] = 0
        buf[a3 + 11] = 0
        v = np.uint64(0xFFFF) ^ acc_to_sum(_acc(buf, w32, a3, hl, fast), a3)
        _store16(buf, a3 + 10, v)
        ipw = np.int64(v)
        ip = S.OK
    code, kind, l4, ln = _plan(buf, s, n, st, l3p, pflags, proto, l3, l4o, end, dst)
    l4f = -1
    l4w = -1
    if code == 0:
        fa = s + l4 + field_offset(kind)
        old = _be16(buf, fa)
        l4f = np.int64(old)
        if kind == K_UDP and old == 0 and keep_udp_none and l3p == 0x0800:
            code = S.CSUM_NONE
            l4w = 0
        else:
            buf[fa] = 0
            buf[fa + 1] = 0
            v = np.uint64(0xFFFF) ^ _sums(buf, w32, s, l3p, l3, dst, proto, kind, l4, ln, fast)[0]
            if kind == K_UDP and v == 0:
                v = np.uint64(0xFFFF)
            _store16(buf, fa, v)
            l4w = np.int64(v)
            code = S.OK
            m.vnet_flags &= 0xFE      # no longer partial
    _store_detail(detail, i, ip, code, ipf, ipw, l4f, l4w)
    if code == S.CSUM_NONE and ip == S.OK:
        return S.OK
    return code


@njit(cache=True, nogil=True, inline="always")
def fill_one(buf, w32, s, n, meta, i, detail, keep_udp_none, fast):
    """Compute and store the IPv4 header and L4 checksums of frame ``i`` (parsed).
    ``detail`` gets the old values (FOUND) and the stored ones (WANT). Returns OK when
    every checksum the frame has was written, else the reason one was left alone."""
    return _fill_rec(buf, w32, s, n, meta[i], detail, i, keep_udp_none, fast)


@njit(cache=True, nogil=True)
def _fill_general(b, s, n, m, d, i, keep_udp_none):
    """:func:`_fill_rec` out of line, for the frames the fused path does not take."""
    return _fill_rec(b, b, s, n, m, d, i, keep_udp_none, False)


@njit(cache=True, nogil=True, inline="always")
def _fill_fused(p, b, s, m, l3p, proto, l3, kind, l4, ln, keep_udp_none):
    """:func:`_fill_rec` for a frame :func:`_fused_plan` accepted: the same bytes written
    and the same detail values, from sums taken before any store (the fields are taken
    out arithmetically: a load of bytes just stored would wait for the store).
    Returns (ip, ipf, ipw, code, l4f, l4w)."""
    ipx, ipf, tot, pacc = _fused_sums(p, b, s, l3p, l3, proto, l4, ln)
    ip = S.CSUM_NA
    ipfv = np.int64(-1)
    ipw = np.int64(-1)
    if l3p == 0x0800:
        v = np.uint64(0xFFFF) ^ bswap16(fold16(ipx))
        _store16(b, s + l3 + 10, v)
        ip = S.OK
        ipfv = np.int64(bswap16(ipf))
        ipw = np.int64(v)
    fa = s + l4 + field_offset(kind)
    old = _be16(b, fa)
    l4f = np.int64(old)
    if kind == K_UDP and old == 0 and keep_udp_none and l3p == 0x0800:
        return ip, ipfv, ipw, S.CSUM_NONE, l4f, np.int64(0)
    # the total without the field: both are the nonzero representative (tot >= 1)
    v = np.uint64(0xFFFF) ^ csum_add(tot, np.uint64(0xFFFF) ^ old)
    if kind == K_UDP and v == 0:
        v = np.uint64(0xFFFF)
    _store16(b, fa, v)
    m.vnet_flags &= 0xFE      # no longer partial
    return ip, ipfv, ipw, S.OK, l4f, np.int64(v)


@njit(cache=True, nogil=True, _nrt=False)
def _fill_kernel(buf, off, length, meta, detail, parse, keep_udp_none):
    """:func:`fill_frames` without the word view; what :func:`fill_batch` calls (without
    NRT, as :func:`_verify_kernel`)."""
    if _bad_shape(off, length, meta, detail):
        return _BAD_SHAPE
    done = 0
    nbuf = buf.shape[0]
    b = _borrow(buf)
    p = _ref(b)
    contig = buf.strides[0] == 1
    d = _borrow(detail)
    for i in range(off.shape[0]):
        m = meta[i]
        s, n, ok, l3p, proto, l3, kind, l4, ln = _frame_plan(b, nbuf, off[i], length[i], m, parse, contig)
        if ok:
            ip, ipf, ipw, code, l4f, l4w = _fill_fused(p, b, s, m, l3p, proto, l3, kind, l4, ln, keep_udp_none)
            _store_detail(d, i, ip, code, ipf, ipw, l4f, l4w)
            if code == S.CSUM_NONE and ip == S.OK:
                code = S.OK
        else:
            code = _fill_general(b, s, n, m, d, i, keep_udp_none)
        m.csum = code
        if code != S.CSUM_SKIP_TRUNC:
            m.status = code
        if code == S.OK:
            m.vnet_flags |= 2
            done += 1
    return done


@njit(cache=True, nogil=True)
def fill_frames(buf, w32, off, length, meta, detail, parse, keep_udp_none):
    """Batch fill kernel (see :func:`fill_one`). Writes ``meta.csum``/``meta.status``
    like :func:`verify_frames`; sets DATA_VALID for fully filled frames. Returns the
    number of frames with every checksum written. Same loop shape as
    :func:`verify_frames` (borrowed views, the record, the parser's fast path inline,
    the common frame by straight-line code, the rest out of line)."""
    return _fill_kernel(buf, off, length, meta, detail, parse, keep_udp_none)


@njit(cache=True, nogil=True)
def complete_frames(buf, w32, off, length, meta):
    """Software completion of CHECKSUM_PARTIAL frames (Linux ``skb_checksum_help``).

    For every frame whose ``meta.vnet_flags`` has NEEDS_CSUM: check that
    ``csum_start + csum_offset + 2 <= len``, sum from ``csum_start`` to the end of
    the frame (the field holds the pseudo-header sum, so it is included), store the
    inverted sum big-endian at ``csum_start + csum_offset`` (0 stored as 0xFFFF, as
    Linux does for every protocol) and clear NEEDS_CSUM. A frame whose offsets fall
    outside it gets CSUM_BAD_START and is left unchanged. Frames without NEEDS_CSUM
    are not touched. Returns the number completed (-1 when ``length`` or ``meta`` is shorter than
    ``off``: nothing done)."""
    return _complete_kernel(buf, off, length, meta)


@njit(cache=True, nogil=True, _nrt=False)
def _complete_kernel(buf, off, length, meta):
    """:func:`complete_frames` without the word view; what :func:`complete_batch` calls
    (without NRT, as :func:`_verify_kernel`)."""
    n_in = off.shape[0]
    if length.shape[0] < n_in or meta.shape[0] < n_in:
        return _BAD_SHAPE
    done = 0
    nbuf = buf.shape[0]
    for i in range(off.shape[0]):
        m = meta[i]
        if (np.int64(m.vnet_flags) & 1) == 0:
            continue
        s = off[i]
        n = length[i]
        cs = np.int64(m.csum_start)
        co = np.int64(m.csum_offset)
        if s < 0 or n < 0 or s + n > nbuf or cs + co + 2 > n:
            m.csum = S.CSUM_BAD_START
            m.status = S.CSUM_BAD_START
            continue
        a = s + cs
        v = np.uint64(0xFFFF) ^ acc_to_sum(acc_span(buf, buf, a, n - cs), a)
        if v == 0:
            v = np.uint64(0xFFFF)
        _store16(buf, a + co, v)
        m.vnet_flags &= 0xFE
        m.csum = S.OK
        m.status = S.OK
        done += 1
    return done


# --- Python API (one call per burst) ------------------------------------------

def _as_u8(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise TypeError("need a 1-D uint8 array")
        return data
    return np.frombuffer(data, np.uint8)


def raw_sum(data, start: int = 0, length: int | None = None, fold: bool = True) -> int:
    """RFC 1071 sum of ``data[start:start+length]`` (not inverted), as an int.

    ``data`` is any bytes-like object or 1-D uint8 array. The span is read as
    big-endian 16-bit words from its first byte; an odd last byte is padded with
    zero. With ``fold=True`` (default) the result is folded to 0..0xFFFF; with
    ``fold=False`` it is a 32-bit unfolded partial sum (like Linux's ``__wsum``),
    congruent to the folded one modulo 0xFFFF, to combine with :func:`csum_add`
    (partials of spans that start an odd number of bytes into the combined span go
    in byte-swapped: :func:`csum_add_at`), then :func:`fold16` / :func:`csum_fold`.
    """
    buf = _as_u8(data)
    if length is None:
        length = buf.size - start
    if start < 0 or length < 0 or start + length > buf.size:
        raise ValueError(f"span [{start}, {start}+{length}) outside a buffer of {buf.size} bytes")
    acc = int(acc_any(buf, start, length))
    if fold:
        # (plain Python: calling the Numba fold16/bswap16 from here costs a dispatch each)
        while acc >> 16:
            acc = (acc & 0xFFFF) + (acc >> 16)
        return ((acc & 0xFF) << 8) | (acc >> 8)
    # lanes are little-endian relative to the span start; the big-endian partial is
    # the same accumulator with every 16-bit lane byte-swapped, i.e. times 2**8
    # modulo 0xFFFF
    while acc >> 32:
        acc = (acc & 0xFFFFFFFF) + (acc >> 32)
    acc <<= 8
    while acc >> 32:
        acc = (acc & 0xFFFFFFFF) + (acc >> 32)
    return acc


def checksum(data) -> int:
    """The Internet checksum (inverted sum) of ``data``, as stored in a header."""
    return (~raw_sum(data)) & 0xFFFF


class CsumResult:
    """What a batch verify / fill found, per frame (arrays of length ``n``).

    ``status``: overall CSUM_* / OK code (also in ``meta['csum']``); ``ip`` and ``l4``:
    per-layer codes; ``ip_found``/``ip_want`` and ``l4_found``/``l4_want``: the
    checksum in the frame and the correct one (fill: the value before and the value
    stored), big-endian field values as ints, -1 where the layer has none.
    """

    # status (a view of meta['csum']) and the n-row view of a caller's larger detail
    # array are made when first asked for: each costs ~0.1-0.2 us per burst otherwise
    __slots__ = ("_status", "_detail", "count", "_meta", "_n")

    def __init__(self, status: np.ndarray | None, detail: np.ndarray, count: int,
                 meta: np.ndarray | None = None, n: int | None = None):
        self._status = status
        self._detail = detail
        self.count = count
        self._meta = meta
        self._n = n

    @property
    def status(self) -> np.ndarray:
        st = self._status
        if st is None:
            st = self._status = self._meta["csum"]
        return st

    @status.setter
    def status(self, value):
        self._status = value

    @property
    def detail(self) -> np.ndarray:
        d = self._detail
        if self._n is not None:
            if d.shape[0] != self._n:
                d = self._detail = d[:self._n]
            self._n = None
        return d

    @detail.setter
    def detail(self, value):
        self._detail = value
        self._n = None

    ip = property(lambda self: self.detail[:, D_IP])
    l4 = property(lambda self: self.detail[:, D_L4])
    ip_found = property(lambda self: self.detail[:, D_IP_FOUND])
    ip_want = property(lambda self: self.detail[:, D_IP_WANT])
    l4_found = property(lambda self: self.detail[:, D_L4_FOUND])
    l4_want = property(lambda self: self.detail[:, D_L4_WANT])

    def __len__(self) -> int:
        return int(self.status.shape[0])

    def summary(self) -> dict[str, int]:
        """Frame count per overall verdict name (``status.NAMES``)."""
        codes, counts = np.unique(self.status, return_counts=True)
        return {S.NAMES.get(int(c), str(int(c))): int(k) for c, k in zip(codes, counts)}

    def bad(self) -> np.ndarray:
        """Indices of frames with a wrong checksum (IPv4 header, L4, UDP 0 over IPv6)."""
        st = self.status
        return np.flatnonzero((st == S.CSUM_BAD_IP) | (st == S.CSUM_BAD_L4) | (st == S.CSUM_UDP_ZERO_V6))

    def __repr__(self) -> str:
        return f"CsumResult({self.summary()})"


_I32 = np.dtype(np.int32)      # np.empty with a dtype object: ~60 ns less than with np.int32
_empty = np.empty


def _shape_error(detail):
    if detail is not None and detail.shape[1] < D_COLS:
        raise ValueError(f"detail must have {D_COLS} columns (it has {detail.shape[1]})")
    raise ValueError("batch.len and batch.meta must have one entry per frame of batch.off")


def verify_batch(batch, parse: bool = True, detail: np.ndarray | None = None) -> CsumResult:
    """Verify the IPv4 header and TCP/UDP/ICMP/ICMPv6 checksums of every frame.

    ``parse=False`` trusts ``batch.meta`` from an earlier :func:`offload.parse.parse_batch`
    (offsets are still bounds-checked). ``detail`` (int32 ``(>=n, 6)``) may be passed
    in to reuse memory across bursts. Per-frame verdicts go to ``meta['csum']`` and
    ``meta['status']``; good frames get DATA_VALID in ``meta['vnet_flags']``.
    ``result.count`` is the number of bad frames (partial ones not included).
    """
    # (no helper call for the lines shared with fill_batch: one costs ~0.1 us per burst)
    off = batch.off
    n = off.shape[0]
    if detail is None or detail.shape[0] < n:
        detail = _empty((n, D_COLS), _I32)
    meta = batch.meta
    if n:
        bad = _verify_kernel(batch.buf, off, batch.len, meta, detail, parse)
        if bad >= 0:
            # a larger caller array is written in its first n rows, cut to n when read
            return CsumResult(None, detail, bad, meta, n)
        _shape_error(detail)
    return CsumResult(meta["csum"].copy(), detail, 0, None, 0)


def fill_batch(batch, parse: bool = True, keep_udp_none: bool = True,
               detail: np.ndarray | None = None) -> CsumResult:
    """Compute and store, in place, the IPv4 header checksum and the L4 checksum of
    every frame that has them (a UDP result of 0 is stored as 0xFFFF).

    ``keep_udp_none``: leave UDP/IPv4 datagrams sent without a checksum (field 0) as
    they are. Frames that are truncated, fragments or of an unknown protocol keep
    their L4 bytes; ``result.status`` says why. ``result.count`` is the number of
    frames with every checksum written. NEEDS_CSUM is cleared on filled frames.
    """
    off = batch.off
    n = off.shape[0]
    if detail is None or detail.shape[0] < n:
        detail = _empty((n, D_COLS), _I32)
    meta = batch.meta
    if n:
        done = _fill_kernel(batch.buf, off, batch.len, meta, detail, parse, keep_udp_none)
        if done >= 0:
            return CsumResult(None, detail, done, meta, n)
        _shape_error(detail)
    return CsumResult(meta["csum"].copy(), detail, 0, None, 0)


def complete_batch(batch) -> int:
    """Complete every NEEDS_CSUM frame of ``batch`` in place, as Linux's
    ``skb_checksum_help`` (see :func:`complete_frames`). Returns the number completed;
    frames with bad offsets get ``meta['csum'] == CSUM_BAD_START``."""
    if batch.off.shape[0] == 0:
        return 0
    done = _complete_kernel(batch.buf, batch.off, batch.len, batch.meta)
    if done < 0:
        _shape_error(None)
    return done
