"""Acquire/release loads and stores of ring indices, usable inside ``@njit`` code.

The AF_XDP rings are shared with the kernel. On x86-64 the hardware keeps
store->store and load->load order, so the danger is the *compiler*: LLVM may
reorder plain accesses or hoist a load out of a polling loop. These intrinsics
emit ``load atomic ... acquire`` / ``store atomic ... release`` (plain ``mov``
on x86-64, the right barriers elsewhere), which is exactly libxdp's
``__atomic_load_n(.., __ATOMIC_ACQUIRE)`` / ``__atomic_store_n(.., __ATOMIC_RELEASE)``.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _elem_ptr(context, builder, arrty, arr, idx):
    ary = context.make_array(arrty)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arrty, ary, [idx], wraparound=False)


@intrinsic
def load_acquire(typingctx, arr, idx):
    """``arr[idx]`` (a uint32 array element) loaded with acquire ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.uint32 and isinstance(idx, types.Integer)):
        return None
    sig = types.uint32(arr, idx)

    def codegen(context, builder, signature, args):
        ptr = _elem_ptr(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 4)

    return sig, codegen


@intrinsic
def store_release(typingctx, arr, idx, val):
    """``arr[idx] = val`` (uint32 element) stored with release ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.uint32 and isinstance(idx, types.Integer)
            and isinstance(val, types.Integer)):
        return None
    sig = types.void(arr, idx, val)

    def codegen(context, builder, signature, args):
        ptr = _elem_ptr(context, builder, signature.args[0], args[0], args[1])
        v = context.cast(builder, args[2], signature.args[2], types.uint32)
        builder.store_atomic(v, ptr, "release", 4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def fence_seq_cst(typingctx):
    """A full fence (needed only to read NEED_WAKEUP after publishing a producer)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen



def _mk_addr_ptr(elem):
    @intrinsic
    def at(typingctx, addr):
        if not isinstance(addr, types.Integer):
            return None
        sig = types.CPointer(elem)(addr)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return sig, codegen
    return at


# A raw address (int64) as a typed pointer, for ``numba.carray(ptr, n)``: a kernel then
# reaches a ring or a port array from one table of addresses instead of taking each as an
# argument (every array argument costs ~0.2-0.3 us of dispatch, more than a whole burst's work).
u8_at = _mk_addr_ptr(types.uint8)
u32_at = _mk_addr_ptr(types.uint32)
u64_at = _mk_addr_ptr(types.uint64)
i64_at = _mk_addr_ptr(types.int64)
