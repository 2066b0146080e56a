"""playbooks/report.yml against the local cloud's EC2 API: a class of owners with a running VM, a stopped
one, an idle address, an orphan snapshot, an old and a shared image, beside resources the collection did
not make. Every line of the report is checked against what DescribeInstances, DescribeVolumes,
DescribeSnapshots, DescribeAddresses and DescribeImages say, priced here from the bundled table, and
its totals against the sum of its lines."""

from __future__ import annotations

import csv
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.ec2.models import ec2_backends
from owner_cloud import REGION, add_image, allocate, owner_tags, run_instance, tag_list, wait_for_state

from plugins.module_utils import prices
from tests.modules.conftest import ACCOUNT_B
from tests.modules.test_share_playbook import run_share

ACCOUNT_A = "123456789012"
MANAGED = {"ManagedBy": "labcloud.jupyter"}
TOLERANCE = 1e-5


def run_report(endpoint: str, *extra: str) -> subprocess.CompletedProcess:
    """Run playbooks/report.yml as a user does (with the collection's summary)."""
    return run_share(endpoint, *extra, playbook="report.yml")


def tags_of(owner: str, project: str) -> dict[str, str]:
    return {**owner_tags(owner), "Project": project}


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def managed(resource: dict[str, Any]) -> bool:
    return tags(resource).get("ManagedBy") == "labcloud.jupyter"


@pytest.fixture
def vpc_id(aws) -> str:
    (vpc,) = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpc["VpcId"]


def backdate(instance_id: str, launched: timedelta, stopped: timedelta | None = None) -> None:
    """Make an instance look launched (and stopped) that long ago, in moto's in-process backend."""
    instance = ec2_backends[ACCOUNT_A][REGION].get_instance(instance_id)
    now = datetime.now(tz=UTC).replace(tzinfo=None, microsecond=0)
    instance.launch_time = now - launched
    if stopped is not None:
        instance._reason = f"User initiated ({now - stopped:%Y-%m-%d %H:%M:%S} GMT)"


def make_class(aws) -> dict[str, str]:
    """Three owners of the collection and some resources it did not make; return the IDs that matter."""
    made: dict[str, str] = {}
    # ada: a running VM with its Elastic IP and a data volume; an image made 100 days ago, shared.
    made["ada"] = run_instance(aws, tags_of("ada", "ocean"))
    allocate(aws, {"Name": "jupyter-ada", "Owner": "ada", **MANAGED, "Project": "ocean"}, made["ada"])
    zone = aws.ec2.describe_instances(InstanceIds=[made["ada"]])["Reservations"][0]["Instances"][0]["Placement"]
    data = aws.ec2.create_volume(
        AvailabilityZone=zone["AvailabilityZone"], Size=20, VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list(tags_of("ada", "ocean"))}],
    )["VolumeId"]  # fmt: skip
    aws.ec2.attach_volume(VolumeId=data, InstanceId=made["ada"], Device="/dev/sdf")
    backdate(made["ada"], timedelta(hours=5, minutes=30))
    made["ada_image"] = add_image(
        ACCOUNT_A, "jupyter-ada-ocean-v1", root_size=30, created=datetime.now(tz=UTC) - timedelta(days=100),
        tags={**tags_of("ada", "ocean"), "Version": "v1"}, public=False,
    )  # fmt: skip
    aws.ec2.modify_image_attribute(
        ImageId=made["ada_image"], LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]}, Attribute="launchPermission"
    )
    snapshot = aws.ec2.describe_images(ImageIds=[made["ada_image"]])["Images"][0]["BlockDeviceMappings"][0]
    made["ada_image_snapshot"] = snapshot["Ebs"]["SnapshotId"]
    aws.ec2.create_tags(Resources=[made["ada_image_snapshot"]], Tags=tag_list(tags_of("ada", "ocean")))

    # grace: a stopped VM whose Elastic IP still bills.
    made["grace"] = run_instance(aws, tags_of("grace", "climate"))
    allocate(aws, {"Name": "jupyter-grace", "Owner": "grace", **MANAGED}, made["grace"])
    aws.ec2.stop_instances(InstanceIds=[made["grace"]])
    wait_for_state(aws, made["grace"], "stopped")
    backdate(made["grace"], timedelta(days=10), stopped=timedelta(days=2))

    # hedy: no VM, an idle address, an orphan snapshot, an old image.
    made["hedy_address"] = allocate(aws, {"Name": "jupyter-hedy", "Owner": "hedy", **MANAGED})["AllocationId"]
    volume = aws.ec2.create_volume(AvailabilityZone=zone["AvailabilityZone"], Size=12, VolumeType="gp3")["VolumeId"]
    made["hedy_snapshot"] = aws.ec2.create_snapshot(
        VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(tags_of("hedy", "ocean"))}]
    )["SnapshotId"]
    aws.ec2.delete_volume(VolumeId=volume)
    made["hedy_image"] = add_image(
        ACCOUNT_A, "jupyter-hedy-ocean-v0", root_size=50, created=datetime.now(tz=UTC) - timedelta(days=400),
        tags={**tags_of("hedy", "ocean"), "Version": "v0"}, public=False,
    )  # fmt: skip

    # Not the collection's: an instance and an address with lookalike tags, an untagged volume and image.
    made["foreign"] = run_instance(aws, {"Name": "jupyter-ada", "Owner": "ada"})
    made["foreign_address"] = allocate(aws, {"Name": "jupyter-ada", "Owner": "ada"})["AllocationId"]
    made["foreign_volume"] = aws.ec2.create_volume(AvailabilityZone=zone["AvailabilityZone"], Size=99)["VolumeId"]
    made["foreign_image"] = add_image(ACCOUNT_A, "someone-elses", root_size=77, public=False)
    return made


def expected_rows(aws, now: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """The rows the report must have, computed here from the describe calls and the bundled prices."""
    ec2 = aws.ec2
    instances = [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if managed(i) and i["State"]["Name"] != "terminated"
    ]
    addresses = ec2.describe_addresses()["Addresses"]
    eips = {a["PublicIp"] for a in addresses}
    images = [i for i in ec2.describe_images(Owners=["self"])["Images"] if managed(i)]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for i in instances:
        t = tags(i)
        hourly = prices.INSTANCE_HOURLY[i["InstanceType"]]
        running = i["State"]["Name"] == "running"
        if running:
            end = now
        else:
            stamp = i["StateTransitionReason"].split("(")[1].split(")")[0].rsplit(" ", 1)[0]
            end = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        hours = (end - i["LaunchTime"]).total_seconds() / 3600
        rows[("instance", i["InstanceId"])] = {
            "owner": t["Owner"], "project": t.get("Project", "-"), "state": i["State"]["Name"],
            "type": i["InstanceType"], "hours": hours, "cost_so_far_usd": hours * hourly,
            "per_hour_usd": hourly if running else 0.0, "per_month_usd": hourly * 730 if running else 0.0,
        }  # fmt: skip
        if i.get("PublicIpAddress") and i["PublicIpAddress"] not in eips:
            rows[("public-ipv4", i["PublicIpAddress"])] = {
                "owner": t["Owner"], "project": t.get("Project", "-"), "per_hour_usd": 0.005, "per_month_usd": 3.65,
            }  # fmt: skip
        for volume in ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [i["InstanceId"]]}])[
            "Volumes"
        ]:
            rate = prices.EBS_GB_MONTH[volume["VolumeType"]]
            rows[("volume", volume["VolumeId"])] = {
                "owner": t["Owner"], "project": t.get("Project", "-"), "gib": volume["Size"],
                "state": f"attached to {i['InstanceId']}", "per_month_usd": volume["Size"] * rate,
            }  # fmt: skip
    states = {i["InstanceId"]: i["State"]["Name"] for i in instances}
    for a in addresses:
        if not managed(a):
            continue
        state = f"associated with {a['InstanceId']} ({states[a['InstanceId']]})" if a.get("InstanceId") else "idle"
        rows[("elastic-ip", a["AllocationId"])] = {
            "owner": tags(a)["Owner"], "project": tags(a).get("Project", "-"), "state": state,
            "per_hour_usd": 0.005, "per_month_usd": 3.65,
        }  # fmt: skip
    backing = {}
    for image in images:
        gib = sum(m["Ebs"]["VolumeSize"] for m in image["BlockDeviceMappings"])
        permissions = ec2.describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission")
        created = datetime.fromisoformat(image["CreationDate"].replace("Z", "+00:00"))
        rows[("image", image["ImageId"])] = {
            "owner": tags(image)["Owner"], "project": tags(image)["Project"], "gib": gib,
            "age_days": (now - created).total_seconds() / 86400, "per_month_usd": gib * 0.05,
            "shared_with": "; ".join(p["UserId"] for p in permissions["LaunchPermissions"]),
        }  # fmt: skip
        backing.update({m["Ebs"]["SnapshotId"]: image["ImageId"] for m in image["BlockDeviceMappings"]})
    for snapshot in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
        if managed(snapshot):
            rows[("snapshot", snapshot["SnapshotId"])] = {
                "owner": tags(snapshot)["Owner"], "project": tags(snapshot)["Project"], "gib": snapshot["VolumeSize"],
                "per_month_usd": 0.0 if snapshot["SnapshotId"] in backing else snapshot["VolumeSize"] * 0.05,
            }  # fmt: skip
    return rows


def number(text: str) -> float | None:
    return None if text == "" else float(text)


def test_the_report_matches_the_api_line_by_line_and_adds_up(endpoint, aws, tmp_path):
    made = make_class(aws)
    result = run_report(endpoint, "-e", f"report_dir={tmp_path}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    table = list(csv.DictReader((tmp_path / "cost-us-east-1.csv").open()))
    markdown = (tmp_path / "cost-us-east-1.md").read_text()
    generated = datetime.fromisoformat(markdown.splitlines()[0].rsplit(", ", 1)[1].replace(" UTC", "+00:00"))
    rows = {(r["kind"], r["id"]): r for r in table if r["kind"] != "total"}
    wanted = expected_rows(aws, generated)

    assert set(rows) == set(wanted), "exactly the collection's resources, each once"
    for key, expected in wanted.items():
        line = rows[key]
        for field, value in expected.items():
            if isinstance(value, float):
                assert number(line[field]) == pytest.approx(value, abs=TOLERANCE), (key, field, line)
            else:
                assert line[field] == str(value), (key, field, line)
    for foreign in ("foreign", "foreign_address", "foreign_volume", "foreign_image"):
        assert made[foreign] not in (tmp_path / "cost-us-east-1.csv").read_text()
        assert made[foreign] not in markdown

    # What the scenario is about, as the report says it.
    assert rows[("elastic-ip", made["hedy_address"])]["state"] == "idle"
    assert rows[("instance", made["grace"])]["state"] == "stopped"
    assert rows[("instance", made["grace"])]["per_hour_usd"] == "0.0"
    assert number(rows[("instance", made["grace"])]["hours"]) == pytest.approx(8 * 24, abs=0.01), "until it stopped"
    assert number(rows[("instance", made["ada"])]["hours"]) == pytest.approx(5.5, abs=0.05)
    assert number(rows[("instance", made["ada"])]["cost_so_far_usd"]) == pytest.approx(5.5 * 0.0104, abs=0.001)
    grace_address = [r for r in rows.values() if r["kind"] == "elastic-ip" and r["owner"] == "grace"]
    assert [r["per_hour_usd"] for r in grace_address] == ["0.005"], "a stopped VM's address still bills"
    assert rows[("snapshot", made["hedy_snapshot"])]["notes"] == "backs no image"
    assert number(rows[("snapshot", made["hedy_snapshot"])]["per_month_usd"]) == pytest.approx(0.6)
    assert rows[("snapshot", made["ada_image_snapshot"])]["notes"] == f"backs {made['ada_image']}, billed on its row"
    assert number(rows[("image", made["hedy_image"])]["age_days"]) == pytest.approx(400, abs=0.01)
    assert rows[("image", made["ada_image"])]["shared_with"] == ACCOUNT_B
    assert "EC2 status checks ok" in rows[("instance", made["ada"])]["health"]
    assert "tunnel_state=status" in rows[("instance", made["ada"])]["health"]

    # Totals: per owner and project the sum of its lines, the class the sum of everything.
    totals = {(r["owner"], r["project"]): r for r in table if r["kind"] == "total"}
    groups = {(r["owner"], r["project"]) for r in rows.values()}
    assert set(totals) == groups | {("all", "all")}
    for field in ("cost_so_far_usd", "per_hour_usd", "per_month_usd"):
        for group in groups:
            lines = [number(r[field]) or 0.0 for r in rows.values() if (r["owner"], r["project"]) == group]
            assert number(totals[group][field]) == pytest.approx(sum(lines), abs=TOLERANCE)
        everything = sum(number(r[field]) or 0.0 for r in rows.values())
        assert number(totals[("all", "all")][field]) == pytest.approx(everything, abs=TOLERANCE)
    expected_month = sum(r["per_month_usd"] for r in wanted.values())
    assert number(totals[("all", "all")]["per_month_usd"]) == pytest.approx(expected_month, abs=TOLERANCE)

    # The Markdown has a table per owner and project, the class total, and says which prices it used.
    for owner, project in groups:
        assert f"## {owner} / {project}" in markdown
    assert "## Class total" in markdown and f"{expected_month:.2f}" in markdown
    assert "Prices: bundled table of 2025-06" in markdown and "us-east-1, us-east-2, us-west-2" in markdown
    assert f"{tmp_path}/cost-us-east-1.md" in result.stdout and "class total" in result.stdout


def test_the_report_of_one_owner_has_only_that_owner(endpoint, aws, tmp_path):
    made = make_class(aws)
    result = run_report(endpoint, "-e", "owner=grace", "-e", f"report_dir={tmp_path}", "-e", "prices=bundled")
    assert result.returncode == 0, result.stdout[-3000:]
    table = list(csv.DictReader((tmp_path / "cost-us-east-1.csv").open()))
    assert {r["owner"] for r in table} == {"grace", "all"}
    assert made["grace"] in {r["id"] for r in table}


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["-e", "owner=Grace"], "Invalid owner(s)"), (["-e", "prices=cheap"], "prices must be auto")],
)
def test_bad_input_stops_before_any_call(fault_proxy, extra, message, tmp_path):
    result = run_report(fault_proxy.endpoint, *extra, "-e", f"report_dir={tmp_path}")
    assert result.returncode != 0 and message in result.stdout, result.stdout[-3000:]
    assert fault_proxy.calls == []
