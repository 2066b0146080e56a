# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic of labcloud.jupyter.ami_share: input validation and permission diffs.

Nothing here talks to AWS, so every rule can be unit-tested on its own. A permission set is
the four kinds of grantee an AMI launch permission can name: account IDs, organization ARNs,
organizational-unit ARNs, and the public group ``all``.
"""

import re
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_PARTITION = r"arn:aws(?:-cn|-us-gov|-iso|-iso-b)?"
ORGANIZATION_ARN = re.compile(_PARTITION + r":organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$")
ORGANIZATIONAL_UNIT_ARN = re.compile(
    _PARTITION + r":organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$"
)

ORGANIZATION_ARN_FORM = (
    "arn:aws:organizations::<12-digit account>:organization/o-<10 to 32 lowercase letters or digits>"
)
ORGANIZATIONAL_UNIT_ARN_FORM = (
    "arn:aws:organizations::<12-digit account>:ou/o-<organization id>/ou-<4 to 32 characters>-<8 to 32 characters>"
)


class PermissionSet(NamedTuple):
    """Who may use an AMI (launch permission) or a snapshot (createVolumePermission)."""

    account_ids: frozenset = frozenset()
    organization_arns: frozenset = frozenset()
    organizational_unit_arns: frozenset = frozenset()
    public: bool = False

    def is_empty(self) -> bool:
        """Return True when the set grants nothing to anybody."""
        return not (self.account_ids or self.organization_arns or self.organizational_unit_arns or self.public)


def _duplicates(values: Iterable[str]) -> List[str]:
    """Return the values that occur more than once, in first-seen order."""
    seen = set()
    repeated = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated


def _account_id_error(value: str) -> Optional[str]:
    """Return why value is not an account ID, or None when it is one."""
    if ACCOUNT_ID.match(value):
        return None
    if value.strip().lower() == "all":
        return f'account_ids: "{value}" is not an account ID; to make the AMI public set public: true explicitly'
    if value.isdigit():
        return (
            f'account_ids: "{value}" has {len(value)} digits, an AWS account ID has exactly 12 '
            "(quote account IDs in YAML so that leading zeros are kept)"
        )
    return f'account_ids: "{value}" is not an AWS account ID (exactly 12 digits)'


def _organization_arn_error(value: str) -> Optional[str]:
    """Return why value is not an organization ARN, or None when it is one."""
    if ORGANIZATION_ARN.match(value):
        return None
    if ORGANIZATIONAL_UNIT_ARN.match(value):
        return f'organization_arns: "{value}" is an organizational unit ARN; list it under organizational_unit_arns'
    return f'organization_arns: "{value}" is not an organization ARN ({ORGANIZATION_ARN_FORM})'


def _organizational_unit_arn_error(value: str) -> Optional[str]:
    """Return why value is not an organizational-unit ARN, or None when it is one."""
    if ORGANIZATIONAL_UNIT_ARN.match(value):
        return None
    if ORGANIZATION_ARN.match(value):
        return f'organizational_unit_arns: "{value}" is an organization ARN; list it under organization_arns'
    return f'organizational_unit_arns: "{value}" is not an organizational unit ARN ({ORGANIZATIONAL_UNIT_ARN_FORM})'


def validate_grantees(
    account_ids: List[str], organization_arns: List[str], organizational_unit_arns: List[str]
) -> List[str]:
    """Return one message per malformed or repeated grantee (empty when all are valid)."""
    errors = []
    checks = (
        ("account_ids", account_ids, _account_id_error),
        ("organization_arns", organization_arns, _organization_arn_error),
        ("organizational_unit_arns", organizational_unit_arns, _organizational_unit_arn_error),
    )
    for option, values, explain in checks:
        for value in values:
            error = explain(value)
            if error:
                errors.append(error)
        for value in _duplicates(values):
            errors.append(f'{option}: "{value}" is listed more than once')
    return errors


def validate_request(state: str, purge: bool, public: Optional[bool]) -> List[str]:
    """Return one message per option combination that has no meaning (empty when consistent)."""
    errors = []
    if state == "absent" and purge:
        errors.append("purge: true sets the permissions exactly and needs state: present")
    if state == "absent" and public is not None:
        errors.append("public cannot be combined with state: absent; use state: present with public: false")
    return errors


def own_account_error(account_ids: Iterable[str], own_account: str) -> Optional[str]:
    """Return a message when the AMI owner's own account is among the accounts to share with."""
    if own_account in account_ids:
        return (
            f'account_ids: "{own_account}" is the account that owns the AMI; '
            "it can always launch its own AMIs, so remove it from the list"
        )
    return None


def requested_set(
    account_ids: Iterable[str], organization_arns: Iterable[str], organizational_unit_arns: Iterable[str]
) -> PermissionSet:
    """Build the permission set named by the module options (public is decided separately)."""
    return PermissionSet(frozenset(account_ids), frozenset(organization_arns), frozenset(organizational_unit_arns))


def desired_set(
    current: PermissionSet, requested: PermissionSet, state: str, purge: bool, public: Optional[bool]
) -> PermissionSet:
    """Return the permission set the AMI must have after the run.

    state=absent removes the requested grantees; state=present adds them, or with purge=true
    makes them the complete list. public=None leaves public access as it is, except that purge
    sets the list exactly and so removes it unless public=true.
    """
    if state == "absent":
        return PermissionSet(
            current.account_ids - requested.account_ids,
            current.organization_arns - requested.organization_arns,
            current.organizational_unit_arns - requested.organizational_unit_arns,
            current.public,
        )
    if purge:
        return requested._replace(public=bool(public))
    return PermissionSet(
        current.account_ids | requested.account_ids,
        current.organization_arns | requested.organization_arns,
        current.organizational_unit_arns | requested.organizational_unit_arns,
        current.public if public is None else public,
    )


def desired_snapshot_set(
    current: PermissionSet, requested: PermissionSet, state: str, purge: bool, public: Optional[bool]
) -> PermissionSet:
    """Return the createVolumePermission a snapshot of the AMI must have after the run.

    Snapshots follow the AMI's account list (organizations cannot be named on snapshots), and
    are never made public: a public AMI can be launched without reading its snapshots. A public
    snapshot is made private when the AMI's list is purged or public is set to false.
    """
    accounts_only = PermissionSet(account_ids=requested.account_ids)
    snapshot_public = None if not (purge or public is False) else False
    return desired_set(current, accounts_only, state, purge, snapshot_public)


def difference(current: PermissionSet, desired: PermissionSet) -> Tuple[PermissionSet, PermissionSet]:
    """Return (to_add, to_remove): the permission sets that turn current into desired."""
    to_add = PermissionSet(
        desired.account_ids - current.account_ids,
        desired.organization_arns - current.organization_arns,
        desired.organizational_unit_arns - current.organizational_unit_arns,
        desired.public and not current.public,
    )
    to_remove = PermissionSet(
        current.account_ids - desired.account_ids,
        current.organization_arns - desired.organization_arns,
        current.organizational_unit_arns - desired.organizational_unit_arns,
        current.public and not desired.public,
    )
    return to_add, to_remove


def to_launch_permission_list(permissions: PermissionSet) -> List[Dict[str, str]]:
    """Render a permission set as the LaunchPermission list of the EC2 API, in a stable order."""
    items = [{"Group": "all"}] if permissions.public else []
    items += [{"UserId": value} for value in sorted(permissions.account_ids)]
    items += [{"OrganizationArn": value} for value in sorted(permissions.organization_arns)]
    items += [{"OrganizationalUnitArn": value} for value in sorted(permissions.organizational_unit_arns)]
    return items


def from_permission_list(items: Iterable[Dict[str, Any]]) -> PermissionSet:
    """Parse the LaunchPermissions / CreateVolumePermissions list the EC2 API returns."""
    accounts, organizations, units = set(), set(), set()
    public = False
    for item in items:
        if item.get("Group") == "all":
            public = True
        if item.get("UserId"):
            accounts.add(item["UserId"])
        if item.get("OrganizationArn"):
            organizations.add(item["OrganizationArn"])
        if item.get("OrganizationalUnitArn"):
            units.add(item["OrganizationalUnitArn"])
    return PermissionSet(frozenset(accounts), frozenset(organizations), frozenset(units), public)


def launch_permission_payload(to_add: PermissionSet, to_remove: PermissionSet) -> Dict[str, List[Dict[str, str]]]:
    """Return the LaunchPermission argument of ModifyImageAttribute for one atomic change."""
    payload = {}
    if not to_add.is_empty():
        payload["Add"] = to_launch_permission_list(to_add)
    if not to_remove.is_empty():
        payload["Remove"] = to_launch_permission_list(to_remove)
    return payload


def as_result(permissions: PermissionSet, with_organizations: bool = True) -> Dict[str, Any]:
    """Render a permission set as the module's snake_case return value (sorted lists)."""
    result = {"account_ids": sorted(permissions.account_ids), "public": permissions.public}
    if with_organizations:
        result["organization_arns"] = sorted(permissions.organization_arns)
        result["organizational_unit_arns"] = sorted(permissions.organizational_unit_arns)
    return result
