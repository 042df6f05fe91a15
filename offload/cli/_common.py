"""What the file-processing subcommands (stats, segment, coalesce, checksum) share:
opening a capture, and walking its batches with a progress bar up to any damage."""

from __future__ import annotations

from typing import Callable, Iterator

from ._progress import Progress


def open_capture(path: str, max_frame: int | None = None):
    """A :class:`offload.pcap.PcapReader` for ``path`` (pcap or pcapng); ``max_frame``
    (bytes) overrides the reader's largest accepted frame."""
    from .. import pcap
    kw = {} if max_frame is None else {"max_frame": max_frame}
    return pcap.PcapReader(path, **kw)


class Batches:
    """The batches of ``reader`` in file order, with a progress bar on a terminal.

    Damage in the file ends the iteration instead of raising: every frame before
    it has been yielded, and ``error`` then holds ``{"offset": byte offset,
    "reason": text}`` (``None`` for an intact file). ``note()`` may return the
    text shown after the bar (e.g. a running count)."""

    def __init__(self, reader, label: str, batch_frames: int = 4096, parse: bool = False,
                 progress: bool = True, note: Callable[[], str] | None = None):
        self.reader = reader
        self.label = label
        self.batch_frames = batch_frames
        self.parse = parse
        self.progress = progress
        self.note = note
        self.error: dict | None = None

    def __iter__(self) -> Iterator:
        from ..pcap import PcapError
        prog = Progress(self.reader.size, self.label) if self.progress else None
        try:
            for b in self.reader.iter_batches(self.batch_frames, parse=self.parse):
                yield b
                if prog:
                    prog.update(self.reader.pos, self.note() if self.note else "")
        except PcapError as e:
            self.error = {"offset": e.offset, "reason": e.reason}
        finally:
            if prog:
                prog.close()


def damage_line(error: dict, done: str) -> str:
    """``damaged at byte offset N: reason (done)`` for a summary."""
    return f"damaged at byte offset {error['offset']}: {error['reason']} ({done})"
