"""EventBridge Scheduler: moto keeps the schedules; the local cloud also runs them.

moto (5.2) stores schedules but never invokes a target, and takes any expression and time zone.
Here, as on AWS:

- CreateSchedule and UpdateSchedule refuse an expression or ScheduleExpressionTimezone that
  Scheduler refuses (ValidationException), and a target that names no role.
- A runner thread looks at every ENABLED schedule of every account and region once a second
  (TICK_SECONDS) and invokes its target when its time has come (localcloud.api.schedule_expressions
  says when), within StartDate and EndDate; a one-time at() schedule with ActionAfterCompletion
  DELETE is deleted after it ran. A FLEXIBLE window is invoked at its start, which is inside it.
- An invocation assumes the target's role the way Scheduler does: the role must exist and its
  trust policy must let the service principal scheduler.amazonaws.com call sts:AssumeRole
  (conditions on aws:SourceAccount and aws:SourceArn are evaluated; any other condition
  fails); otherwise the invocation fails and is logged. It then calls the universal target
  `arn:aws:scheduler:::aws-sdk:<service>:<apiAction>` (ec2:stopInstances among them) through the
  local cloud's own API with the role's temporary keys, the target's Input JSON as the request.
  The role's permission policies are not evaluated (the local cloud evaluates no IAM policies).
- What each invocation did is logged and kept (the last HISTORY_SIZE), for `localcloud status`.
"""

from __future__ import annotations

import collections
import datetime as dt
import fnmatch
import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from localcloud.api import schedule_expressions as expressions
from localcloud.api.patching import replace

log = logging.getLogger(__name__)

SERVICE_PRINCIPAL = "scheduler.amazonaws.com"
UNIVERSAL_TARGET = re.compile(r"^arn:aws[\w-]*:scheduler:::aws-sdk:([a-z0-9-]+):([a-zA-Z0-9]+)$")
# How often the runner looks at the schedules, and how far back it catches up after a pause.
TICK_SECONDS = 1.0
CATCH_UP = dt.timedelta(minutes=5)
# At most this many invocations per schedule in one look (a rate(1 minute) after a long pause).
MAX_PER_TICK = 5
HISTORY_SIZE = 200


class InvocationError(Exception):
    """Why Scheduler could not invoke a target (logged, as Scheduler reports it in CloudWatch)."""


# ---- validation of requests ------------------------------------------------------------------


def install() -> None:
    from moto.scheduler.models import EventBridgeSchedulerBackend

    if getattr(EventBridgeSchedulerBackend.create_schedule, "localcloud", False):
        return
    for name in ("create_schedule", "update_schedule"):
        replace(EventBridgeSchedulerBackend, name, validating(name))


def validating(name: str) -> Callable[..., Any]:
    """A backend method that checks the expression, time zone and target before moto stores them."""
    from localcloud.api.patching import original

    def method(self: Any, **kwargs: Any) -> Any:
        from moto.scheduler.exceptions import ValidationException

        try:
            expressions.check(kwargs.get("schedule_expression") or "", kwargs.get("schedule_expression_timezone"))
        except expressions.ExpressionError as exc:
            raise ValidationException(str(exc)) from exc
        target = kwargs.get("target") or {}
        if not target.get("Arn") or not target.get("RoleArn"):
            raise ValidationException("Target needs an Arn and a RoleArn")
        return original("EventBridgeSchedulerBackend", name)(self, **kwargs)

    method.localcloud = True  # type: ignore[attr-defined]
    return method


# ---- the role Scheduler assumes ------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """Whether a trust statement's Condition holds for Scheduler's request context."""
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            actual = context.get(key.lower())
            if actual is None:
                return False
            patterns = [str(w) for w in as_list(wanted)]
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in patterns
            elif operator in ("StringLike", "ArnLike"):
                ok = any(fnmatch.fnmatchcase(actual, p) for p in patterns)
            else:
                return False
            if not ok:
                return False
    return True


def statement_matches(statement: dict[str, Any], context: dict[str, str]) -> bool:
    """Whether a trust statement speaks of sts:AssumeRole by scheduler.amazonaws.com in this context."""
    actions = [str(a).lower() for a in as_list(statement.get("Action", []))]
    if not any(fnmatch.fnmatchcase("sts:assumerole", action) for action in actions):
        return False
    principal = statement.get("Principal", {})
    services = as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
    if principal != "*" and SERVICE_PRINCIPAL not in services:
        return False
    return condition_holds(statement.get("Condition") or {}, context)


def trust_error(policy: Any, account: str, schedule_arn: str) -> str | None:
    """Why the role's trust policy does not let Scheduler assume it for this schedule, or None."""
    document = json.loads(policy) if isinstance(policy, str) else policy
    context = {"aws:sourceaccount": account, "aws:sourcearn": schedule_arn}
    statements = as_list((document or {}).get("Statement", []))
    if any(s.get("Effect") == "Deny" and statement_matches(s, context) for s in statements):
        return f"its trust policy denies {SERVICE_PRINCIPAL} sts:AssumeRole"
    if not any(s.get("Effect") == "Allow" and statement_matches(s, context) for s in statements):
        return f"its trust policy does not allow {SERVICE_PRINCIPAL} to call sts:AssumeRole for {schedule_arn}"
    return None


def operation_name(action: str) -> str:
    """The boto3 operation of a universal target's API action (stopInstances -> stop_instances)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


# ---- invoking a target ---------------------------------------------------------------------------


@dataclass
class Invoker:
    """Invokes schedules' targets through the local cloud's API as the roles they name.

    `role_policy(role_arn)` returns the role's trust policy document (None when there is no such
    role): inside the local cloud it reads moto's IAM; a test may read it through the IAM API.
    """

    endpoint: str
    access_key: str
    secret_key: str
    role_policy: Callable[[str], Any]

    def client(self, service: str, region: str, **keys: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=keys.get("access_key", self.access_key),
            aws_secret_access_key=keys.get("secret_key", self.secret_key),
            aws_session_token=keys.get("session_token"),
        )

    def assume(self, role_arn: str, schedule_arn: str, region: str) -> dict[str, str]:
        """Scheduler's sts:AssumeRole on the target's role: refused unless the role trusts Scheduler."""
        account = schedule_arn.split(":")[4]
        policy = self.role_policy(role_arn)
        if policy is None:
            raise InvocationError(f"role {role_arn} does not exist")
        problem = trust_error(policy, account, schedule_arn)
        if problem:
            raise InvocationError(f"Scheduler cannot assume role {role_arn}: {problem}")
        name = schedule_arn.rsplit("/", 1)[-1][:64]
        credentials = self.client("sts", region).assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "session_token": credentials["SessionToken"],
        }

    def invoke(self, schedule: dict[str, Any]) -> Any:
        """Call the schedule's target once; returns the API's answer, InvocationError on failure."""
        target = schedule.get("Target") or {}
        match = UNIVERSAL_TARGET.match(target.get("Arn") or "")
        if not match:
            raise InvocationError(
                f"target {target.get('Arn')!r} is not a universal target (aws-sdk) the local cloud runs"
            )
        service, action = match.groups()
        region = schedule["Arn"].split(":")[3]
        try:
            request = json.loads(target.get("Input") or "{}")
        except ValueError as exc:
            raise InvocationError(f"the target's Input is not JSON: {exc}") from exc
        keys = self.assume(target.get("RoleArn") or "", schedule["Arn"], region)
        client = self.client(service, region, **keys)
        operation = operation_name(action)
        if not hasattr(client, operation):
            raise InvocationError(f"{service} has no API action {action}")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(client, operation)(**request)
        except (BotoCoreError, ClientError) as exc:
            raise InvocationError(f"{service}:{action} failed: {exc}") from exc


# ---- the runner ----------------------------------------------------------------------------------


def timestamp(value: Any) -> dt.datetime | None:
    """A schedule's date (moto keeps epoch seconds or ISO text) as an aware UTC time."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, expressions.UTC)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=expressions.UTC)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(expressions.UTC)


def due_times(schedule: dict[str, Any], since: dt.datetime, now: dt.datetime) -> list[dt.datetime]:
    """The times in (since, now] at which an ENABLED schedule fires (at most MAX_PER_TICK)."""
    if schedule.get("State", "ENABLED") != "ENABLED":
        return []
    start = timestamp(schedule.get("StartDate"))
    end = timestamp(schedule.get("EndDate"))
    anchor = start or timestamp(schedule.get("CreationDate"))
    moment = max(since, start) if start and start > since else since
    found: list[dt.datetime] = []
    for _ in range(MAX_PER_TICK):
        moment = expressions.next_time(
            schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone"), moment, anchor
        )
        if moment is None or moment > now or (end is not None and moment > end):
            break
        found.append(moment)
    return found


@dataclass
class Runner:
    """Looks at the schedules every TICK_SECONDS and invokes those that are due.

    `schedules()` yields (schedule as GetSchedule returns it, delete callable); `clock()` gives
    the time. Both are given so that a test can drive one look with its own.
    """

    invoker: Invoker
    schedules: Callable[[], Iterator[tuple[dict[str, Any], Callable[[], None]]]]
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(expressions.UTC)
    history: collections.deque = field(default_factory=lambda: collections.deque(maxlen=HISTORY_SIZE))
    last_look: dt.datetime | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def look(self) -> list[dict[str, Any]]:
        """Invoke every target due since the last look; returns what this look did."""
        now = self.clock()
        since = self.last_look or now
        since = max(since, now - CATCH_UP)
        self.last_look = now
        done = []
        for schedule, delete in list(self.schedules()):
            created = timestamp(schedule.get("CreationDate"))
            window_start = max(since, created) if created and created > since else since
            try:
                times = due_times(schedule, window_start, now)
            except expressions.ExpressionError as exc:
                log.warning("schedule %s cannot run: %s", schedule.get("Arn"), exc)
                continue
            for moment in times:
                done.append(self.run(schedule, moment))
            if (
                times
                and schedule["ScheduleExpression"].startswith("at(")
                and (schedule.get("ActionAfterCompletion") == "DELETE")
            ):
                delete()
        return done

    def run(self, schedule: dict[str, Any], moment: dt.datetime) -> dict[str, Any]:
        """Invoke one schedule for the time it was due; log and keep the outcome."""
        record = {"schedule": schedule["Arn"], "due": moment.isoformat(), "target": schedule["Target"].get("Arn")}
        try:
            answer = self.invoker.invoke(schedule)
            record["outcome"] = "invoked"
            record["response"] = {k: v for k, v in (answer or {}).items() if k != "ResponseMetadata"}
            log.info("schedule %s (due %s) invoked %s", schedule["Arn"], moment.isoformat(), record["target"])
        except InvocationError as exc:
            record["outcome"] = "failed"
            record["error"] = str(exc)
            log.warning("schedule %s (due %s) failed: %s", schedule["Arn"], moment.isoformat(), exc)
        self.history.append(record)
        return record

    def loop(self) -> None:
        """Look every TICK_SECONDS until stop()."""
        while not self.stopping.wait(TICK_SECONDS):
            try:
                self.look()
            except Exception:
                log.exception("the scheduler's look at the schedules failed")

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.loop, name="localcloud-scheduler", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()


# ---- inside the local cloud: moto's schedules and roles ---------------------------------------------


def moto_schedules() -> Iterator[tuple[dict[str, Any], Callable[[], None]]]:
    """Every schedule moto holds, in every account and region, with a way to delete it."""
    from moto.scheduler.models import scheduler_backends

    for account_backends in list(scheduler_backends.values()):
        for backend in list(account_backends.values()):
            for group in list(backend.schedule_groups.values()):
                for schedule in list(group.schedules.values()):
                    yield schedule.to_dict(), functools.partial(group.schedules.pop, schedule.name, None)


def moto_trust_policy(role_arn: str) -> Any:
    """The trust policy of a role moto's IAM holds, or None when there is no such role."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) < 6:
        return None
    try:
        role = iam_backends[parts[4]]["aws"].get_role_by_arn(role_arn)
    except Exception:
        return None
    return role.assume_role_policy_document


def start(endpoint: str, access_key: str, secret_key: str) -> Runner:
    """Start running the local cloud's schedules (with the administrator's keys for sts:AssumeRole)."""
    runner = Runner(Invoker(endpoint, access_key, secret_key, moto_trust_policy), moto_schedules)
    runner.start()
    return runner
