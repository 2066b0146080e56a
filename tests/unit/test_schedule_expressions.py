"""When the local cloud's scheduler fires a schedule: at(), rate() and cron() in time zones, the
day-of-week field, daylight-saving changes, what Scheduler refuses, and the runner's looks."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from localcloud.api import scheduler
from localcloud.api.schedule_expressions import ExpressionError, check, next_time

UTC = dt.UTC


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected"),
    [
        # 19:00 in Berlin is 18:00 UTC in winter (CET) and 17:00 UTC in summer (CEST).
        ("cron(0 19 * * ? *)", "Europe/Berlin", utc(2026, 1, 10, 12), utc(2026, 1, 10, 18)),
        ("cron(0 19 * * ? *)", "Europe/Berlin", utc(2026, 7, 10, 12), utc(2026, 7, 10, 17)),
        ("cron(0 19 * * ? *)", "Europe/Berlin", utc(2026, 7, 10, 17), utc(2026, 7, 11, 17)),
        # Already 19:30 in Kolkata (UTC+5:30): tomorrow.
        ("cron(0 19 * * ? *)", "Asia/Kolkata", utc(2026, 1, 10, 14), utc(2026, 1, 11, 13, 30)),
        # The local date differs from the UTC date: Monday 08:00 in Auckland is Sunday 19:00 UTC.
        ("cron(0 8 ? * MON *)", "Pacific/Auckland", utc(2026, 1, 10), utc(2026, 1, 11, 19)),
        # Weekdays by number (1 = Sunday) and by name, ranges and lists.
        ("cron(0 9 ? * 2-6 *)", "UTC", utc(2026, 1, 10, 12), utc(2026, 1, 12, 9)),  # Sat -> Mon
        ("cron(0 9 ? * MON-FRI *)", "UTC", utc(2026, 1, 9, 12), utc(2026, 1, 12, 9)),  # Fri after 9 -> Mon
        ("cron(0 9 ? * 1,7 *)", "UTC", utc(2026, 1, 7), utc(2026, 1, 10, 9)),  # Wed -> Sat
        ("cron(0 9 ? * SUN *)", "UTC", utc(2026, 1, 10), utc(2026, 1, 11, 9)),
        # Last Friday (6L), the second Tuesday (3#2), the last day (L), the weekday nearest the 15th.
        ("cron(0 12 ? * 6L *)", "UTC", utc(2026, 1, 1), utc(2026, 1, 30, 12)),
        ("cron(0 12 ? * 3#2 *)", "UTC", utc(2026, 1, 1), utc(2026, 1, 13, 12)),
        ("cron(0 12 L * ? *)", "UTC", utc(2026, 2, 1), utc(2026, 2, 28, 12)),
        ("cron(0 12 15W * ? *)", "UTC", utc(2026, 2, 1), utc(2026, 2, 16, 12)),  # the 15th is a Sunday
        # Steps, months by name, a year.
        ("cron(*/15 * * * ? *)", "UTC", utc(2026, 1, 1, 10, 7), utc(2026, 1, 1, 10, 15)),
        ("cron(0 0 1 JAN,JUL ? 2027)", "UTC", utc(2026, 3, 1), utc(2027, 1, 1)),
        # 02:30 does not exist in Berlin on 29 March 2026: that day is skipped.
        ("cron(30 2 * * ? *)", "Europe/Berlin", utc(2026, 3, 28, 12), utc(2026, 3, 30, 0, 30)),
        # 02:30 happens twice on 25 October 2026: it fires at the first (CEST, 00:30 UTC) only.
        ("cron(30 2 * * ? *)", "Europe/Berlin", utc(2026, 10, 24, 12), utc(2026, 10, 25, 0, 30)),
        ("cron(30 2 * * ? *)", "Europe/Berlin", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),
        # at() in its time zone, once.
        ("at(2026-12-02T19:00:00)", "Europe/Berlin", utc(2026, 12, 2), utc(2026, 12, 2, 18)),
        ("at(2026-12-02T19:00:00)", "Europe/Berlin", utc(2026, 12, 2, 18), None),
        # A year that has passed never comes.
        ("cron(0 0 1 1 ? 2020)", "UTC", utc(2026, 1, 1), None),
    ],
)
def test_next_time(expression: str, timezone: str, after: dt.datetime, expected: dt.datetime | None) -> None:
    assert next_time(expression, timezone, after) == expected


def test_rate_counts_from_its_start() -> None:
    start = utc(2026, 1, 1, 10, 0, 20)
    assert next_time("rate(5 minutes)", None, utc(2026, 1, 1, 10, 12), start) == utc(2026, 1, 1, 10, 15, 20)
    assert next_time("rate(1 hour)", "Europe/Berlin", start, start) == utc(2026, 1, 1, 11, 0, 20)
    assert next_time("rate(2 days)", None, utc(2026, 1, 2), start) == utc(2026, 1, 3, 10, 0, 20)


@pytest.mark.parametrize(
    ("expression", "timezone", "why"),
    [
        ("cron(0 19 * * * *)", "UTC", "exactly one of day-of-month and day-of-week"),
        ("cron(0 19 ? * ? *)", "UTC", "exactly one of day-of-month and day-of-week"),
        ("cron(0 19 * * ?)", "UTC", "six"),
        ("cron(60 19 * * ? *)", "UTC", "outside 0-59"),
        ("cron(0 24 * * ? *)", "UTC", "outside 0-23"),
        ("cron(0 19 ? * 8 *)", "UTC", "outside 1-7"),
        ("cron(0 19 ? * FUN *)", "UTC", "not a value"),
        ("cron(0 19 ? * 2#6 *)", "UTC", "outside 1-5"),
        ("cron(0 19 * * ? *)", "Europe/Berlinn", "time zone"),
        ("cron(0 19 * * ? *)", "../etc/passwd", "time zone"),
        ("rate(1 minutes)", "UTC", "singular"),
        ("rate(5 minute)", "UTC", "singular"),
        ("rate(0 minutes)", "UTC", "rate(value unit)"),
        ("rate(5 weeks)", "UTC", "rate(value unit)"),
        ("at(2026-12-02 19:00)", "UTC", "at(yyyy-mm-ddThh:mm:ss)"),
        ("every day at 7", "UTC", "at(...), rate(...) or cron(...)"),
    ],
)
def test_what_scheduler_refuses(expression: str, timezone: str, why: str) -> None:
    with pytest.raises(ExpressionError, match=why.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        check(expression, timezone)


class Recorder:
    """An invoker that records what it is asked to invoke."""

    def __init__(self) -> None:
        self.invoked: list[str] = []

    def invoke(self, schedule: dict[str, Any]) -> dict[str, Any]:
        self.invoked.append(schedule["Name"])
        return {"StoppingInstances": []}


def schedule(name: str, expression: str, timezone: str = "UTC", **more: Any) -> dict[str, Any]:
    return {
        "Arn": f"arn:aws:scheduler:us-west-2:123456789012:schedule/default/{name}",
        "Name": name,
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": timezone,
        "State": "ENABLED",
        "Target": {"Arn": "arn:aws:scheduler:::aws-sdk:ec2:stopInstances", "Input": "{}"},
        "CreationDate": utc(2026, 1, 1).timestamp(),
        **more,
    }


def test_a_runner_invokes_each_due_schedule_once_and_only_enabled_ones() -> None:
    deleted: list[str] = []
    schedules = [
        schedule("daily", "cron(0 19 * * ? *)", "Europe/Berlin"),
        schedule("disabled", "cron(0 19 * * ? *)", "Europe/Berlin", State="DISABLED"),
        schedule("later", "cron(0 20 * * ? *)", "Europe/Berlin"),
        schedule("once", "at(2026-01-10T19:00:00)", "Europe/Berlin", ActionAfterCompletion="DELETE"),
        schedule("ended", "cron(0 19 * * ? *)", "Europe/Berlin", EndDate=utc(2026, 1, 9).timestamp()),
        schedule("not-started", "cron(0 19 * * ? *)", "Europe/Berlin", StartDate=utc(2026, 1, 11).timestamp()),
    ]
    recorder = Recorder()
    clock = [utc(2026, 1, 10, 17, 59, 30)]
    runner = scheduler.Runner(
        recorder,  # type: ignore[arg-type]
        lambda: iter([(s, lambda s=s: deleted.append(s["Name"])) for s in schedules]),
        clock=lambda: clock[0],
    )
    assert runner.look() == [] and recorder.invoked == []
    clock[0] = utc(2026, 1, 10, 18, 0, 1)
    outcomes = runner.look()
    assert sorted(recorder.invoked) == ["daily", "once"]
    assert [o["outcome"] for o in outcomes] == ["invoked", "invoked"]
    assert deleted == ["once"]
    clock[0] = utc(2026, 1, 10, 18, 0, 2)
    runner.look()
    assert sorted(recorder.invoked) == ["daily", "once"]
    # After a pause the runner catches up only CATCH_UP: "later" (19:00 UTC) is too far back.
    clock[0] = utc(2026, 1, 10, 19, 30)
    runner.look()
    assert sorted(recorder.invoked) == ["daily", "once"]


def test_a_schedule_made_after_its_time_today_waits_for_tomorrow() -> None:
    recorder = Recorder()
    late = schedule("late", "cron(0 19 * * ? *)", "Europe/Berlin", CreationDate=utc(2026, 1, 10, 18, 1).timestamp())
    clock = [utc(2026, 1, 10, 17, 59)]
    runner = scheduler.Runner(recorder, lambda: iter([(late, lambda: None)]), clock=lambda: clock[0])  # type: ignore[arg-type]
    runner.look()
    clock[0] = utc(2026, 1, 10, 18, 2)
    assert runner.look() == [] and recorder.invoked == []


SCHEDULER = {"Service": "scheduler.amazonaws.com"}


def allow(principal: Any, action: Any = "sts:AssumeRole", **condition: Any) -> dict[str, Any]:
    """A trust policy of one Allow statement."""
    statement = {"Effect": "Allow", "Principal": principal, "Action": action}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.mark.parametrize(
    ("trust", "problem"),
    [
        (allow(SCHEDULER), None),
        (allow({"Service": ["ec2.amazonaws.com", "scheduler.amazonaws.com"]}, ["sts:*"]), None),
        (allow({"Service": "ec2.amazonaws.com"}), "does not allow"),
        (allow({"AWS": "arn:aws:iam::123456789012:root"}), "does not allow"),
        (allow(SCHEDULER, "sts:TagSession"), "does not allow"),
        (allow(SCHEDULER, StringEquals={"aws:SourceAccount": "123456789012"}), None),
        (allow(SCHEDULER, StringEquals={"aws:SourceAccount": "210987654321"}), "does not allow"),
        (allow(SCHEDULER, ArnLike={"aws:SourceArn": "arn:aws:scheduler:*:123456789012:schedule/default/*"}), None),
        (allow(SCHEDULER, ArnEquals={"aws:SourceArn": "arn:aws:scheduler:us-west-2:123456789012:schedule/o/s"}),
         "does not allow"),
        (allow(SCHEDULER, Bool={"aws:SecureTransport": "true"}), "does not allow"),
        ({"Statement": [*allow(SCHEDULER)["Statement"], {"Effect": "Deny", "Principal": "*", "Action": "sts:*"}]},
         "denies"),
        (json.dumps(allow(SCHEDULER)), None),
    ],
)  # fmt: skip
def test_trust_policy_as_aws_reads_it(trust: Any, problem: str | None) -> None:
    found = scheduler.trust_error(trust, "123456789012", "arn:aws:scheduler:us-west-2:123456789012:schedule/default/s")
    assert found is None if problem is None else problem in found


def test_universal_target_operations() -> None:
    assert scheduler.UNIVERSAL_TARGET.match("arn:aws:scheduler:::aws-sdk:ec2:stopInstances").groups() == (
        "ec2",
        "stopInstances",
    )
    assert scheduler.operation_name("stopInstances") == "stop_instances"
    assert scheduler.UNIVERSAL_TARGET.match("arn:aws:lambda:us-west-2:123456789012:function:f") is None


def test_an_invoker_refuses_a_missing_role_before_any_call() -> None:
    invoker = scheduler.Invoker("http://127.0.0.1:9", "k", "s", lambda arn: None)
    target = {"Arn": "arn:aws:scheduler:::aws-sdk:ec2:stopInstances", "RoleArn": "arn:aws:iam::1:role/x", "Input": "{}"}
    with pytest.raises(scheduler.InvocationError, match="does not exist"):
        invoker.invoke({"Arn": "arn:aws:scheduler:us-west-2:1:schedule/default/s", "Target": target})
