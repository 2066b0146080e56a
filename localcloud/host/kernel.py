"""Kernel limits the machines share with the host, raised while the local cloud runs.

Every machine is a container on the host's kernel, so what each VM on EC2 has to itself is shared
here. systemd in each machine takes about six inotify instances, and the kernel's default of 128 per
user stops the twenty-second machine's boot half-way ("Failed to create inotify object: Too many
open files"); a class of forty needs more. `up` raises these limits and records the old values;
`down` puts them back.
"""

from __future__ import annotations

import contextlib
import json
import resource
from pathlib import Path

# sysctl (as a /proc/sys path) -> the value the local cloud needs at least.
LIMITS = {
    "fs/inotify/max_user_instances": 8192,
    "fs/inotify/max_user_watches": 1048576,
}
PROC_SYS = Path("/proc/sys")


def raise_limits() -> dict[str, int]:
    """Raise each limit that is lower than needed; return the values that were changed, as they were."""
    previous = {}
    for name, wanted in LIMITS.items():
        path = PROC_SYS / name
        try:
            current = int(path.read_text().split()[0])
        except (OSError, ValueError):
            continue
        if current < wanted:
            path.write_text(f"{wanted}\n")
            previous[name] = current
    return previous


def restore_limits(previous: dict[str, int]) -> None:
    """Put the limits back to what raise_limits found."""
    for name, value in previous.items():
        with contextlib.suppress(OSError):
            (PROC_SYS / name).write_text(f"{value}\n")


def save(previous: dict[str, int], path: Path) -> None:
    path.write_text(json.dumps(previous))


def load(path: Path) -> dict[str, int]:
    try:
        return {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def raise_open_files() -> None:
    """Let this process hold as many files as the hard limit allows (sockets for every machine's services)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
