# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters roster_entry, roster_owner and roster_entries: a class roster (or one owner) as the entries of a run.

They are the front door's logic (role labcloud.jupyter.owners): one shape for every playbook.
This file holds several filters, so each one's documentation is in the file of its name beside it
(roster_entry.yml, roster_owner.yml, roster_entries.yml), the way ansible-doc finds it.
"""

from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import KEY_DIR
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import LOCAL_PORT
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import identity


def roster_entry(entry: Any) -> Dict[str, Any]:
    """Return a roster entry as a dictionary with an owner."""
    if isinstance(entry, str):
        return {"owner": str(entry)}
    if isinstance(entry, Mapping) and isinstance(entry.get("owner"), str):
        return dict(entry)
    raise AnsibleFilterError(f"A roster entry is an owner's name or a dictionary with an 'owner' key, not {entry!r}")


def roster_owner(entry: Any) -> Optional[str]:
    """Return the owner a roster entry names (an owner's name, or a dictionary's owner), or None."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping) and "owner" in entry:
        return entry["owner"]
    return None


def roster_entries(
    roster: Any,
    key_dir: Optional[str] = None,
    common: Optional[Mapping[str, Any]] = None,
    first_port: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """Return each owner's entry: its own settings, then the run's common ones it does not set, its
    identity (name, key_file, tags, instance_filters), its position and its tunnel's local port."""
    first = int(first_port if first_port not in (None, "") else LOCAL_PORT)
    shared = {key: value for key, value in (common or {}).items() if value not in (None, "")}
    entries = []
    for index, raw in enumerate(roster or []):
        entry = {**shared, **roster_entry(raw)}
        try:
            entry.update(identity(entry["owner"], key_dir or KEY_DIR))
        except ValueError as e:
            raise AnsibleFilterError(str(e)) from e
        entry["key_dir"] = key_dir or KEY_DIR
        entry["index"] = index
        try:
            entry["local_port"] = int(entry.get("local_port") or first + index)
        except (TypeError, ValueError) as e:
            raise AnsibleFilterError(
                f"The local_port of owner {entry['owner']} is not a port number: {entry.get('local_port')!r}"
            ) from e
        entries.append(entry)
    return entries


class FilterModule:
    """The collection's roster filters."""

    def filters(self) -> Dict[str, Any]:
        """Map filter names to functions."""
        return {"roster_entry": roster_entry, "roster_entries": roster_entries, "roster_owner": roster_owner}
