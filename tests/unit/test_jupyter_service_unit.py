"""roles/jupyter_service's unit follows the VM: with NVIDIA device nodes found by the role's look at the
host, the private /dev gets them (bound and allowed); without them the sandbox is unchanged.

The unit and the role's derived variables are rendered with Ansible's own filters, as the role renders them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml
from ansible.plugins.filter.core import FilterModule as CoreFilters
from ansible.plugins.filter.mathstuff import FilterModule as MathFilters

ROLE = Path(__file__).resolve().parents[2] / "roles/jupyter_service"
UNIT = ROLE / "templates/etc/systemd/system/jupyterlab.service.j2"
GPU_NODES = ["/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl"]


def environment() -> jinja2.Environment:
    """Jinja as the template module sets it up (trim_blocks), with Ansible's filters."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True)
    env.filters.update(CoreFilters().filters())
    env.filters.update(MathFilters().filters())
    return env


def settings(**found: Any) -> dict[str, Any]:
    """The role's defaults and what it found on a host, with the variables the unit derives from them."""
    values: dict[str, Any] = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    derived = yaml.safe_load((ROLE / "vars/main.yml").read_text())
    values.update(
        ansible_managed="Ansible managed",
        jupyter_service_host={"devices": {"jupyter_service_gpus": found.pop("devices", [])}},
        jupyter_service_user_name="jupyter",
        jupyter_service_user_group="jupyter",
        jupyter_service_user_home="/home/jupyter",
        jupyter_service_notebook_path="/home/jupyter/notebooks",
        jupyter_service_env_path="/opt/jupyterlab/env",
        jupyter_service_jupyter_path="/opt/jupyterlab/env/bin/jupyter",
        jupyter_service_config_file=derived["jupyter_service_config_file"],
        jupyter_service_name=derived["jupyter_service_name"],
        jupyter_service_state_dir=derived["jupyter_service_state_dir"],
        **found,
    )
    env = environment()
    for name in ("jupyter_service_gpu_found", "jupyter_service_gpu_nodes"):
        values[name] = yaml.safe_load(env.from_string(derived[name]).render(values))
    return values


def unit(**found: Any) -> list[str]:
    """The lines of the unit the role writes."""
    return environment().from_string(UNIT.read_text()).render(settings(**found)).splitlines()


def test_without_a_gpu_the_private_dev_has_no_device_added() -> None:
    lines = unit()
    assert "PrivateDevices=yes" in lines
    assert not [line for line in lines if line.startswith(("BindPaths=", "DeviceAllow=", "DevicePolicy="))]
    assert "After=nvidia-persistenced.service" not in lines


def test_the_gpus_found_are_bound_into_the_private_dev_and_allowed() -> None:
    lines = unit(devices=GPU_NODES)
    assert "PrivateDevices=yes" in lines, "the rest of /dev stays hidden"
    wanted = sorted({*GPU_NODES, "/dev/nvidiactl", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"})
    (bind,) = [line for line in lines if line.startswith("BindPaths=")]
    assert bind == "BindPaths=" + " ".join(f"-{node}" for node in wanted)
    assert [line for line in lines if line.startswith("DeviceAllow=")] == [f"DeviceAllow={node} rw" for node in wanted]
    assert "After=nvidia-persistenced.service" in lines
    assert not [line for line in lines if line.startswith("DevicePolicy=")], "PrivateDevices closes it already"


def test_gpus_can_be_kept_out_and_a_shared_dev_needs_nothing_added() -> None:
    for found in ({"jupyter_service_gpus": False}, {"jupyter_service_private_devices": False}):
        lines = unit(devices=GPU_NODES, **found)
        assert not [line for line in lines if line.startswith(("BindPaths=", "DeviceAllow="))], found
    assert "PrivateDevices=no" in unit(devices=GPU_NODES, jupyter_service_private_devices=False)
