"""netmap port: not implemented, on purpose.

netmap needs the ``netmap`` kernel module (``/dev/netmap``). The kernel this
project is developed and tested on is built without module support
(``CONFIG_MODULES`` unset), so a netmap backend could not be tested here, and
an untested backend is not shipped as if it worked. Opening a ``netmap:`` port
fails with a message saying why and what to use instead; on a host that does
have ``/dev/netmap`` the message says that support is missing from this build.
"""

from __future__ import annotations

import os

from .port import Port


class NetmapPort(Port):
    kind = "netmap"

    def __init__(self, name: str, netns: str | None = None, **_):
        if not os.path.exists("/dev/netmap"):
            raise OSError(2, f"netmap:{name}: /dev/netmap does not exist (the netmap kernel module is not "
                             f"loaded; this kernel may lack module support). Use afxdp:{name} or packet:{name}.")
        raise NotImplementedError(f"netmap:{name}: /dev/netmap exists, but this build has no netmap backend "
                                  f"(it could not be tested where it was written). Use afxdp:{name} or packet:{name}.")
