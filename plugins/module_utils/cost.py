# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the collection's resources cost, from their EC2 descriptions: the rows, totals and tables of cost_report.

Nothing here talks to AWS. The inputs are the descriptions boto3 returns (DescribeInstances,
DescribeVolumes, DescribeSnapshots, DescribeAddresses, DescribeImages with each image's launch
permissions), the time of the report and a prices.PriceTable; the output is one row per resource with
its owner and project, totals per owner and project and for the class, and the Markdown and CSV text.

Amounts are USD. Every row has a price per hour now and per month (730 hours) at its current state:
a running instance its hourly price, a stopped one nothing (its volumes and addresses are rows of
their own), storage its monthly price spread over the hours, an address its hourly price whether
associated or not. A snapshot that backs an image of the report is billed on the image's row, so
that nothing is counted twice. An amount that the prices do not cover is None and left out of the
totals, which then say so.
"""

import csv
import io
import re
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import NAME_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import OWNER_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import PROJECT_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import is_managed
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import tag_dict
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import HOURS_PER_MONTH
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import PriceTable

# Instances in these states still hold their volumes and addresses (terminated ones are gone).
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
# Where the report shows a resource whose Owner or Project tag is missing.
NONE = "-"
KINDS = ("instance", "public-ipv4", "elastic-ip", "volume", "snapshot", "image")
CSV_FIELDS = (
    "owner",
    "project",
    "kind",
    "id",
    "name",
    "state",
    "type",
    "gib",
    "hours",
    "age_days",
    "cost_so_far_usd",
    "per_hour_usd",
    "per_month_usd",
    "shared_with",
    "health",
    "notes",
)
# "User initiated (2026-12-01 10:00:00 GMT)": when EC2 stopped an instance.
STOPPED_AT = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")
# Rounding of the amounts returned (the tables round further when they show them).
DIGITS = 6


def as_utc(value: Any) -> Optional[datetime]:
    """Return a datetime (or ISO 8601 text) in UTC, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def stopped_at(instance: Mapping[str, Any]) -> Optional[datetime]:
    """Return when a stopped instance was stopped, as its StateTransitionReason says, or None."""
    match = STOPPED_AT.search(instance.get("StateTransitionReason") or "")
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)


def hours_between(start: Optional[datetime], end: datetime) -> Optional[float]:
    """Return the hours from start to end (not below 0), or None without a start."""
    if start is None:
        return None
    return max((end - start).total_seconds(), 0.0) / 3600


def times(value: Optional[float], factor: Optional[float]) -> Optional[float]:
    """Return value times factor, or None when either is unknown."""
    return None if value is None or factor is None else value * factor


def rounded(value: Optional[float]) -> Optional[float]:
    """Return an amount rounded for the result, or None."""
    return None if value is None else round(value, DIGITS)


def group_of(tags: Mapping[str, str], fallback: Tuple[str, str] = (NONE, NONE)) -> Tuple[str, str]:
    """Return the (owner, project) a resource is reported under: its tags, else the fallback."""
    return (tags.get(OWNER_TAG) or fallback[0], tags.get(PROJECT_TAG) or fallback[1])


def row(kind: str, group: Tuple[str, str], resource_id: str, **fields: Any) -> Dict[str, Any]:
    """Return a report row with every field, the amounts rounded."""
    result = {field: fields.get(field) for field in CSV_FIELDS}
    result.update(owner=group[0], project=group[1], kind=kind, id=resource_id)
    for field in ("cost_so_far_usd", "per_hour_usd", "per_month_usd", "hours", "age_days"):
        result[field] = rounded(result[field])
    result["shared_with"] = list(fields.get("shared_with") or [])
    return result


def storage_row(
    kind: str, group: Tuple[str, str], resource_id: str, monthly: Optional[float], **fields: Any
) -> Dict[str, Any]:
    """Return the row of a volume, snapshot or image: billed per month, spread over its hours."""
    return row(
        kind, group, resource_id, per_month_usd=monthly, per_hour_usd=times(monthly, 1 / HOURS_PER_MONTH), **fields
    )


def health_of(instance: Mapping[str, Any], status: Optional[str], health: Mapping[str, str]) -> str:
    """Return what the report says of a VM's health: its EC2 status checks, and JupyterLab's answer when known."""
    state = instance["State"]["Name"]
    if state != "running":
        return f"{state} (no JupyterLab)"
    owner = tag_dict(instance).get(OWNER_TAG, "")
    checks = f"EC2 status checks {status}" if status else "EC2 status checks not reported yet"
    jupyter = (
        health.get(owner) or f"JupyterLab not checked: playbooks/tunnel.yml -e owner={owner} -e tunnel_state=status"
    )
    return f"running, {checks}; {jupyter}"


def instance_rows(
    instance: Mapping[str, Any], now: datetime, prices: PriceTable, elastic_ips: Iterable[str], status: Optional[str],
    health: Mapping[str, str],
) -> List[Dict[str, Any]]:  # fmt: skip
    """Return the rows of an instance: itself, and its own public IPv4 address (one that is not an Elastic IP)."""
    tags = tag_dict(instance)
    group = group_of(tags)
    state = instance["State"]["Name"]
    hourly = prices.instance(instance.get("InstanceType", ""))
    launched = as_utc(instance.get("LaunchTime"))
    end = now if state in ("pending", "running") else (stopped_at(instance) or now)
    hours = hours_between(launched, end) if state != "stopped" or stopped_at(instance) else None
    running = state in ("pending", "running")
    rows = [
        row(
            "instance",
            group,
            instance["InstanceId"],
            name=tags.get(NAME_TAG, ""),
            state=state,
            type=instance.get("InstanceType", ""),
            hours=hours,
            cost_so_far_usd=times(hours, hourly),
            per_hour_usd=hourly if running else (0.0 if hourly is not None else None),
            per_month_usd=times(hourly, HOURS_PER_MONTH) if running else (0.0 if hourly is not None else None),
            health=health_of(instance, status, health),
            notes="hours since its last start" + ("" if running else ", until it was stopped"),
        )
    ]
    address = instance.get("PublicIpAddress")
    if address and address not in elastic_ips:
        ipv4 = prices.ipv4()
        rows.append(
            row(
                "public-ipv4",
                group,
                address,
                name=tags.get(NAME_TAG, ""),
                state=f"in use by {instance['InstanceId']} ({state})",
                per_hour_usd=ipv4,
                per_month_usd=times(ipv4, HOURS_PER_MONTH),
                notes="the instance's own public address: billed while it has it",
            )
        )
    return rows


def address_row(address: Mapping[str, Any], prices: PriceTable, instance_states: Mapping[str, str]) -> Dict[str, Any]:
    """Return the row of an Elastic IP: associated (the instance's state) or idle, billed by the hour either way."""
    tags = tag_dict(address)
    instance_id = address.get("InstanceId")
    if instance_id:
        state = f"associated with {instance_id} ({instance_states.get(instance_id, 'not in the report')})"
    elif address.get("AssociationId"):
        state = "associated with a network interface"
    else:
        state = "idle"
    ipv4 = prices.ipv4()
    return row(
        "elastic-ip",
        group_of(tags),
        address.get("AllocationId") or address.get("PublicIp", ""),
        name=tags.get(NAME_TAG, ""),
        state=state,
        per_hour_usd=ipv4,
        per_month_usd=times(ipv4, HOURS_PER_MONTH),
        notes=f"{address.get('PublicIp', '')}: billed by the hour, associated or not",
    )


def volume_row(volume: Mapping[str, Any], prices: PriceTable, groups: Mapping[str, Tuple[str, str]]) -> Dict[str, Any]:
    """Return the row of a volume, reported under its tags, else under the instance it is attached to."""
    tags = tag_dict(volume)
    attached = [a["InstanceId"] for a in volume.get("Attachments") or [] if a.get("InstanceId")]
    fallback = groups.get(attached[0], (NONE, NONE)) if attached else (NONE, NONE)
    size = int(volume.get("Size") or 0)
    volume_type = volume.get("VolumeType", "")
    return storage_row(
        "volume",
        group_of(tags, fallback),
        volume["VolumeId"],
        prices.volume(volume_type, size),
        name=tags.get(NAME_TAG, ""),
        state=f"attached to {', '.join(attached)}" if attached else "unattached",
        type=volume_type,
        gib=size,
    )


def image_gib(image: Mapping[str, Any]) -> int:
    """Return the GiB of an image's EBS snapshots (the sizes of its block device mappings)."""
    return sum(
        int((mapping.get("Ebs") or {}).get("VolumeSize") or 0) for mapping in image.get("BlockDeviceMappings") or []
    )


def image_snapshots(image: Mapping[str, Any]) -> List[str]:
    """Return the IDs of an image's snapshots."""
    return [
        mapping["Ebs"]["SnapshotId"]
        for mapping in image.get("BlockDeviceMappings") or []
        if (mapping.get("Ebs") or {}).get("SnapshotId")
    ]


def shared_with(image: Mapping[str, Any]) -> List[str]:
    """Return who else may launch an image: account IDs, organizations, units, or everyone when it is public."""
    grantees = []
    for permission in image.get("LaunchPermissions") or []:
        if permission.get("Group") == "all":
            grantees.append("everyone (public)")
        for key in ("UserId", "OrganizationArn", "OrganizationalUnitArn"):
            if permission.get(key):
                grantees.append(permission[key])
    if image.get("Public") and "everyone (public)" not in grantees:
        grantees.append("everyone (public)")
    return grantees


def image_row(image: Mapping[str, Any], now: datetime, prices: PriceTable) -> Dict[str, Any]:
    """Return the row of an image: its age, size, who may launch it, and its snapshots' storage."""
    tags = tag_dict(image)
    created = as_utc(image.get("CreationDate"))
    gib = image_gib(image)
    return storage_row(
        "image",
        group_of(tags),
        image["ImageId"],
        prices.snapshot(gib),
        name=image.get("Name", ""),
        state=image.get("State", ""),
        gib=gib,
        age_days=None if created is None else max((now - created).total_seconds(), 0.0) / 86400,
        shared_with=shared_with(image),
        notes=f"snapshots {', '.join(image_snapshots(image)) or 'none'}",
    )


def snapshot_row(snapshot: Mapping[str, Any], prices: PriceTable, billed_with: Mapping[str, str]) -> Dict[str, Any]:
    """Return the row of a snapshot: billed on its image's row when it backs one of the report, else on its own."""
    tags = tag_dict(snapshot)
    size = int(snapshot.get("VolumeSize") or 0)
    image_id = billed_with.get(snapshot["SnapshotId"])
    if image_id:
        return storage_row(
            "snapshot", group_of(tags), snapshot["SnapshotId"], 0.0, name=tags.get(NAME_TAG, ""),
            state=snapshot.get("State", ""), gib=size, notes=f"backs {image_id}, billed on its row",
        )  # fmt: skip
    return storage_row(
        "snapshot", group_of(tags), snapshot["SnapshotId"], prices.snapshot(size), name=tags.get(NAME_TAG, ""),
        state=snapshot.get("State", ""), gib=size, notes="backs no image",
    )  # fmt: skip


def wanted(tags: Mapping[str, str], owners: Optional[Iterable[str]]) -> bool:
    """Whether a resource with these tags is the collection's and, when owners are given, one of theirs."""
    return is_managed(tags) and (owners is None or tags.get(OWNER_TAG) in set(owners))


def report_rows(
    resources: Mapping[str, List[Mapping[str, Any]]],
    now: datetime,
    prices: PriceTable,
    owners: Optional[Iterable[str]] = None,
    health: Optional[Mapping[str, str]] = None,
) -> List[Dict[str, Any]]:
    """Return the rows of the report, sorted by owner, project, kind and ID.

    resources holds the descriptions under instances, volumes, snapshots, addresses, images (every image
    of the account, its LaunchPermissions added) and statuses (DescribeInstanceStatus). The collection's
    resources are those tagged ManagedBy (and Owner one of owners, when given); a volume attached to one
    of its instances is reported with the instance even without tags.
    """
    owners = list(owners) if owners is not None else None
    health = health or {}
    instances = [
        i for i in resources.get("instances", []) if i["State"]["Name"] in LIVE_STATES and wanted(tag_dict(i), owners)
    ]
    groups = {i["InstanceId"]: group_of(tag_dict(i)) for i in instances}
    states = {i["InstanceId"]: i["State"]["Name"] for i in instances}
    statuses = {s["InstanceId"]: (s.get("InstanceStatus") or {}).get("Status") for s in resources.get("statuses", [])}
    elastic_ips = {a.get("PublicIp") for a in resources.get("addresses", [])}
    rows: List[Dict[str, Any]] = []
    for instance in instances:
        rows += instance_rows(instance, now, prices, elastic_ips, statuses.get(instance["InstanceId"]), health)
    rows += [address_row(a, prices, states) for a in resources.get("addresses", []) if wanted(tag_dict(a), owners)]
    rows += [
        volume_row(v, prices, groups)
        for v in resources.get("volumes", [])
        if wanted(tag_dict(v), owners) or any(a.get("InstanceId") in groups for a in v.get("Attachments") or [])
    ]
    images = [i for i in resources.get("images", []) if i.get("State") != "deregistered"]
    reported = [i for i in images if wanted(tag_dict(i), owners)]
    rows += [image_row(i, now, prices) for i in reported]
    billed_with = {snapshot: i["ImageId"] for i in reported for snapshot in image_snapshots(i)}
    rows += [
        snapshot_row(s, prices, billed_with) for s in resources.get("snapshots", []) if wanted(tag_dict(s), owners)
    ]
    order = {kind: index for index, kind in enumerate(KINDS)}
    return sorted(rows, key=lambda r: (r["owner"], r["project"], order[r["kind"]], r["id"]))


def total(rows: List[Dict[str, Any]], owner: str, project: str) -> Dict[str, Any]:
    """Return the total row of some rows: counts, known amounts summed, and whether some were unknown."""
    result = {field: None for field in CSV_FIELDS}
    result.update(owner=owner, project=project, kind="total", id="", shared_with=[])
    for field in ("cost_so_far_usd", "per_hour_usd", "per_month_usd"):
        result[field] = round(sum(r[field] or 0.0 for r in rows), DIGITS)
    unknown = sum(1 for r in rows for field in ("per_hour_usd", "per_month_usd") if r[field] is None)
    counts = {kind: sum(1 for r in rows if r["kind"] == kind) for kind in KINDS}
    running = sum(1 for r in rows if r["kind"] == "instance" and r["state"] == "running")
    result["notes"] = (
        f"{counts['instance']} instance(s), {running} running; {counts['volume']} volume(s); "
        f"{counts['snapshot']} snapshot(s); {counts['elastic-ip'] + counts['public-ipv4']} public IPv4 address(es); "
        f"{counts['image']} image(s)" + (f"; {unknown} amount(s) unknown, left out" if unknown else "")
    )
    return result


def totals(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Return one total per owner and project, then the class total (owner and project "all")."""
    keys = sorted({(r["owner"], r["project"]) for r in rows})
    result = [total([r for r in rows if (r["owner"], r["project"]) == key], *key) for key in keys]
    result.append(total(rows, "all", "all"))
    return result


def money(value: Optional[float], digits: int) -> str:
    """Return an amount as the tables show it."""
    return "unknown" if value is None else f"{value:.{digits}f}"


def cell(value: Any) -> str:
    """Return a value as a Markdown table cell."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_row(r: Mapping[str, Any]) -> str:
    """Return a resource's line of a Markdown table."""
    span = (
        f"{r['hours']:.2f} h"
        if r["hours"] is not None
        else f"{r['age_days']:.1f} days"
        if r["age_days"] is not None
        else ""
    )
    size = r["type"] or ""
    if r["gib"] is not None:
        size = f"{size} {r['gib']} GiB".strip()
    so_far = money(r["cost_so_far_usd"], 2) if r["kind"] == "instance" else ""
    notes = "; ".join(
        part
        for part in (r["health"], cell(r["shared_with"]) and f"shared with {cell(r['shared_with'])}", r["notes"])
        if part
    )
    cells = [
        r["kind"],
        r["id"],
        r["state"],
        size,
        span,
        so_far,
        money(r["per_hour_usd"], 4),
        money(r["per_month_usd"], 2),
        notes,
    ]
    return "| " + " | ".join(cell(c) for c in cells) + " |"


HEADER = (
    "| Resource | ID | State | Type / size | Running / age | Cost so far | Per hour | Per month | Notes |\n"
    "|---|---|---|---|---|--:|--:|--:|---|"
)


def markdown(
    rows: List[Dict[str, Any]], now: datetime, region: str, prices: Mapping[str, Any], health_note: str
) -> str:
    """Return the report as Markdown: one table per owner and project, then the class total."""
    sums = totals(rows)
    lines = [
        f"# Cost report of the labcloud.jupyter resources in {region}, {now:%Y-%m-%d %H:%M:%S} UTC",
        "",
        f"Prices: {prices['text']}. Amounts in USD, on demand; per month is 730 hours at the current state "
        "(a stopped instance costs nothing itself, its volumes and addresses bill on). A snapshot that backs "
        "an image is billed on the image's row; snapshot storage is at most its size (only written blocks are billed).",
        "",
        f"Health: {health_note}",
    ]
    for line in sums[:-1]:
        lines += ["", f"## {line['owner']} / {line['project']}", "", HEADER]
        lines += [markdown_row(r) for r in rows if (r["owner"], r["project"]) == (line["owner"], line["project"])]
        lines.append(
            f"| **total** | | | | | {money(line['cost_so_far_usd'], 2)} | {money(line['per_hour_usd'], 4)} | "
            f"{money(line['per_month_usd'], 2)} | {line['notes']} |"
        )
    lines += [
        "",
        "## Class total",
        "",
        "| Owner | Project | Cost so far | Per hour | Per month | What |",
        "|---|---|--:|--:|--:|---|",
    ]
    for line in sums:
        name = ("**all**", "") if line["owner"] == "all" else (line["owner"], line["project"])
        lines.append(
            f"| {name[0]} | {name[1]} | {money(line['cost_so_far_usd'], 2)} | {money(line['per_hour_usd'], 4)} | "
            f"{money(line['per_month_usd'], 2)} | {line['notes']} |"
        )
    if not rows:
        lines += ["", "No resource of the collection was found."]
    return "\n".join(lines) + "\n"


def csv_text(rows: List[Dict[str, Any]]) -> str:
    """Return the rows and totals as CSV, one line each, amounts unrounded beyond the result's rounding."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    for r in rows + totals(rows):
        writer.writerow({field: ("; ".join(r[field]) if field == "shared_with" else r[field]) for field in CSV_FIELDS})
    return out.getvalue()
