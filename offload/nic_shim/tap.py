"""tap port with IFF_VNET_HDR and TUNSETOFFLOAD: super-packets in both directions.

With ``TUNSETOFFLOAD(CSUM|TSO4|TSO6|TSO_ECN|USO4|USO6)`` the kernel believes the
tap device can segment and checksum, so its stack hands us TSO/USO
super-packets (up to 64 KiB) and CHECKSUM_PARTIAL frames, each behind a
virtio_net_hdr, and accepts the same from us -- the way QEMU, passt and
wireguard-go run. The header goes to/from ``meta`` (``vnet_flags``, ``gso_type``,
``hdr_len``, ``gso_size``, ``csum_start``, ``csum_offset``).

One ``read``/``writev`` system call per frame (the tap character device has no
batch interface), made from a Numba kernel (:mod:`._sysloop`): Python runs once
per burst. Frames are read straight into an arena of 64 KiB slots that
``rx_burst`` hands out as views and ``release`` takes back.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

import numpy as np

from .. import vnet
from ..batch import PacketBatch
from ..status import SHIM_DROPPED
from . import _linux as L
from ._sysloop import read_frames, write_frames
from .port import MetaPool, Port, empty_batch, fast_batch

_AGAIN = np.array([errno.EAGAIN, errno.EINTR], np.int64)
_FULL = np.array([errno.EAGAIN, errno.EINTR, errno.ENOBUFS], np.int64)

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

SLOT = 65536 + 512   # largest GSO frame the tap hands out (64 KiB) + virtio header, 64-aligned


class TapPort(Port):
    """A tap device ``name`` (created if missing; removed on close unless it was persistent).

    ``offload`` 1 (default) enables checksum + TSO + USO offloads so the kernel sends
    super-packets; ``"csum"`` only checksum offload (partial checksums, no super-packets);
    0 gives plain frames with complete checksums (virtio header still present, all
    zero). Frames *written* may be super-packets whatever ``offload`` says. ``slots`` is the number of receive slots (default 256).
    """

    kind = "tap"
    accepts_gso = True
    delivers_gso = True

    def __init__(self, name: str, netns: str | None = None, offload: bool = True, slots: int = 256,
                 vnet_hdr_len: int = vnet.HDR_LEN):
        super().__init__(name)
        self.fd = -1
        self.hlen = int(vnet_hdr_len)
        if self.hlen not in (vnet.HDR_LEN, vnet.HDR_LEN_MRG):
            raise ValueError("vnet_hdr_len must be 10 or 12")
        with L.in_netns(netns):
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
                fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", self.hlen))
                self.offloads = 0
                if offload == "csum":
                    fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM)
                    self.offloads = TUN_F_CSUM
                elif offload:
                    base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN
                    for flags in (base | TUN_F_USO4 | TUN_F_USO6, base):   # USO needs Linux 6.2
                        try:
                            fcntl.ioctl(fd, TUNSETOFFLOAD, flags)
                            self.offloads = flags
                            break
                        except OSError:
                            continue
                else:
                    fcntl.ioctl(fd, TUNSETOFFLOAD, 0)
            except BaseException:
                os.close(fd)
                raise
        self.fd = fd
        self.uso = bool(self.offloads & TUN_F_USO4)
        self.nslots = int(slots)
        self.buf = np.zeros(self.nslots * SLOT, np.uint8)
        self._free = list(range(self.nslots - 1, -1, -1))
        self._iov = np.zeros(4, np.int64)      # two struct iovec for write_frames
        self._outstanding: dict[int, list[int]] = {}
        self._hdr_idx = np.arange(self.hlen)
        self._stats.update(rx_bad_vnet=0, tx_errors=0)
        self._meta = MetaPool(self.nslots)

    def fileno(self) -> int:
        return self.fd

    def rx_burst(self, max_frames: int = 64) -> PacketBatch:
        """Read up to ``max_frames`` frames (until the device has none). Frame ``i`` is a
        view into the slot arena; its virtio header is in ``meta[i]``."""
        free = self._free
        m = min(int(max_frames), len(free))
        if m <= 0:
            return empty_batch()
        slots = np.array(free[-m:][::-1], np.int64)     # the order list.pop() would take them
        lens = np.empty(m, np.int64)
        k, err, short = read_frames(self.fd, self.buf.ctypes.data, SLOT, slots, lens, self.hlen, _AGAIN)
        self._stats["rx_bad_vnet"] += short
        if err and k == 0:
            raise OSError(err, f"read from tap {self.name}: {os.strerror(err)}")
        # (an error after some frames: those are returned, the next call meets it again)
        if k == 0:
            return empty_batch()
        del free[len(free) - k:]
        slots = slots[:k].tolist()
        base = np.array(slots, np.int64) * SLOT
        b = fast_batch(self.buf, base + self.hlen, lens[:k], self._meta.take(k))
        hdrs = self.buf[base[:, None] + self._hdr_idx].reshape(-1).view(
            vnet.VNET_DTYPE if self.hlen == vnet.HDR_LEN else vnet.VNET_DTYPE_MRG)
        vnet.load_into_meta(b.meta, hdrs)
        return self._hand_out(b, slots)

    def release(self, batch: PacketBatch) -> None:
        if len(batch) == 0:
            return
        self._free.extend(self._take_back(batch)[1])

    def release_all(self) -> None:
        for k in list(self._outstanding):
            self._free.extend(self._outstanding.pop(k)[1])

    def tx_burst(self, batch: PacketBatch) -> int:
        """Write each frame behind its virtio header from ``meta``, one ``writev`` per frame
        in one kernel call per burst. A frame the kernel refuses (EINVAL: a header it does
        not accept) is taken, marked SHIM_DROPPED and counted as dropped; a full queue
        (EAGAIN/ENOBUFS) ends the burst early (``tx_full``: the caller retries the rest)."""
        n = batch.off.shape[0]
        if n == 0:
            return 0
        buf, off, ln, bad, hdrs = self._tx_frames(batch, self.hlen)
        status = batch.meta["status"]
        sent = dropped = nbytes = i = 0
        while i < n:
            j = n if not bad[i:].any() else i + int(np.argmax(bad[i:]))
            if j > i:
                st_i = np.zeros(j - i, np.uint16)
                k, d, nb, full = write_frames(self.fd, buf.ctypes.data, off[i:j], ln[i:j], hdrs.ctypes.data
                                              + i * self.hlen, self.hlen, self._iov, st_i, SHIM_DROPPED, _FULL)
                status[i:i + k][st_i[:k] == SHIM_DROPPED] = SHIM_DROPPED
                sent += k - d
                dropped += d
                nbytes += nb
                i += k
                if full:
                    self._stats["tx_full"] += 1
                    break
            if i < n and bad[i]:
                status[i] = SHIM_DROPPED
                dropped += 1
                i += 1
        return self._tx_count(sent, dropped, nbytes)

    def check_frames(self, quiet: bool = False) -> dict:
        held = sum(len(v[1]) for v in self._outstanding.values())
        assert len(set(self._free)) == len(self._free), "a slot is free twice"
        assert held + len(self._free) == self.nslots, f"{self.nslots - held - len(self._free)} slots leaked"
        return {"free": len(self._free), "in_use": held}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

