#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: jupyter_kernel
version_added: 0.1.0
short_description: Run a cell in a new kernel of a JupyterLab server, through its SSH tunnel
description:
  - Starts a kernel on the JupyterLab server at O(url), runs O(code) in it, shuts the kernel down,
    and returns what the cell printed and returned, as a notebook would show them. It is how the
    collection proves that a server works end to end (the token, the server, a kernel, the research
    environment), for example when it verifies a freshly baked image.
  - Run it on the machine that opened the tunnel (a play on localhost, or a task delegated to
    localhost). It talks to the server only on this machine's loopback (127.0.0.1), where the
    collection's SSH tunnel ends; other addresses are refused, and proxies are never used.
  - Fails when the server refuses the token, when no kernel answers within O(timeout) seconds, when
    the cell raises an error (its name and message are given), or when O(expect) is not in its output.
  - This closes a gap. No module of ansible.builtin or amazon.aws runs code in a Jupyter kernel.
    M(ansible.builtin.uri) can start and stop kernels through the REST API, but running a cell needs
    the kernel's WebSocket channel, which this module speaks with Python's standard library only.
options:
  url:
    description:
      - The server's URL on this machine, as the tunnel prints it, for example
        V(http://localhost:7005/lab?token=...). Its C(token) query parameter is used unless O(token) is given.
    type: str
    required: true
  token:
    description: The server's token, when O(url) has none.
    type: str
  code:
    description: The Python code of the cell.
    type: str
    default: "import sys; print(sys.version_info[:2])"
  expect:
    description: Text that the cell's output (printed or returned) must contain.
    type: str
  kernel_name:
    description: The kernel to start.
    type: str
    default: python3
  timeout:
    description: Seconds for the whole exchange (starting the kernel included).
    type: int
    default: 120
extends_documentation_fragment:
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.info_module
attributes:
  platform:
    description: Runs on the machine at the local end of the tunnel.
    support: full
    platforms: posix
notes:
  - The kernel it starts is shut down before it returns, whatever happened.
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Check that the owner's JupyterLab runs a cell with the research packages
  labcloud.jupyter.jupyter_kernel:
    url: "{{ tunnel_results[owner].url }}"
    code: "import xarray, netCDF4; print('ok', xarray.__version__)"
    expect: ok
  delegate_to: localhost
"""

RETURN = r"""
stdout:
  description: What the cell printed.
  returned: success
  type: str
  sample: "(3, 11)\n"
result:
  description: The text form of the cell's value, when it has one.
  returned: success
  type: str
  sample: "2"
kernel_name:
  description: The kernel that ran the cell.
  returned: success
  type: str
  sample: python3
seconds:
  description: How long the exchange took, from the first request to the kernel's answer.
  returned: success
  type: float
  sample: 1.84
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labcloud.jupyter.plugins.module_utils.jupyter_client import JupyterError
from ansible_collections.labcloud.jupyter.plugins.module_utils.jupyter_client import run_code


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True, no_log=True),
            token=dict(type="str", no_log=True),
            code=dict(type="str", default="import sys; print(sys.version_info[:2])"),
            expect=dict(type="str"),
            kernel_name=dict(type="str", default="python3"),
            timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        outcome = run_code(params["url"], params["code"], params["token"], params["kernel_name"], params["timeout"])
    except JupyterError as e:
        module.fail_json(msg=f"JupyterLab did not run the cell: {e}")
    except (OSError, ValueError, KeyError) as e:
        module.fail_json(msg=f"JupyterLab did not run the cell: unexpected answer or connection error: {e}")
    shown = (outcome["stdout"] or "") + (outcome["result"] or "")
    if params["expect"] is not None and params["expect"] not in shown:
        module.fail_json(
            msg=f"The cell ran, but its output does not contain {params['expect']!r}: {shown[:500]!r}",
            **{key: outcome[key] for key in ("stdout", "result", "kernel_name", "seconds")},
        )
    module.exit_json(changed=False, **{key: outcome[key] for key in ("stdout", "result", "kernel_name", "seconds")})


if __name__ == "__main__":
    main()
