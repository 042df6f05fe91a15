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
