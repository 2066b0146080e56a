#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: image_hygiene
version_added: 0.1.0
short_description: Keep secrets and the builder's identity out of a VM that becomes a machine image
description:
  - Runs on the VM as root, in one process, before the VM is baked into an image (AMI) that others launch.
  - B(Check) (O(state=checked), and check mode whatever the state). Looks for secrets that must never
    ship in an image and that the module does not remove by itself, and returns them as RV(findings),
    each with its path, its kind and what it is (never its content).
  - V(aws_credentials), AWS keys in C(~/.aws/credentials) or C(~/.aws/config) (and the AWS CLI's cached
    credentials) of every user with a home, root included, and C(AWS_ACCESS_KEY_ID),
    C(AWS_SECRET_ACCESS_KEY), C(AWS_SESSION_TOKEN) (or C(aws_secret_access_key)) set to a value in
    C(~/.bashrc), C(~/.profile), C(~/.bash_profile), C(~/.bash_login), C(~/.zshrc), C(~/.zshenv),
    C(~/.zprofile), C(/etc/environment), C(/etc/profile), C(/etc/bash.bashrc), C(/etc/zsh/zshenv) and
    C(/etc/profile.d/*), commented out or not.
  - V(private_key), files whose first O(read_size) bytes begin a PEM or OpenSSH private key block
    (SSH keys such as C(~/.ssh/id_*), TLS keys, PGP key blocks, PuTTY keys) in every home's C(~/.ssh)
    and anywhere under C(/root), C(/home), C(/srv), C(/etc), the homes of people (UID 0 and from 1000)
    and O(paths); and GnuPG private keys. The SSH host keys C(/etc/ssh/ssh_host_*_key) are not
    findings (the clean step removes them), nor are keys inside software (directories of Python and
    conda environments, caches marked with C(CACHEDIR.TAG), C(site-packages), C(node_modules), a Python
    standard library), which ship test keys.
  - V(git_credentials), C(~/.git-credentials) and C(~/.config/git/credentials) (what
    C(credential.helper store) writes) and the store files a git configuration names with
    C(store --file), C(~/.netrc) with passwords, and URLs with a password or token
    (C(https://user:token@host/...)) in C(~/.gitconfig), C(/etc/gitconfig) and the C(.git/config) of
    every repository in the scanned trees.
  - V(history) and V(jupyter_secret), shell, Python and IPython histories and Jupyter secrets
    (C(jpserver-*.json), C(jupyter_cookie_secret), C(notebook_secret), kernel connection files) found
    outside the places the clean step empties, such as a C(.bash_history) or an IPython
    C(history.sqlite) copied into the notebook directory.
  - The scan is bounded. It never follows a symbolic link (files are opened through their directories
    with C(O_NOFOLLOW), so a link planted in a user's directory leads nowhere), never enters C(/proc),
    C(/sys), C(/dev) or C(/run), reads at most O(read_size) bytes of a file for the key test and does
    not read files larger than O(max_file_size); RV(scanned) counts what it looked at.
  - Findings an admin has reviewed are listed in O(allow) and come back as RV(allowed). Findings that
    remain fail the module (unless O(fail_on_findings=false)), with every finding and its path in the
    message and how to remove or allow them.
  - The result also carries RV(to_clean), what O(state=clean) would remove, so that a dry run shows it.
  - B(Clean) (O(state=clean)). Checks first, and fails without changing anything while findings remain.
    Then removes, in this order, the JupyterLab service's token file (O(token_file)) and cookie secret
    (O(cookie_secret_file)); every user's Jupyter runtime files (everything in C(~/.local/share/jupyter/runtime),
    such as C(jpserver-*.json), C(jupyter_cookie_secret), C(kernel-*.json)) and notebook-signing secret
    (C(~/.local/share/jupyter/notebook_secret), C(nbsignatures.db)); every user's histories
    (C(.bash_history), C(.zsh_history), C(.python_history), C(.lesshst), C(.viminfo),
    C(.sqlite_history), C(.psql_history), C(.mysql_history), C(.node_repl_history), and IPython's
    C(~/.ipython/profile_*/history.sqlite)); the contents of C(/tmp) and C(/var/tmp) except UNIX
    sockets a process holds, the module's own files and the C(systemd-private-*) directories of
    running services; cloud-init's state and logs and the machine ID, by running
    C(cloud-init clean --logs --machine-id); C(/etc/machine-id) (emptied, when it still holds an ID);
    the SSH host keys C(/etc/ssh/ssh_host_*); and last every user's C(~/.ssh/authorized_keys) (and
    C(authorized_keys2)), root's included.
  - When C(cloud-init) is missing or its command fails, the module removes C(/var/lib/cloud/*) (but
    C(seed)), C(/var/log/cloud-init.log) and C(/var/log/cloud-init-output.log) and empties
    C(/etc/machine-id) itself, and says so in a warning and in RV(cloud_init).
  - The authorized keys go last because new SSH logins fail from then on; the playbook's open SSH
    connection (C(ControlPersist)) still serves its next tasks. At the next boot of an instance made
    from the image, cloud-init adds that instance's key pair, makes new host keys and a new machine ID,
    and JupyterLab makes a new token when it starts.
  - This closes a gap. No kept module finds secrets by their content and kind across a host;
    M(ansible.builtin.find) would need a task per kind and per tree, with C(contains) reading each
    file line by line to its end and following links as root, and M(ansible.builtin.file) removes one
    path per task with no order and no idea of which paths exist for which user.
options:
  state:
    description:
      - V(checked) only looks, and fails while findings remain (see O(fail_on_findings)).
      - V(clean) checks, then removes what RV(to_clean) lists; it fails without changing anything while
        findings remain, whatever O(fail_on_findings) says.
    type: str
    choices: [checked, clean]
    default: checked
  allow:
    description:
      - Findings an admin has reviewed and that may stay in the image, by path. A pattern with C(*), C(?)
        or C([) is a shell glob matched against the whole path (C(*) also matches C(/)); any other
        pattern allows that path and everything below it.
      - Allowed findings come back in RV(allowed) and do not fail the module.
    type: list
    elements: str
    default: []
  fail_on_findings:
    description: With O(state=checked), fail when findings remain; false returns them without failing.
    type: bool
    default: true
  paths:
    description:
      - More directories to scan in full, besides C(/root), C(/home), C(/srv), C(/etc) and the homes of
        people, such as the notebook directory when it is elsewhere.
    type: list
    elements: path
    default: []
  token_file:
    description:
      - The JupyterLab service's token file, removed by the clean step (the service makes a new token at
        its next start). The default is where the M(labcloud.jupyter.jupyter_service) role keeps it.
    type: path
    default: /var/lib/jupyterlab/token
  cookie_secret_file:
    description:
      - The JupyterLab service's cookie secret, removed by the clean step. The default is where the
        M(labcloud.jupyter.jupyter_service) role's settings put it, the service's runtime directory (a
        tmpfs, so it is never in an image; it is removed all the same).
    type: path
    default: /run/jupyterlab/cookie_secret
  read_size:
    description: How many bytes at the start of a file the private-key test reads.
    type: int
    default: 4096
  max_file_size:
    description: Files larger than this many bytes are not read (keys are small; larger files are data).
    type: int
    default: 1048576
  root:
    description:
      - The directory taken as C(/). Set it to check (or clean) a file system mounted elsewhere, such as
        an image's volume; C(cloud-init clean) then does not run (it would clean the running host), its
        files are removed directly, and no socket counts as in use.
    type: path
    default: /
extends_documentation_fragment:
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.check_mode_full
  - labcloud.jupyter.attributes.diff_mode_full
attributes:
  check_mode:
    details:
      - Check mode checks (and fails on findings as the real run would) and, with O(state=clean), reports
        as changed when RV(to_clean) is not empty; it removes nothing.
  diff_mode:
    details:
      - The paths the clean step removes (and the machine ID it empties).
  platform:
    description: Runs on a Linux host, as root.
    support: full
    platforms: posix
notes:
  - Run it as root (C(become)), on the VM to bake, as the last task before the image is made.
  - Removing a file does not erase its blocks from the disk, and an image is made from the blocks;
    secrets should never reach a VM that becomes an image. The check is there to catch the ones that did.
  - Files a process holds open (a shell's history of a session still running) come back when that
    process writes them; log out other sessions first.
author:
  - labcloud.jupyter developers (@labcloud)
seealso:
  - module: ansible.builtin.find
"""

EXAMPLES = r"""
- name: Check the VM before baking it (fails, naming every secret, when there are any)
  labcloud.jupyter.image_hygiene:
  become: true

- name: Check, with a reviewed TLS key that must stay, and show what the clean step would remove
  labcloud.jupyter.image_hygiene:
    allow:
      - /etc/ssl/private/ssl-cert-snakeoil.key
    paths:
      - /data/notebooks
  become: true
  register: hygiene

- name: Clean the VM, last thing before the image is made
  labcloud.jupyter.image_hygiene:
    state: clean
    allow: "{{ reviewed_paths }}"
  become: true
"""

RETURN = r"""
findings:
  description: The secrets found that O(allow) does not cover, sorted by path.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
      sample: /home/admin/.aws/credentials
    kind:
      description: V(aws_credentials), V(private_key), V(git_credentials), V(history) or V(jupyter_secret).
      type: str
      sample: aws_credentials
    detail:
      description: What it is (key names and line numbers, never values).
      type: str
      sample: "AWS credentials file: aws_access_key_id on line 2, aws_secret_access_key on line 3"
allowed:
  description: The findings O(allow) covers, as RV(findings) lists them.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/etc/ssl/private/ssl-cert-snakeoil.key", "kind": "private_key",
            "detail": "private key (PEM, PKCS#8)"}]
to_clean:
  description: What the clean step removes, in the order it removes it, with the kind of each path.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path (a directory goes with everything in it).
      type: str
    kind:
      description: >-
        V(jupyter_token), V(jupyter_cookie_secret), V(jupyter_runtime), V(jupyter_secret), V(history),
        V(temporary), V(cloud_init), V(machine_id) (emptied, not removed), V(ssh_host_key) or V(authorized_keys).
      type: str
  sample: [{"path": "/var/lib/jupyterlab/token", "kind": "jupyter_token"},
           {"path": "/etc/ssh/ssh_host_ed25519_key", "kind": "ssh_host_key"},
           {"path": "/home/admin/.ssh/authorized_keys", "kind": "authorized_keys"}]
removed:
  description: With O(state=clean), what was removed (in check mode, what would be), as RV(to_clean) lists it.
  returned: when O(state=clean) and no findings remain
  type: list
  elements: dict
cloud_init:
  description:
    - With O(state=clean), how cloud-init's state was cleaned, when there was any to clean.
    - C(command) run (null when it was not), its C(rc), and C(fallback), true when the module removed the
      files itself, with C(message) saying why.
  returned: when O(state=clean) removed cloud-init state or the machine ID
  type: dict
  sample: {"command": "/usr/bin/cloud-init clean --logs --machine-id", "rc": 0, "fallback": false, "message": ""}
scanned:
  description:
    - What the check looked at. C(files), regular files met in the scanned trees; C(read), files whose
      start was read; C(too_large), files not read for their size; C(directories), directories entered;
      C(too_deep), directories too deep to enter; C(trees), the trees scanned in full; C(homes), every
      home checked; C(software), software directories not entered.
  returned: always
  type: dict
  sample: {"files": 1432, "read": 1398, "too_large": 12, "directories": 310, "too_deep": 0,
           "trees": ["/root", "/home", "/srv", "/etc"], "homes": ["/root", "/home/admin"],
           "software": ["/root/.cache/uv"]}
skipped:
  description: Paths the clean step leaves because a symbolic link is on the way to them (it follows none).
  returned: always
  type: list
  elements: str
"""

import os
import sys

from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labcloud.jupyter.plugins.module_utils import image_hygiene as hygiene

# Kinds of the clean plan that cloud-init's own clean command takes care of.
CLOUD_INIT_KINDS = ("cloud_init", "machine_id")


def own_files() -> list:
    """The files this run is made of (its payload may sit in /tmp, which the clean step empties)."""
    files = [os.path.abspath(hygiene.__file__), os.path.abspath(basic.__file__)]
    if sys.argv and sys.argv[0].startswith("/"):
        files.append(sys.argv[0])
    return files


def sockets_in_use() -> set:
    """The UNIX sockets a process holds, from /proc/net/unix."""
    try:
        with open("/proc/net/unix") as stream:
            return hygiene.in_use_sockets(stream.read())
    except (IOError, OSError):
        return set()


def diff_of(entries: list) -> dict:
    """The paths the clean step removes, as a before and after."""
    before = "".join("%s (%s)\n" % (entry["path"], entry["kind"]) for entry in entries)
    after = "".join("%s (emptied)\n" % entry["path"] for entry in entries if entry["kind"] == "machine_id")
    return {
        "before": before,
        "after": after,
        "before_header": "files that must not ship in the image",
        "after_header": "after the clean step",
    }


def clean_cloud_init(module: AnsibleModule, tree: hygiene.Tree) -> dict:
    """Run `cloud-init clean --logs --machine-id`; say when the module has to remove the files itself."""
    if tree.root != "/":
        message = "root is %s, not /: cloud-init clean would clean the running host, so its files are removed directly"
        return {"command": None, "rc": None, "fallback": True, "message": message % tree.root}
    binary = module.get_bin_path("cloud-init")
    if not binary:
        message = "cloud-init is not installed: its state and logs are removed, and the machine ID emptied, directly"
        return {"command": None, "rc": None, "fallback": True, "message": message}
    command = [binary, "clean", "--logs", "--machine-id"]
    rc, out, err = module.run_command(command)
    result = {"command": " ".join(command), "rc": rc, "fallback": rc != 0, "message": ""}
    if rc != 0:
        why = (err or out).strip().splitlines()
        result["message"] = "%s failed (rc %d%s): %s" % (
            result["command"],
            rc,
            ": " + why[-1] if why else "",
            "its state and logs are removed, and the machine ID emptied, directly",
        )
    return result


def clean(module: AnsibleModule, tree: hygiene.Tree, entries: list, output: dict) -> None:
    """Remove the plan's entries in order (cloud-init's clean command first for its own), and exit."""
    removed = []
    for entry in entries:
        if entry["kind"] in CLOUD_INIT_KINDS and "cloud_init" not in output:
            output["cloud_init"] = clean_cloud_init(module, tree)
            if output["cloud_init"]["fallback"]:
                module.warn(output["cloud_init"]["message"])
        try:
            hygiene.remove(tree, entry)
        except OSError as error:
            done = "; removed before it: %s" % ", ".join(item["path"] for item in removed) if removed else ""
            module.fail_json(
                msg="Could not remove %s (%s): %s%s; nothing after it was removed, run again once fixed"
                % (entry["path"], entry["kind"], error.strerror or error, done),
                removed=removed,
                changed=bool(removed),
                **output,
            )
        removed.append({"path": entry["path"], "kind": entry["kind"]})
    module.exit_json(changed=bool(removed), removed=removed, **output)


def main() -> None:
    """Run the module."""
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["checked", "clean"], default="checked"),
            allow=dict(type="list", elements="str", default=[]),
            fail_on_findings=dict(type="bool", default=True),
            paths=dict(type="list", elements="path", default=[]),
            token_file=dict(type="path", default="/var/lib/jupyterlab/token", no_log=False),
            cookie_secret_file=dict(type="path", default="/run/jupyterlab/cookie_secret", no_log=False),
            read_size=dict(type="int", default=hygiene.READ_SIZE),
            max_file_size=dict(type="int", default=hygiene.MAX_FILE_SIZE),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["read_size"] < 64 or params["max_file_size"] < 1:
        module.fail_json(msg="read_size must be at least 64 bytes and max_file_size positive")
    tree = hygiene.Tree(params["root"])
    if not os.path.isdir(tree.root):
        module.fail_json(msg="root %s is not a directory" % tree.root)
    token_file, cookie_secret_file = params["token_file"] or "", params["cookie_secret_file"] or ""
    for name, path in (("token_file", token_file), ("cookie_secret_file", cookie_secret_file)):
        if path and not path.startswith("/"):
            module.fail_json(msg="%s must be an absolute path (got %s)" % (name, path))

    result = hygiene.check(
        tree,
        paths=params["paths"],
        allow=params["allow"],
        cleaned_files=[token_file, cookie_secret_file],
        read_size=params["read_size"],
        max_file_size=params["max_file_size"],
    )
    keep = own_files() + sorted(sockets_in_use()) if tree.root == "/" else []
    entries, skipped = hygiene.clean_plan(tree, result["scanned"]["homes"], token_file, cookie_secret_file, keep)
    for reason in skipped:
        module.warn("Not removed: %s" % reason)
    output = dict(result, to_clean=hygiene.public(entries), skipped=skipped)

    cleaning = params["state"] == "clean"
    if result["findings"] and (cleaning or params["fail_on_findings"]):
        tail = "\nNothing was removed." if cleaning else ""
        module.fail_json(msg=hygiene.findings_message(result["findings"]) + tail, changed=False, **output)
    if not cleaning:
        module.exit_json(changed=False, **output)
    if module._diff:
        output["diff"] = diff_of(entries)
    if module.check_mode or not entries:
        module.exit_json(changed=bool(entries), removed=hygiene.public(entries), **output)
    clean(module, tree, entries, output)


if __name__ == "__main__":
    main()
