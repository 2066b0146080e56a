"""EventBridge Scheduler on the local cloud: a schedule's target runs as its role and really stops
a machine.

The first tests drive the scheduler's runner from this process, against the running local cloud's
API (its IAM, STS and EC2) with the administrator's keys, as the local cloud's own runner thread
does: they need no restart of the local cloud to test a change of the runner. The last test gives
the schedule to the local cloud's Scheduler API and waits for the local cloud itself to run it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError

from localcloud.api import scheduler
from tests.localcloud_harness import Cloud, unique

TARGET = "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
ACCOUNT = "123456789012"


def trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


@pytest.fixture
def role(cloud: Cloud) -> Any:
    """Makes roles trusting a service; deletes them at the end."""
    iam = cloud.client("iam")
    made: list[str] = []

    def make(service: str = "scheduler.amazonaws.com") -> str:
        name = unique("stop-role")
        made.append(name)
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(service))["Role"]["Arn"]

    yield make
    for name in made:
        iam.delete_role(RoleName=name)


def role_policy_of(cloud: Cloud) -> Any:
    """The trust policy of a role, read through the local cloud's IAM (None when there is none)."""
    iam = cloud.client("iam")

    def read(role_arn: str) -> Any:
        try:
            return iam.get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]["AssumeRolePolicyDocument"]
        except ClientError:
            return None

    return read


def runner_for(cloud: Cloud, schedule: dict[str, Any], clock: list[dt.datetime]) -> scheduler.Runner:
    invoker = scheduler.Invoker(
        cloud.env["AWS_ENDPOINT_URL"],
        cloud.env["AWS_ACCESS_KEY_ID"],
        cloud.env["AWS_SECRET_ACCESS_KEY"],
        role_policy_of(cloud),
    )
    return scheduler.Runner(invoker, lambda: iter([(schedule, lambda: None)]), clock=lambda: clock[0])


def daily_stop(role_arn: str, instance_ids: list[str], timezone: str) -> tuple[dict[str, Any], dt.datetime]:
    """A schedule as GetSchedule describes it: every day, two minutes from now in the time zone."""
    now = dt.datetime.now(ZoneInfo(timezone))
    due = (now + dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
    name = unique("stop")
    schedule = {
        "Arn": f"arn:aws:scheduler:{cloud_region()}:{ACCOUNT}:schedule/default/{name}",
        "Name": name,
        "ScheduleExpression": f"cron({due.minute} {due.hour} * * ? *)",
        "ScheduleExpressionTimezone": timezone,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "CreationDate": now.timestamp(),
        "Target": {"Arn": TARGET, "RoleArn": role_arn, "Input": json.dumps({"InstanceIds": instance_ids})},
    }
    return schedule, due.astimezone(dt.UTC)


def cloud_region() -> str:
    from localcloud import config

    return config.load().region


def test_a_due_schedule_stops_the_machines_it_names_as_its_role(cloud: Cloud, role: Any) -> None:
    ec2 = cloud.client()
    named = cloud.launch(ec2)
    spared = cloud.launch(ec2)
    schedule, due = daily_stop(role(), [named["InstanceId"]], "America/Los_Angeles")
    clock = [due - dt.timedelta(seconds=20)]
    runner = runner_for(cloud, schedule, clock)

    assert runner.look() == []
    clock[0] = due + dt.timedelta(seconds=1)
    done = runner.look()
    assert [record["outcome"] for record in done] == ["invoked"], done
    cloud.wait_state(ec2, named["InstanceId"], "stopped", timeout=120)
    rows = {row["instance_id"]: row for row in cloud.status()["instances"]}
    assert rows[named["InstanceId"]]["machine"] == "off"
    assert rows[spared["InstanceId"]]["machine"] == "running"
    assert cloud.describe(ec2, spared["InstanceId"])["State"]["Name"] == "running"


@pytest.mark.parametrize("trusted", ["ec2.amazonaws.com", None])
def test_a_role_that_does_not_trust_the_scheduler_stops_nothing(cloud: Cloud, role: Any, trusted: str | None) -> None:
    ec2 = cloud.client()
    instance = cloud.launch(ec2)
    role_arn = role(trusted) if trusted else f"arn:aws:iam::{ACCOUNT}:role/{unique('missing')}"
    schedule, due = daily_stop(role_arn, [instance["InstanceId"]], "Europe/Berlin")
    clock = [due - dt.timedelta(seconds=20)]
    runner = runner_for(cloud, schedule, clock)
    runner.look()
    clock[0] = due + dt.timedelta(seconds=1)
    done = runner.look()
    assert [record["outcome"] for record in done] == ["failed"], done
    assert ("trust policy does not allow" if trusted else "does not exist") in done[0]["error"]
    time.sleep(2)
    assert cloud.describe(ec2, instance["InstanceId"])["State"]["Name"] == "running"


def test_the_local_cloud_runs_a_schedule_given_to_its_api(cloud: Cloud, role: Any) -> None:
    ec2 = cloud.client()
    scheduler_api = cloud.client("scheduler")
    instance = cloud.launch(ec2)
    schedule, due = daily_stop(role(), [instance["InstanceId"]], "Asia/Tokyo")
    scheduler_api.create_schedule(
        **{key: schedule[key] for key in ("Name", "ScheduleExpression", "ScheduleExpressionTimezone")},
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=schedule["Target"],
    )
    try:
        assert scheduler_api.get_schedule(Name=schedule["Name"])["State"] == "ENABLED"
        assert cloud.describe(ec2, instance["InstanceId"])["State"]["Name"] == "running"
        deadline = time.monotonic() + (due - dt.datetime.now(dt.UTC)).total_seconds() + 30
        while cloud.describe(ec2, instance["InstanceId"])["State"]["Name"] == "running":
            assert time.monotonic() < deadline, f"{instance['InstanceId']} still runs half a minute after {due}"
            time.sleep(0.5)
        assert dt.datetime.now(dt.UTC) >= due
        cloud.wait_state(ec2, instance["InstanceId"], "stopped", timeout=120)
    finally:
        scheduler_api.delete_schedule(Name=schedule["Name"])
