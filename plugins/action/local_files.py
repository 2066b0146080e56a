# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action labcloud.jupyter.local_files: render templates and write them on the controller, in one step.

The documentation is in plugins/modules/local_files.py.
"""

import os
import stat
import tempfile
from typing import Any, Dict, List, Optional

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    "files": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "src": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "mode": {"type": "str", "default": "0600"},
            "template": {"type": "bool", "default": True},
        },
    },
    "directories": {"type": "list", "elements": "path", "default": []},
    "directory_mode": {"type": "str", "default": "0700"},
}


def octal(value: str, what: str) -> int:
    """Return a mode given as an octal string."""
    try:
        return int(str(value), 8)
    except ValueError as e:
        raise AnsibleActionFail(f"{what} {value!r} is not an octal mode such as 0600") from e


def current(dest: str) -> Optional[Dict[str, Any]]:
    """Return a file's content and mode, or None when it does not exist."""
    try:
        with open(dest, "rb") as stream:
            content = stream.read()
        return {"content": content, "mode": stat.S_IMODE(os.stat(dest).st_mode)}
    except FileNotFoundError:
        return None


def copied(src: str, dest: str, check_mode: bool) -> Optional[bytes]:
    """Return the content of a file to copy as it is; None when, in check mode, it is not there yet."""
    try:
        with open(os.path.expanduser(src), "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        if check_mode:
            return None
        raise AnsibleActionFail(f"Could not copy {src} to {dest}: there is no such file") from None
    except OSError as e:
        raise AnsibleActionFail(f"Could not copy {src} to {dest}: {e.strerror}") from e


def make_directory(path: str, mode: int, check_mode: bool) -> bool:
    """Make a directory with this mode, or give an existing one this mode; return whether it changed."""
    if os.path.isdir(path) and stat.S_IMODE(os.stat(path).st_mode) == mode:
        return False
    if not check_mode:
        if os.path.isdir(path):
            os.chmod(path, mode)
        else:
            os.makedirs(path, mode=mode)
            os.chmod(path, mode)
    return True


def write(dest: str, content: bytes, mode: int, directory_mode: int) -> None:
    """Write a file through a temporary file in its directory, then rename it into place."""
    directory = os.path.dirname(dest) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=directory_mode)
    descriptor, staged = tempfile.mkstemp(prefix=".labcloud-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
        os.chmod(staged, mode)
        os.rename(staged, dest)
    except BaseException:
        if os.path.exists(staged):
            os.unlink(staged)
        raise


class ActionModule(ActionBase):
    """Render and write the files; only those whose content or mode differs are written."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def render(self, src: str, task_vars: Dict[str, Any]) -> bytes:
        """Return a template rendered with the task's variables (and ansible_managed, as the template module)."""
        path = self._find_needle("templates", src)
        source = self._loader.get_text_file_contents(path)
        try:
            from ansible.template import trust_as_template  # ansible-core 2.19 and later

            source = trust_as_template(source)
        except ImportError:
            pass
        variables = dict(task_vars)
        variables.setdefault("ansible_managed", C.config.get_config_value("DEFAULT_MANAGED_STR"))
        templar = self._templar.copy_with_new_env(searchpath=[os.path.dirname(path)], available_variables=variables)
        return to_bytes(templar.template(source, escape_backslashes=False))

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        directory_mode = octal(args["directory_mode"], "directory_mode")
        check_mode = bool(self._task.check_mode)
        # Every file is rendered or read first, so that a bad argument changes nothing.
        planned = []
        for item in args["files"]:
            dest = os.path.expanduser(item["dest"])
            mode = octal(item["mode"], f"mode of {dest}")
            if item["template"]:
                content: Optional[bytes] = self.render(item["src"], task_vars or {})
            else:
                content = copied(item["src"], dest, check_mode)
            planned.append((dest, mode, content, item))
        directories = [
            os.path.expanduser(path)
            for path in args["directories"]
            if make_directory(os.path.expanduser(path), directory_mode, check_mode)
        ]
        written: List[str] = []
        before: Dict[str, str] = {}
        after: Dict[str, str] = {}
        for dest, mode, content, item in planned:
            found = current(dest)
            if found is not None and found["content"] == content and found["mode"] == mode:
                continue
            written.append(dest)
            # The content of a copied file (a private key) is never shown.
            before[dest] = to_text(found["content"]) if found and item["template"] else ""
            after[dest] = to_text(content) if item["template"] else f"(a copy of {item['src']})\n"
            if not check_mode and content is not None:
                write(dest, content, mode, directory_mode)
        result.update(changed=bool(written or directories), written=written, directories=directories)
        if self._task.diff and written:
            result["diff"] = [
                {"before_header": d, "after_header": d, "before": before[d], "after": after[d]} for d in written
            ]
        return result
