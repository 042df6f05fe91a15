"""NIC shim: ports that move raw frames between numpy buffers and the kernel.

``open_port("afxdp:eth0:0")``, ``open_port("tap:tap0")``, ``open_port("packet:eth0")``
return a :class:`Port` (burst RX/TX of :class:`~offload.batch.PacketBatch` views);
:class:`Forwarder` is the offloading datapath behind ``offload forward``.
"""

from .forward import Forwarder
from .port import Port, open_port

__all__ = ["Port", "open_port", "Forwarder"]
