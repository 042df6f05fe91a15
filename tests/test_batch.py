import numpy as np
import pytest

from offload import PacketBatch, OutputArena, META_DTYPE


def test_from_frames_roundtrip_and_views():
    frames = [b"a" * 60, b"", b"xyz", bytes(range(256)) * 10]
    b = PacketBatch.from_frames(frames)
    assert len(b) == 4
    assert b.to_frames() == frames
    assert b[3].tobytes() == frames[3]
    assert b[-1].tobytes() == frames[3]
    assert b[1:3].to_frames() == frames[1:3]
    assert b[np.array([3, 0])].to_frames() == [frames[3], frames[0]]
    assert (b + b).to_frames() == frames + frames
    assert b.meta.dtype == META_DTYPE
    # frames are views, not copies
    b[0][0] = ord("b")
    assert b.to_frames()[0][0] == ord("b")
    with pytest.raises(IndexError):
        b[4]


def test_zero_copy_over_user_buffer():
    buf = np.arange(100, dtype=np.uint8)
    b = PacketBatch(buf, [0, 10], [10, 5])
    assert b[1].base is not None
    buf[10] = 99
    assert b[1][0] == 99
    with pytest.raises(ValueError):
        PacketBatch(buf, [95], [10])


def test_vnet_into_meta():
    from offload import vnet
    b = PacketBatch.from_frames([b"x" * 100], vnet=[vnet.pack(1, 1, 54, 1448, 34, 16)])
    m = b.meta[0]
    assert (m["vnet_flags"], m["gso_type"], m["hdr_len"], m["gso_size"], m["csum_start"], m["csum_offset"]) == (1, 1, 54, 1448, 34, 16)
    assert vnet.header_bytes(m) == vnet.pack(1, 1, 54, 1448, 34, 16)


def test_output_arena():
    a = OutputArena(1000, 8)
    a.off[:2] = [0, 64]
    a.len[:2] = [10, 20]
    a.commit(2, 84)
    assert len(a.batch()) == 2
    a.reset()
    assert len(a.batch()) == 0


def test_a_length_that_wraps_past_2_63_is_outside_the_buffer():
    import pytest
    buf = np.zeros(100, np.uint8)
    with pytest.raises(ValueError, match="outside"):
        PacketBatch(buf, np.array([8], np.int64), np.array([(1 << 63) - 1], np.int64))


def test_meta_of_an_equal_dtype_object_is_viewed_as_META_DTYPE():
    import pickle
    from offload.batch import META_DTYPE, new_meta
    meta = pickle.loads(pickle.dumps(new_meta(2)))
    assert meta.dtype == META_DTYPE and meta.dtype is not META_DTYPE
    b = PacketBatch(np.zeros(64, np.uint8), [0, 10], [10, 10], meta=meta)
    assert b.meta.dtype is META_DTYPE
    b.meta["status"][1] = 7
    assert meta["status"][1] == 7          # a view: the caller's array is the batch's
