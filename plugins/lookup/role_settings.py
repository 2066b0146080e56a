# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Lookup role_settings: the settings of the collection's roles, as their argument specs document them."""

DOCUMENTATION = r"""
name: role_settings
version_added: 0.1.0
short_description: The settings of the collection's roles, read from their argument specs
description:
  - With O(want=names), the names of the options of the C(main) entry point of each role named in the
    terms, as the role's C(meta/argument_specs.yml) documents them (its one list of settings), in the
    order of the terms; with O(want=secret), only those marked C(no_log); with O(want=digest), one SHA-256
    of the roles' own files (defaults, vars, tasks, handlers, templates, files, meta), which changes with
    what the roles do.
  - C(playbooks/configure.yml) records both on each VM it configures, so that a VM launched from an image
    configured with the same settings by the same roles is recognised and not configured again.
options:
  _terms:
    description: Names of the collection's roles (C(jupyterlab), not C(labcloud.jupyter.jupyterlab)).
    type: list
    elements: str
    required: true
  want:
    description: What to return (above).
    type: str
    choices: [names, secret, digest]
    default: names
  exclude:
    description: With O(want=names), a regular expression; the names it finds (C(re.search)) are left out.
    type: str
    default: ""
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Show the settings of the jupyter_service role
  ansible.builtin.debug:
    msg: "{{ query('labcloud.jupyter.role_settings', 'jupyter_service') }}"

- name: Show their values, less the switches that only say how a run works
  ansible.builtin.debug:
    msg: "{{ dict(names | zip(query('ansible.builtin.vars', *names, default=''))) }}"
  vars:
    names: "{{ query('labcloud.jupyter.role_settings', 'sshd', exclude='_check_settings$') }}"
"""

RETURN = r"""
_raw:
  description: The option names (O(want=names) or O(want=secret)), or one hexadecimal digest (O(want=digest)).
  type: list
  elements: str
"""

import hashlib
import os
import re

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.lookup import LookupBase

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    yaml = None

ROLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# What a role is made of; tests, molecule scenarios and docs are not.
WANTS = ("names", "secret", "digest")
ROLE_PARTS = ("defaults", "files", "handlers", "meta", "tasks", "templates", "vars")


def role_dir(role):
    if not isinstance(role, str) or not ROLE_NAME.match(role):
        raise AnsibleLookupError("role_settings: %r is not a role name" % (role,))
    path = os.path.join(ROLES, role)
    if not os.path.isdir(path):
        raise AnsibleLookupError("role_settings: the collection has no role %r (looked in %s)" % (role, ROLES))
    return path


def options_of(role):
    """The options of the role's main entry point, in the order its argument specs give them."""
    spec_file = os.path.join(role_dir(role), "meta", "argument_specs.yml")
    try:
        with open(spec_file, "rb") as stream:
            specs = yaml.safe_load(stream) or {}
    except (IOError, OSError, yaml.YAMLError) as exc:
        raise AnsibleLookupError("role_settings: cannot read %s: %s" % (spec_file, exc)) from exc
    main = (specs.get("argument_specs") or {}).get("main") or {}
    return main.get("options") or {}


def digest_of(roles):
    """One SHA-256 over the files of the roles, by their paths within the roles directory."""
    digest = hashlib.sha256()
    for role in roles:
        base = role_dir(role)
        for part in ROLE_PARTS:
            for root, dirs, files in os.walk(os.path.join(base, part)):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(root, name)
                    with open(path, "rb") as stream:
                        content = stream.read()
                    digest.update(to_bytes(os.path.relpath(path, ROLES)) + b"\0")
                    digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        unknown = sorted(set(kwargs) - {"want", "exclude"})
        if unknown:
            raise AnsibleLookupError(
                "role_settings: unknown option(s) %s; it takes want and exclude" % ", ".join(unknown)
            )
        want = kwargs.get("want", "names")
        if want not in WANTS:
            raise AnsibleLookupError("role_settings: want=%r is not one of %s" % (want, ", ".join(WANTS)))
        if want == "digest":
            return [digest_of(terms)]
        pattern = kwargs.get("exclude") or ""
        try:
            exclude = re.compile(pattern) if pattern else None
        except re.error as exc:
            message = "role_settings: exclude=%r is not a regular expression: %s" % (pattern, exc)
            raise AnsibleLookupError(message) from exc
        names = []
        for role in terms:
            for name, option in options_of(role).items():
                if want == "secret" and not (option or {}).get("no_log"):
                    continue
                if exclude and exclude.search(name):
                    continue
                names.append(name)
        return names
