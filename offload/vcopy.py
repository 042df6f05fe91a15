"""Copy, and copy fused with the Internet checksum, written as explicit 512-bit vector code.

Why not :func:`offload.csum.copy_sum_words`: LLVM vectorises that loop 32 words at a time
and leaves the rest to a scalar loop, so a 1448-byte segment runs 21 of its 181 words one
by one, and a 66-byte header copy runs entirely scalar — in GSO's segment loop that was
more scalar work per segment than the rest of the loop. Here every span is whole 64-byte
vectors plus one masked vector for the last 0..63 bytes (AVX-512BW masked loads and
stores: no byte outside the span is read or written, no fault past its end): a 1448-byte
segment is 22 vector loads and stores plus one masked pair, a 66-byte header one plus one.

Used only where Numba compiles for a host with AVX-512BW (the same test as
:mod:`offload.csum`'s vector sum: a ``NUMBA_CPU_NAME`` override or ``OFFLOAD_CSUM_GENERIC``
gets the generic copies; elsewhere masked byte operations are split into scalar code by
LLVM) and never in bounds-checked runs (``NUMBA_BOUNDSCHECK=1``, where the
pointer helpers of :mod:`offload.csum` index the arrays instead, so every byte is checked);
:data:`VECTOR` says which. The results are the same either way: :func:`copy_sum` returns
the folded sum relative to the span start, as ``csum.copy_sum_words`` does.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit
from numba.core import cgutils
from numba.core import config as _nb_config
from numba.core import types as _nb_types
from numba.core.extending import intrinsic

from .csum import _P8, _copy_sum_words_at, _copy_words_at, _host_has_avx512bw, bswap16, fold16

VECTOR = (not _nb_config.BOUNDSCHECK) and _host_has_avx512bw()

_I1 = ir.IntType(1)
_I8 = ir.IntType(8)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_V64I8 = ir.VectorType(_I8, 64)
_V64I1 = ir.VectorType(_I1, 64)
_V8I64 = ir.VectorType(_I64, 8)


def _masked(builder, name, fnty):
    return cgutils.get_or_insert_function(builder.module, fnty, name)


def _emit(builder, ps, s, pd, d, n, with_sum):
    """IR for copying ``n`` bytes from ``ps+s`` to ``pd+d``; returns the 64-bit sum of the
    span's 32-bit little-endian halves of its 64-bit words (relative to the span start)
    when ``with_sum``, else 0."""
    src0 = builder.gep(ps, [s])
    dst0 = builder.gep(pd, [d])
    nblk = builder.lshr(n, ir.Constant(_I64, 6))
    zero = ir.Constant(_V8I64, None)
    m32 = ir.Constant(_V8I64, [0xFFFFFFFF] * 8)
    sh32 = ir.Constant(_V8I64, [32] * 8)
    pre = builder.block
    fn = builder.function
    loop = fn.append_basic_block("vc.loop")
    body = fn.append_basic_block("vc.body")
    after = fn.append_basic_block("vc.after")
    tail = fn.append_basic_block("vc.tail")
    done = fn.append_basic_block("vc.done")
    builder.branch(loop)

    builder.position_at_end(loop)
    i = builder.phi(_I64)
    acc = builder.phi(_V8I64)
    i.add_incoming(ir.Constant(_I64, 0), pre)
    acc.add_incoming(zero, pre)
    builder.cbranch(builder.icmp_unsigned("<", i, nblk), body, after)

    builder.position_at_end(body)
    off = builder.shl(i, ir.Constant(_I64, 6))
    v = builder.load(builder.bitcast(builder.gep(src0, [off]), _V8I64.as_pointer()), align=1)
    builder.store(v, builder.bitcast(builder.gep(dst0, [off]), _V8I64.as_pointer()), align=1)
    nacc = acc
    if with_sum:
        nacc = builder.add(builder.add(acc, builder.and_(v, m32)), builder.lshr(v, sh32))
    i.add_incoming(builder.add(i, ir.Constant(_I64, 1)), body)
    acc.add_incoming(nacc, body)
    builder.branch(loop)

    builder.position_at_end(after)
    rem = builder.and_(n, ir.Constant(_I64, 63))
    builder.cbranch(builder.icmp_unsigned("!=", rem, ir.Constant(_I64, 0)), tail, done)

    builder.position_at_end(tail)
    toff = builder.shl(nblk, ir.Constant(_I64, 6))
    iota = ir.Constant(_V64I8, list(range(64)))
    lim = builder.trunc(rem, _I8)
    splat = builder.insert_element(ir.Constant(_V64I8, ir.Undefined), lim, ir.Constant(_I32, 0))
    splat = builder.shuffle_vector(splat, ir.Constant(_V64I8, ir.Undefined), ir.Constant(ir.VectorType(_I32, 64), [0] * 64))
    mask = builder.icmp_unsigned("<", iota, splat)
    ptr_t = ir.PointerType()
    ld = _masked(builder, "llvm.masked.load.v64i8.p0", ir.FunctionType(_V64I8, [ptr_t, _I32, _V64I1, _V64I8]))
    stf = _masked(builder, "llvm.masked.store.v64i8.p0", ir.FunctionType(ir.VoidType(), [_V64I8, ptr_t, _I32, _V64I1]))
    sp = builder.bitcast(builder.gep(src0, [toff]), ptr_t)
    dp = builder.bitcast(builder.gep(dst0, [toff]), ptr_t)
    tv = builder.call(ld, [sp, ir.Constant(_I32, 1), mask, ir.Constant(_V64I8, None)])
    builder.call(stf, [tv, dp, ir.Constant(_I32, 1), mask])
    tacc = acc
    if with_sum:
        w = builder.bitcast(tv, _V8I64)
        tacc = builder.add(builder.add(acc, builder.and_(w, m32)), builder.lshr(w, sh32))
    builder.branch(done)

    builder.position_at_end(done)
    fin = builder.phi(_V8I64)
    fin.add_incoming(acc, after)
    fin.add_incoming(tacc, tail)
    if not with_sum:
        return ir.Constant(_I64, 0)
    red = _masked(builder, "llvm.vector.reduce.add.v8i64", ir.FunctionType(_I64, [_V8I64]))
    return builder.call(red, [fin])


def _mk(with_sum):
    @intrinsic
    def vcopy(typingctx, ps, s, pd, d, n):
        sig = _nb_types.uint64(_P8, _nb_types.int64, _P8, _nb_types.int64, _nb_types.int64)

        def codegen(context, builder, signature, args):
            return _emit(builder, args[0], args[1], args[2], args[3], args[4], with_sum)
        return sig, codegen
    return vcopy


_vcopy_sum = _mk(True)
_vcopy = _mk(False)

if VECTOR:
    @njit(cache=True, nogil=True, inline="always")
    def copy_at(ps, s, pd, d, n):
        """Copy ``n`` bytes from pointer ``ps`` at ``s`` to ``pd`` at ``d`` (``csum._ref`` of
        two uint8 arrays; spans inside them, not overlapping)."""
        _vcopy(ps, s, pd, d, n)

    @njit(cache=True, nogil=True, inline="always")
    def copy_sum_at(ps, s, pd, d, n):
        """:func:`copy_at` returning the folded sum of the span relative to its start (as
        ``csum.copy_sum_words``)."""
        return bswap16(fold16(_vcopy_sum(ps, s, pd, d, n)))
else:
    copy_at = _copy_words_at
    copy_sum_at = _copy_sum_words_at
