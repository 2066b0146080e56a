"""The machinery every API patch uses: swapping moto's methods, EC2-style errors, the controller.

A patch replaces a method of one of moto's classes and may call the original through
`original`. Patches reach the machines only through the controller set by `set_controller`
(localcloud.controller.LocalCloud), never through the host modules directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from localcloud.controller import LocalCloud

_ORIGINALS: dict[str, Callable] = {}
_CONTROLLER: list[LocalCloud] = []
# The block device mappings exactly as the current RunInstances request gave them (moto's parser
# fills absent fields with defaults, which would hide what the image should supply).
REQUEST = threading.local()


def set_controller(cloud: LocalCloud) -> None:
    """Route the physical side of requests to this controller."""
    _CONTROLLER[:] = [cloud]


def controller() -> LocalCloud:
    """The controller that requests act on."""
    return _CONTROLLER[0]


def installed() -> bool:
    """Whether the patches are in place (they are applied once per process)."""
    return bool(_ORIGINALS)


def replace(owner: type, name: str, function: Callable) -> None:
    """Swap a method, keeping the original for the patch to call."""
    _ORIGINALS[f"{owner.__name__}.{name}"] = getattr(owner, name)
    setattr(owner, name, function)


def replace_property(owner: type, name: str, getter: Callable) -> None:
    """Swap a read-only property, keeping the original getter."""
    _ORIGINALS[f"{owner.__name__}.{name}"] = getattr(owner, name).fget
    setattr(owner, name, property(getter))


def original(owner: str, name: str) -> Callable:
    """The method (or property getter) a patch replaced."""
    return _ORIGINALS[f"{owner}.{name}"]


def ec2_error(code: str, message: str) -> Exception:
    """An error that moto's server answers the way EC2 does (HTTP 400, Code and Message)."""
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def flag(value: Any) -> bool:
    """A boolean request parameter as EC2 reads it ("true" in any case)."""
    return str(value).lower() == "true"
