"""The daily stop of a class on the local cloud: playbooks/schedule.yml makes a schedule due in a
minute or two, and the local cloud's Scheduler really stops the VM it names, not the opted-out one."""

from __future__ import annotations

import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

from ansible_collections.labcloud.jupyter.plugins.module_utils import identity
from botocore.exceptions import ClientError

from tests.integration.conftest import Playbooks

TIMEZONE = "Europe/Berlin"
OPT_OUT = identity.DAILY_STOP_OPT_OUT_TAG


def instance_of(ec2, owner: str) -> dict:
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:Owner", "Values": [owner]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 1, instances
    return instances[0]


def exists(call, **params) -> bool:
    try:
        call(**params)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ResourceNotFoundException", "NoSuchEntity"):
            return False
        raise
    return True


def test_a_class_daily_stop_stops_the_vms_at_its_time_and_skips_the_opted_out(playbooks: Playbooks, tmp_path) -> None:
    cloud = playbooks.cloud
    ec2, iam, scheduler = cloud.client(), cloud.client("iam"), cloud.client("scheduler")
    stopped_owner, kept_owner = playbooks.owner("ds"), playbooks.owner("ds")
    roster = tmp_path / "roster.yml"
    roster.write_text(f"---\nroster:\n  - {stopped_owner}\n  - owner: {kept_owner}\n")
    playbooks.ok("launch.yml", "-e", f"@{roster}")
    try:
        stopped = instance_of(ec2, stopped_owner)["InstanceId"]
        kept = instance_of(ec2, kept_owner)["InstanceId"]
        ec2.create_tags(Resources=[kept], Tags=[{"Key": OPT_OUT, "Value": "exam week"}])
        names = {owner: f"jupyter-{owner}-daily-stop" for owner in (stopped_owner, kept_owner)}

        # Bad input is refused before any call: nothing is made.
        for bad in (
            ["-e", "time=7pm", "-e", f"timezone={TIMEZONE}"],
            ["-e", "time=19:00", "-e", "timezone=Berlin/Europe"],
        ):
            refused = playbooks.run("schedule.yml", "-e", f"@{roster}", *bad)
            assert refused.returncode != 0 and ("time=HH:MM" in refused.output or "Invalid timezone" in refused.output)
        assert not any(exists(scheduler.get_schedule, Name=name) for name in names.values())
        assert not any(exists(iam.get_role, RoleName=name) for name in names.values())

        # Due at the start of a minute at least 75 s away (two runs of the playbook come first).
        now = dt.datetime.now(ZoneInfo(TIMEZONE))
        due = (now + dt.timedelta(seconds=135)).replace(second=0, microsecond=0)
        args = ("-e", f"@{roster}", "-e", f"time={due:%H:%M}", "-e", f"timezone={TIMEZONE}")
        predicted = playbooks.ok("schedule.yml", *args, check=True)
        assert predicted.changed == 1 and not exists(scheduler.get_schedule, Name=names[stopped_owner])
        made = playbooks.ok("schedule.yml", *args)
        assert made.changed == 1
        assert f"{stopped_owner}: {names[stopped_owner]} stops {stopped} at" in made.output
        assert f"{kept_owner}: no daily stop (no instance to stop; skips {kept}, tagged {OPT_OUT})" in made.output
        schedule = scheduler.get_schedule(Name=names[stopped_owner])
        assert json.loads(schedule["Target"]["Input"]) == {"InstanceIds": [stopped]}
        assert schedule["ScheduleExpressionTimezone"] == TIMEZONE
        assert not exists(scheduler.get_schedule, Name=names[kept_owner])
        assert playbooks.ok("schedule.yml", *args).changed == 0
        assert dt.datetime.now(ZoneInfo(TIMEZONE)) < due, "the runs took too long for the chosen time"

        # Nothing happens before the time; within half a minute after it, the VM stops.
        while dt.datetime.now(ZoneInfo(TIMEZONE)) < due - dt.timedelta(seconds=3):
            assert (
                ec2.describe_instances(InstanceIds=[stopped])["Reservations"][0]["Instances"][0]["State"]["Name"]
                == "running"
            )
            time.sleep(1)
        cloud.wait_state(
            ec2, stopped, "stopped", timeout=(due - dt.datetime.now(ZoneInfo(TIMEZONE))).total_seconds() + 90
        )
        assert dt.datetime.now(ZoneInfo(TIMEZONE)) >= due
        assert instance_of(ec2, kept_owner)["State"]["Name"] == "running"
        rows = {row["instance_id"]: row["machine"] for row in cloud.status()["instances"]}
        assert rows[stopped] == "off" and rows[kept] == "running"
        assert playbooks.ok("schedule.yml", *args).changed == 0

        # Removal leaves no schedule and no role; again, nothing changes.
        assert playbooks.ok("schedule.yml", "-e", f"@{roster}", "-e", "state=absent").changed == 1
        assert not any(exists(scheduler.get_schedule, Name=name) for name in names.values())
        assert not any(exists(iam.get_role, RoleName=name) for name in names.values())
        assert playbooks.ok("schedule.yml", "-e", f"@{roster}", "-e", "state=absent").changed == 0
    finally:
        playbooks.run("schedule.yml", "-e", f"@{roster}", "-e", "state=absent")
