#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module is done by the action plugin of the same name on the controller; this file documents it.

DOCUMENTATION = r"""
---
module: local_files
version_added: 0.1.0
short_description: Write several small files on the controller from templates, in one step
description:
  - Renders each template of O(files) with the task's variables (or copies the file as it is, with
    O(files[].template=false)) and writes it to its O(files[].dest) on the machine that runs the
    playbook, with mode O(files[].mode), in a directory made (mode O(directory_mode)) when it is
    missing. A file that already has that content and mode is left alone.
  - The O(directories) are made first, or given the mode O(directory_mode) when they have another.
  - Every template is rendered and every copied file read before anything is written, so that a bad
    argument changes nothing.
  - Each file is written to a temporary file in its directory and renamed over the old one, so a
    reader never sees half a file.
  - This closes a gap in M(ansible.builtin.template) for the collection's reports (the connection
    tables of a launch, and the pages handed out to each student of a class). There, each file is a
    module run, two processes each (a stat and a copy); a class of forty with two pages each would
    start 160. Here all the files are written by the controller's own process, as the files are on
    the controller anyway. C(bench/modules.py) measures the difference; for two pages for each of
    eight owners, M(ansible.builtin.template) took 12.1 s and this action 0.9 s (14 times less), in one
    run on a 2-core machine.
options:
  files:
    description: The files to write.
    type: list
    elements: dict
    required: true
    suboptions:
      src:
        description:
          - The template, looked up like M(ansible.builtin.template)'s (the role's C(templates/) first).
          - With O(files[].template=false), a file on the controller (C(~) is expanded).
        type: path
        required: true
      dest:
        description: Where to write it, on the controller (C(~) is expanded).
        type: path
        required: true
      mode:
        description: Its mode, as an octal string.
        type: str
        default: "0600"
      template:
        description:
          - Whether O(files[].src) is a template; V(false) copies it as it is (a private key handed out, for
            example). A copied file's content is never shown in a diff; in check mode, a copied file that
            does not exist yet is reported as to be written.
        type: bool
        default: true
  directories:
    description: Directories to make, or to give the mode O(directory_mode), before the files are written.
    type: list
    elements: path
    default: []
  directory_mode:
    description: The mode of a directory made for a file, and of each of O(directories).
    type: str
    default: "0700"
extends_documentation_fragment:
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.check_mode_full
  - labcloud.jupyter.attributes.diff_mode_full
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
  platform:
    description: Writes on the controller, whatever the target.
    support: full
    platforms: posix
author:
  - labcloud.jupyter developers (@labcloud)
seealso:
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Write the connection tables of a launch
  labcloud.jupyter.local_files:
    files:
      - src: connections.csv.j2
        dest: ~/.labcloud/launches/roster.csv
      - src: connections.md.j2
        dest: ~/.labcloud/launches/roster.md
  run_once: true

- name: Hand a student a folder of their own with a copy of their key
  labcloud.jupyter.local_files:
    directories:
      - ~/.labcloud/launches/handouts/grace
    files:
      - src: ~/.labcloud/keys/jupyter-grace.pem
        dest: ~/.labcloud/launches/handouts/grace/jupyter-grace.pem
        template: false
      - src: handout/README.md.j2
        dest: ~/.labcloud/launches/handouts/grace/README.md
"""

RETURN = r"""
directories:
  description: The O(directories) made or given their mode (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["/home/ada/.labcloud/launches/handouts/grace"]
written:
  description: The files written (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["/home/ada/.labcloud/launches/roster.csv"]
"""
