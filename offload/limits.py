"""Limits that have no other home (the rest live next to the code that enforces them);
the full table, with what happens past each one, is docs/limits.md."""

MAX_FRAME_BYTES = 2**31 - 1   # offsets in PacketBatch.meta are int32
PCAPNG_MIN_BLOCK = 12         # block type + two lengths: anything shorter would loop
