"""offload: software packet offloads (checksum, GSO, GRO) as Numba kernels over numpy buffers.

The public API, re-exported; see each module for details.
"""

from . import status
from .batch import META_DTYPE, OutputArena, PacketBatch
from .csum import checksum, raw_sum
from .parse import parse_batch
from .vnet import validate_batch

__all__ = [
    "META_DTYPE", "OutputArena", "PacketBatch", "checksum", "parse_batch", "raw_sum",
    "status", "validate_batch",
]
__version__ = "0.1.0"
