"""labcloud.jupyter.stop_schedule against the local cloud's API layer (moto and its patches, the
Scheduler's among them, in this process over HTTP), and the local cloud's scheduler runner
invoking what the module made: the scheduled instances stop, the opted-out one does not.

Real machines are not involved here (tests/integration/test_daily_stop.py has them).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils import identity

from localcloud.api import scheduler
from tests.modules import conftest as module_tests
from tests.modules.conftest import REGION, Clients, free_port

run_module = module_tests.run_module

OPT_OUT = identity.DAILY_STOP_OPT_OUT_TAG


@pytest.fixture(autouse=True)
def scheduler_patches(moto_endpoint: str) -> None:
    scheduler.install()


def launch_owned(aws: Clients, owner: str, **extra_tags: str) -> str:
    """Launch an instance tagged as the collection tags an owner's VM (plus extra tags)."""
    image_id = aws.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = {"Name": f"jupyter-{owner}", "Owner": owner, "ManagedBy": "labcloud.jupyter", **extra_tags}
    return aws.ec2.run_instances(
        ImageId=image_id,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )["Instances"][0]["InstanceId"]


def state(aws: Clients, instance_id: str) -> str:
    return aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def schedule_names(aws: Clients) -> list[str]:
    return sorted(s["Name"] for s in aws.scheduler.list_schedules()["Schedules"])


def role_names(aws: Clients) -> list[str]:
    return sorted(r["RoleName"] for r in aws.iam.list_roles()["Roles"] if r["RoleName"].endswith("-daily-stop"))


def test_present_check_real_check_real(run_module: Any, aws: Clients) -> None:
    kept = launch_owned(aws, "ada")
    opted_out = launch_owned(aws, "ada", **{OPT_OUT: "yes"})
    launch_owned(aws, "grace")
    args = {"owners": ["ada"], "time": "19:00", "timezone": "Europe/Berlin"}

    predicted = run_module("stop_schedule", args, check=True)
    assert predicted["changed"] is True
    assert predicted["schedules"][0]["instance_ids"] == [kept]
    assert predicted["schedules"][0]["opted_out"] == [opted_out]
    assert schedule_names(aws) == [] and role_names(aws) == []

    made = run_module("stop_schedule", args)
    assert made["changed"] is True and made["opt_out_tag"] == OPT_OUT
    schedule = aws.scheduler.get_schedule(Name="jupyter-ada-daily-stop")
    assert schedule["ScheduleExpression"] == "cron(0 19 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert schedule["State"] == "ENABLED" and schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
    assert json.loads(schedule["Target"]["Input"]) == {"InstanceIds": [kept]}
    role = aws.iam.get_role(RoleName="jupyter-ada-daily-stop")["Role"]
    assert schedule["Target"]["RoleArn"] == role["Arn"]
    trust = role["AssumeRolePolicyDocument"]
    assert scheduler.trust_error(trust, "123456789012", schedule["Arn"]) is None
    assert scheduler.trust_error(trust, "123456789012", schedule["Arn"] + "-other") is not None
    policy = aws.iam.get_role_policy(RoleName="jupyter-ada-daily-stop", PolicyName="stop-instances")
    statement = policy["PolicyDocument"]["Statement"][0]
    assert statement["Action"] == "ec2:StopInstances"
    assert statement["Resource"] == [f"arn:aws:ec2:{REGION}:123456789012:instance/{kept}"]
    assert statement["Condition"]["StringEquals"]["ec2:ResourceTag/Owner"] == "ada"

    assert run_module("stop_schedule", args, check=True)["changed"] is False
    assert run_module("stop_schedule", args)["changed"] is False

    moved = run_module("stop_schedule", dict(args, time="07:30", timezone="America/New_York"))
    assert moved["changed"] is True
    schedule = aws.scheduler.get_schedule(Name="jupyter-ada-daily-stop")
    assert schedule["ScheduleExpression"] == "cron(30 7 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "America/New_York"


def schedule_soon(run_module: Any, owner: str, timezone: str) -> tuple[dt.datetime, scheduler.Runner, list]:
    """Make the owner's daily stop due in two minutes; return that time, a runner and its clock
    (set half a minute before the time)."""
    due = (dt.datetime.now(ZoneInfo(timezone)) + dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
    run_module("stop_schedule", {"owners": [owner], "time": due.strftime("%H:%M"), "timezone": timezone})
    invoker = scheduler.Invoker(run_module.endpoint, "testing", "testing", scheduler.moto_trust_policy)
    clock = [due - dt.timedelta(seconds=30)]
    return due, scheduler.Runner(invoker, scheduler.moto_schedules, clock=lambda: clock[0]), clock


def test_the_runner_stops_what_the_schedule_names_and_skips_the_opted_out(run_module: Any, aws: Clients) -> None:
    kept = launch_owned(aws, "ada")
    opted_out = launch_owned(aws, "ada", **{OPT_OUT: ""})
    other = launch_owned(aws, "grace")
    due, runner, clock = schedule_soon(run_module, "ada", "Asia/Kolkata")

    assert runner.look() == []  # not yet due
    clock[0] = due + dt.timedelta(seconds=1)
    done = runner.look()
    assert [record["outcome"] for record in done] == ["invoked"], done
    assert [i["InstanceId"] for i in done[0]["response"]["StoppingInstances"]] == [kept]
    assert state(aws, kept) in ("stopping", "stopped")
    assert state(aws, opted_out) == "running"
    assert state(aws, other) == "running"
    clock[0] = due + dt.timedelta(seconds=2)
    assert runner.look() == []  # once a day, not at every look


def test_the_runner_refuses_a_role_that_does_not_trust_the_scheduler(run_module: Any, aws: Clients) -> None:
    kept = launch_owned(aws, "ada")
    due, runner, clock = schedule_soon(run_module, "ada", "UTC")
    aws.iam.update_assume_role_policy(
        RoleName="jupyter-ada-daily-stop",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    runner.look()
    clock[0] = due + dt.timedelta(seconds=1)
    done = runner.look()
    assert [record["outcome"] for record in done] == ["failed"], done
    assert "trust policy does not allow scheduler.amazonaws.com" in done[0]["error"]
    assert state(aws, kept) == "running"


def test_absent_removes_the_schedule_and_the_role(run_module: Any, aws: Clients) -> None:
    launch_owned(aws, "ada")
    run_module("stop_schedule", {"owners": ["ada"], "time": "19:00", "timezone": "Europe/Berlin"})
    assert schedule_names(aws) == ["jupyter-ada-daily-stop"]
    predicted = run_module("stop_schedule", {"owners": ["ada"], "state": "absent"}, check=True)
    assert predicted["changed"] is True and schedule_names(aws) == ["jupyter-ada-daily-stop"]
    assert run_module("stop_schedule", {"owners": ["ada"], "state": "absent"})["changed"] is True
    assert schedule_names(aws) == [] and role_names(aws) == []
    assert run_module("stop_schedule", {"owners": ["ada"], "state": "absent"})["changed"] is False


def test_a_role_of_the_same_name_not_made_here_is_left_alone(run_module: Any, aws: Clients) -> None:
    launch_owned(aws, "ada")
    aws.iam.create_role(RoleName="jupyter-ada-daily-stop", AssumeRolePolicyDocument="{}")
    failed = run_module("stop_schedule", {"owners": ["ada"], "state": "absent"})
    assert failed["failed"] and "not this collection's" in failed["msg"]
    assert role_names(aws) == ["jupyter-ada-daily-stop"]


@pytest.mark.parametrize(
    ("time", "timezone", "message"),
    [
        ("7pm", "Europe/Berlin", "Invalid time '7pm'"),
        ("24:00", "Europe/Berlin", "Invalid time '24:00'"),
        ("19:00", "Europe/Berlinn", "Invalid timezone 'Europe/Berlinn'"),
        ("19:00", "CEST+2", "Invalid timezone 'CEST+2'"),
    ],
)
def test_bad_time_or_timezone_is_refused_before_any_call(
    run_module: Any, time: str, timezone: str, message: str
) -> None:
    # Nothing listens at this endpoint: any AWS call would fail with a connection error instead.
    result = run_module(
        "stop_schedule",
        {"owners": ["ada"], "time": time, "timezone": timezone},
        endpoint=f"http://127.0.0.1:{free_port()}",
    )
    assert result["failed"] and message in result["msg"], result["msg"]


def test_the_api_refuses_what_scheduler_refuses(aws: Clients) -> None:
    from botocore.exceptions import ClientError

    target = {"Arn": "arn:aws:scheduler:::aws-sdk:ec2:stopInstances", "RoleArn": "arn:aws:iam::123456789012:role/r"}
    for expression, timezone in (
        ("cron(0 19 * * * *)", "UTC"),
        ("cron(0 19 * * ?)", "UTC"),
        ("cron(0 19 * * ? *)", "Mars/Olympus"),
    ):
        with pytest.raises(ClientError, match="ValidationException"):
            aws.scheduler.create_schedule(
                Name="bad",
                ScheduleExpression=expression,
                ScheduleExpressionTimezone=timezone,
                FlexibleTimeWindow={"Mode": "OFF"},
                Target=target,
            )
    assert aws.scheduler.list_schedules()["Schedules"] == []


def test_signed_requests_of_every_kind_are_accepted_and_forged_ones_refused(endpoint: str) -> None:
    """The local cloud checks every signature: a form POST (EC2, IAM, STS), a REST service's JSON POST,
    GET and DELETE (the Scheduler's: the last two sign an empty body), S3's PUT, GET and DELETE."""
    from botocore.exceptions import ClientError

    from localcloud.api import accounts

    access_key, secret = accounts.admin_keys()
    signed = Clients(module_tests.Credentials(access_key, secret), endpoint)
    forged = Clients(module_tests.Credentials(access_key, secret[::-1]), endpoint)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(accounts._STATE, "signatures", True)
        assert signed.ec2.describe_instances()["Reservations"] == []
        assert signed.sts.get_caller_identity()["Account"] == "123456789012"
        signed.iam.list_roles()
        signed.scheduler.create_schedule(
            Name="signed",
            ScheduleExpression="cron(0 19 * * ? *)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": "arn:aws:scheduler:::aws-sdk:ec2:stopInstances", "RoleArn": "arn:aws:iam::1:role/r"},
        )
        assert signed.scheduler.get_schedule(Name="signed")["Name"] == "signed"
        assert [s["Name"] for s in signed.scheduler.list_schedules(NamePrefix="sig")["Schedules"]] == ["signed"]
        signed.s3.create_bucket(Bucket="signed")
        signed.s3.put_object(Bucket="signed", Key="k", Body=b"data")
        assert signed.s3.get_object(Bucket="signed", Key="k")["Body"].read() == b"data"
        signed.s3.delete_object(Bucket="signed", Key="k")
        signed.s3.delete_bucket(Bucket="signed")
        for call in (
            lambda: forged.scheduler.get_schedule(Name="signed"),
            lambda: forged.scheduler.delete_schedule(Name="signed"),
            lambda: forged.ec2.describe_instances(),
            lambda: forged.sts.get_caller_identity(),
        ):
            with pytest.raises(ClientError, match=r"SignatureDoesNotMatch|AuthFailure"):
                call()
        signed.scheduler.delete_schedule(Name="signed")
        assert signed.scheduler.list_schedules()["Schedules"] == []


def run_playbook(endpoint: str, *extra: str) -> tuple[int, str]:
    """Run playbooks/schedule.yml against the endpoint; returns its exit code and output."""
    import subprocess
    import sys
    from pathlib import Path

    env = module_tests.module_env(endpoint, {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"})
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/schedule.yml", *extra],
        cwd=module_tests.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def changed_in(output: str) -> int:
    import re

    return sum(int(n) for n in re.findall(r"\bchanged=(\d+)", output))


def test_the_playbook_for_a_roster(aws: Clients, endpoint: str, tmp_path: Any) -> None:
    ada = launch_owned(aws, "ada")
    grace = launch_owned(aws, "grace", **{OPT_OUT: "true"})
    roster = tmp_path / "roster.yml"
    roster.write_text("---\nroster:\n  - ada\n  - owner: grace\n")
    args = ("-e", f"@{roster}", "-e", "time=18:45", "-e", "timezone=Europe/Berlin")

    code, output = run_playbook(endpoint, *args)
    assert code == 0, output
    assert f"ada: jupyter-ada-daily-stop stops {ada} at cron(45 18 * * ? *) Europe/Berlin" in output
    assert f"grace: no daily stop (no instance to stop; skips {grace}, tagged DailyStopOptOut)" in output
    assert (
        f"{grace}" in output
        and "run the playbook again after a launch or a change of the DailyStopOptOut tag" in output
    )
    assert schedule_names(aws) == ["jupyter-ada-daily-stop"] and role_names(aws) == ["jupyter-ada-daily-stop"]
    code, output = run_playbook(endpoint, *args)
    assert code == 0 and changed_in(output) == 0, output

    for bad in (("-e", "time=25:00", "-e", "timezone=UTC"), ("-e", "time=18:45", "-e", "timezone=Europe/Nowhere")):
        code, output = run_playbook(f"http://127.0.0.1:{free_port()}", "-e", "owner=ada", *bad)
        assert code != 0 and ("Invalid timezone 'Europe/Nowhere'" in output or "time=HH:MM" in output), output

    code, output = run_playbook(endpoint, "-e", f"@{roster}", "-e", "state=absent")
    assert code == 0 and changed_in(output) == 1, output
    assert schedule_names(aws) == [] and role_names(aws) == []
    code, output = run_playbook(endpoint, "-e", f"@{roster}", "-e", "state=absent")
    assert code == 0 and changed_in(output) == 0, output


def test_the_runner_thread_runs_a_one_time_schedule_given_to_the_api(endpoint: str) -> None:
    """What the local cloud starts: its runner thread reads moto's schedules and roles by itself, and
    signs its calls (sts:AssumeRole with the administrator's keys, then the target's with the role's)."""
    from localcloud.api import accounts

    access_key, secret = accounts.admin_keys()
    aws = Clients(module_tests.Credentials(access_key, secret), endpoint)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(accounts._STATE, "signatures", True)
        run_once_as_the_cloud_does(aws, endpoint, access_key, secret)


def run_once_as_the_cloud_does(aws: Clients, endpoint: str, access_key: str, secret: str) -> None:
    instance = launch_owned(aws, "ada")
    role_arn = aws.iam.create_role(
        RoleName="stopper",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    tz = ZoneInfo("Australia/Adelaide")
    due = dt.datetime.now(tz).replace(microsecond=0) + dt.timedelta(seconds=3)
    aws.scheduler.create_schedule(
        Name="once",
        ScheduleExpression=f"at({due:%Y-%m-%dT%H:%M:%S})",
        ScheduleExpressionTimezone="Australia/Adelaide",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": "arn:aws:scheduler:::aws-sdk:ec2:stopInstances",
            "RoleArn": role_arn,
            "Input": json.dumps({"InstanceIds": [instance]}),
        },
    )
    runner = scheduler.start(endpoint, access_key, secret)
    try:
        deadline = time.monotonic() + 15
        while state(aws, instance) == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert dt.datetime.now(tz) >= due
        assert state(aws, instance) in ("stopping", "stopped")
        assert [record["outcome"] for record in runner.history] == ["invoked"]
        assert schedule_names(aws) == []  # ActionAfterCompletion DELETE
    finally:
        runner.stop()
