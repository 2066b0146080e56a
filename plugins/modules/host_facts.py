#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: host_facts
version_added: 0.1.0
short_description: Look at what the collection's roles need to know about a host, in one go
description:
  - Reads, in one process on the host, everything the roles of a play asked about in O(requests)
    (the operating system, users, paths, Debian packages, systemd units, device nodes) and keeps it as the fact
    C(labcloud_host). It changes nothing.
  - Each role asks for what it needs (its C(<role>_look) variable) and decides from the answer which
    of its tasks have something to do, so that a run with nothing to change starts few modules.
  - A role whose request an earlier look of the same play answered reuses that answer instead of
    looking again; a playbook that runs several roles (C(playbooks/configure.yml)) asks for all of
    their requests once, before the first role. Only paths and users that a request names in
    O(requests[].require) are looked at again when that answer lacks them (an earlier role of the
    play may have made them since).
  - This closes a gap. M(ansible.builtin.setup), M(ansible.builtin.stat),
    M(ansible.builtin.package_facts), M(ansible.builtin.getent) and M(ansible.builtin.service_facts)
    would be one module each (and a module per path), and would be run again by every role.
    C(bench/configure.py) measures the difference; for what C(playbooks/configure.yml)'s five roles
    ask of a Debian 12 machine, one look took 1.8 s and the kept modules asking the same 10.6 s
    (5.8 times as long), medians of five runs each in one run of the benchmark.
options:
  requests:
    description: What the roles want to know.
    type: list
    elements: dict
    required: true
    suboptions:
      user:
        description:
          - A user whose C(passwd) entry to read; an empty string means the user who ran C(sudo) (or
            the connecting user), the login user of a cloud VM.
          - A leading C(~/) in this request's O(requests[].paths) stands for this user's home.
        type: str
      packages:
        description: Debian packages to report as missing when they are not installed.
        type: list
        elements: str
        default: []
      paths:
        description:
          - Paths to describe, by a name of the requester's choice (role-prefixed, as the answer keeps
            all requests' paths together). A path may be a glob; the first match is described.
        type: dict
        default: {}
      services:
        description: systemd units to report as enabled and active or not.
        type: list
        elements: str
        default: []
      devices:
        description:
          - Character device nodes to list, by a name of the requester's choice (role-prefixed), each a glob or a
            list of globs, for example V(/dev/nvidia*). Every matching character device is listed (links and
            other files are not).
        type: dict
        default: {}
      require:
        description:
          - Names of O(requests[].paths), or V(user), that the requester needs to exist. An earlier
            answer of the play that lacks one is not reused; the host is looked at again.
        type: list
        elements: str
        default: []
extends_documentation_fragment:
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.info_module
attributes:
  action:
    description: An action plugin on the controller decides whether the answer of an earlier look can be reused.
    support: full
  platform:
    description: Reads a Linux host; packages through C(dpkg-query), units through C(systemctl).
    support: full
    platforms: posix
notes:
  - Run it as root (C(become)) to see files that only root may read.
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Look at the host
  labcloud.jupyter.host_facts:
    requests:
      - user: ""
        packages: [git, acl]
        paths:
          jupyterlab_env: /opt/jupyterlab/env/bin/python
          jupyterlab_notebooks: ~/notebooks
        services: [jupyterlab]
        require: [jupyterlab_env]

- name: Show the login user's home
  ansible.builtin.debug:
    msg: "{{ ansible_facts.labcloud_host.users[''].home }}"
"""

RETURN = r"""
ansible_facts:
  description: The answer, as the fact C(labcloud_host).
  returned: always
  type: dict
  contains:
    labcloud_host:
      description: What the host looked like.
      type: dict
      contains:
        os:
          description:
            - C(id), C(like) (a list) and C(name) from C(/etc/os-release); C(system) and
              C(architecture) as C(uname) gives them; C(systemd), whether systemd runs the host.
          type: dict
          sample: {"id": "debian", "like": [], "name": "Debian GNU/Linux 12 (bookworm)", "system": "Linux",
                   "architecture": "x86_64", "systemd": true}
        login:
          description: The user who ran C(sudo), or the connecting user.
          type: str
          sample: admin
        users:
          description:
            - For each user asked about, its C(uid), primary C(group) and C(home), or null when there is no
              such user. The login user is asked about as an empty string.
          type: dict
          sample: {"": {"uid": 1000, "group": "admin", "home": "/home/admin"}}
        paths:
          description:
            - For each named path, null when nothing matches; otherwise the C(path) found, whether it is
              a C(directory), its C(owner), C(group) and C(mode) (as C("0755")), and for a regular file
              of at most 1 MiB the C(sha1) of its content.
            - The path itself is described, not what it points to (C(lstat)). A symbolic link has C(link),
              the target it names, and is never a C(directory) and has no C(sha1); so a link planted where
              a role expects a directory or a file never looks like one, and a root task does not follow it.
          type: dict
          sample: {"jupyterlab_notebooks": {"path": "/home/admin/notebooks", "directory": true, "owner": "admin",
                                            "group": "admin", "mode": "0750"}}
        exists:
          description: For each named path, whether anything matches it.
          type: dict
          sample: {"jupyterlab_notebooks": true}
        missing_packages:
          description: The asked-for Debian packages that are not installed.
          type: list
          elements: str
          sample: [ffmpeg]
        apt_lists:
          description: Whether apt's package lists have been downloaded.
          type: bool
        services:
          description: For each unit asked about, whether it is C(enabled) and C(active).
          type: dict
          sample: {"jupyterlab": {"enabled": true, "active": true}}
        devices:
          description: For each named device request, the character device nodes that match it, sorted.
          type: dict
          sample: {"jupyter_service_gpus": ["/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidiactl"]}
        requests:
          description: The requests this answer covers (the action plugin adds them).
          type: list
          elements: dict
        play:
          description: The play the answer was made in (the action plugin adds it); it is reused in that play only.
          type: str
"""

import glob
import grp
import hashlib
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labcloud.jupyter.plugins.module_utils.host_facts import ARGUMENT_SPEC

# The largest file whose content is hashed: the roles compare configuration files, not data.
HASH_LIMIT = 1 << 20


def os_release():
    """The fields of /etc/os-release."""
    fields = {}
    try:
        with open("/etc/os-release") as stream:
            for line in stream:
                key, equals, value = line.strip().partition("=")
                if key and equals:
                    fields[key] = value.strip('"')
    except (IOError, OSError):
        pass
    return fields


def name_of(lookup, number, field):
    """The name of a user or group ID (lookup: pwd.getpwuid or grp.getgrgid), or the ID itself."""
    try:
        return getattr(lookup(number), field)
    except KeyError:
        return str(number)


def user_entry(name):
    """The user's uid, primary group and home, or None when there is no such user."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return {"uid": entry.pw_uid, "group": name_of(grp.getgrgid, entry.pw_gid, "gr_name"), "home": entry.pw_dir}


def describe(path):
    """The first match of a path (or glob), a link not followed: type, owner, group, mode, small-file SHA-1; or None."""
    matches = sorted(glob.glob(path))
    if not matches:
        return None
    try:
        status = os.lstat(matches[0])
    except OSError:
        return None
    found = {
        "path": matches[0],
        "directory": stat.S_ISDIR(status.st_mode),
        "owner": name_of(pwd.getpwuid, status.st_uid, "pw_name"),
        "group": name_of(grp.getgrgid, status.st_gid, "gr_name"),
        "mode": "%04o" % stat.S_IMODE(status.st_mode),
    }
    if stat.S_ISLNK(status.st_mode):
        found["link"] = os.readlink(matches[0])
    if stat.S_ISREG(status.st_mode) and status.st_size <= HASH_LIMIT:
        try:
            with open(matches[0], "rb") as stream:
                found["sha1"] = hashlib.sha1(stream.read()).hexdigest()
        except (IOError, OSError):
            pass
    return found


def character_devices(patterns):
    """The character device nodes (not followed through links) that match a glob or a list of globs, sorted."""
    found = set()
    for pattern in [patterns] if isinstance(patterns, str) else patterns or []:
        for path in glob.glob(str(pattern)):
            try:
                if stat.S_ISCHR(os.lstat(path).st_mode):
                    found.add(path)
            except OSError:
                pass
    return sorted(found)


def expand(path, entry):
    """The path with a leading ~/ replaced by the home of the request's user."""
    if path.startswith("~/") and entry:
        return entry["home"].rstrip("/") + path[1:]
    return path


def missing_packages(module, names):
    """The packages of names that dpkg does not have installed."""
    if not names:
        return []
    dpkg_query = module.get_bin_path("dpkg-query")
    if not dpkg_query:
        return list(names)
    out = module.run_command([dpkg_query, "-W", "-f", "${Package} ${db:Status-Status}\n", *names])[1]
    installed = set(line.split()[0] for line in out.splitlines() if line.endswith(" installed"))
    return [name for name in names if name not in installed]


def unit_state(module, systemctl, unit):
    """Whether a systemd unit is enabled and active."""
    if not systemctl:
        return {"enabled": False, "active": False}
    enabled = module.run_command([systemctl, "is-enabled", unit])[1]
    active = module.run_command([systemctl, "is-active", unit])[1]
    return {"enabled": enabled.strip() == "enabled", "active": active.strip() == "active"}


def look(module, requests):
    """The answer to every request."""
    login = os.environ.get("SUDO_USER") or name_of(pwd.getpwuid, os.getuid(), "pw_name")
    release = os_release()
    system = os.uname()
    users, paths, packages, units, devices = {}, {}, [], [], {}
    for request in requests:
        name = request.get("user")
        entry = None
        if name is not None:
            users[name] = entry = user_entry(name or login)
        for key, path in (request.get("paths") or {}).items():
            paths[key] = describe(expand(str(path), entry))
        packages.extend(package for package in request.get("packages") or [] if package not in packages)
        units.extend(unit for unit in request.get("services") or [] if unit not in units)
        for key, patterns in (request.get("devices") or {}).items():
            devices[key] = character_devices(patterns)
    systemctl = module.get_bin_path("systemctl")
    return {
        "os": {
            "id": release.get("ID", ""),
            "like": release.get("ID_LIKE", "").split(),
            "name": release.get("PRETTY_NAME", system[0]),
            "system": system[0],
            "architecture": system[4],
            "systemd": os.path.isdir("/run/systemd/system"),
        },
        "login": login,
        "users": users,
        "paths": paths,
        "exists": dict((key, found is not None) for key, found in paths.items()),
        "missing_packages": missing_packages(module, packages),
        "apt_lists": bool(glob.glob("/var/lib/apt/lists/*_Packages*")),
        "services": dict((unit, unit_state(module, systemctl, unit)) for unit in units),
        "devices": devices,
    }


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={"labcloud_host": look(module, module.params["requests"])})


if __name__ == "__main__":
    main()
