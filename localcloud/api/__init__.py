"""The local cloud's API side: moto's EC2, patched where it falls short of what EC2 does.

One module per resource family says what moto does and what EC2 does instead (instances,
images, volumes, KMS keys, addresses). Every patch that has a physical side (a machine boots, a
disk is copied) hands it to the controller (localcloud.controller), which drives the host;
nothing here touches the host itself.
"""

from __future__ import annotations

from localcloud.api import accounts, addresses, images, instances, kms, patching, quotas, volumes
from localcloud.controller import LocalCloud

FAMILIES = (accounts, addresses, quotas, kms, instances, images, volumes)


def install(cloud: LocalCloud) -> None:
    """Apply every patch (once per process), routing the physical side of requests to cloud."""
    patching.set_controller(cloud)
    if patching.installed():
        return
    for family in FAMILIES:
        family.install()
