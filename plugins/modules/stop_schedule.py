#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: stop_schedule
version_added: 0.1.0
short_description: Stop owners' JupyterLab VMs every day at a given time, with EventBridge Scheduler
description:
  - For every owner of O(owners), keeps one EventBridge Scheduler schedule and one IAM role, both named
    C(jupyter-<owner>-daily-stop), that stop the owner's instances every day at O(time) in O(timezone).
  - The schedule's target is Scheduler's universal target C(arn:aws:scheduler:::aws-sdk:ec2:stopInstances),
    its input the IDs of the owner's instances (tagged C(Owner), C(Name) and C(ManagedBy) as the
    collection launches them, not terminated) B(as they are when the module runs), less those carrying
    the opt-out tag key C(DailyStopOptOut) (any value). A VM launched, or an opt-out tag set or removed,
    after the run counts from the next run; the module returns the IDs the schedule stops and those it skips.
  - The role trusts only C(scheduler.amazonaws.com), for this schedule of this account
    (C(aws:SourceAccount) and C(aws:SourceArn)); its one inline policy allows C(ec2:StopInstances) on
    exactly those instances, and only while they carry the owner's C(Owner) and C(ManagedBy) tags.
  - An owner with no instance to stop gets no schedule (an existing one is removed, with its role).
  - O(time) and O(timezone) are checked before any AWS call.
  - This closes a gap in C(amazon.aws), which has no module for EventBridge Scheduler, and none that
    keeps a role and the schedule that uses it together.
options:
  owners:
    description: The owners whose instances are stopped (lower-case letters, digits and hyphens, 2 to 32).
    type: list
    elements: str
    required: true
  state:
    description: V(present) keeps the schedules and roles as asked; V(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  time:
    description: The time of day of the stop, C(HH:MM) on a 24-hour clock (for example V(19:00)).
    type: str
  timezone:
    description:
      - The IANA time zone of O(time) (for example V(Europe/Berlin)); Scheduler follows its daylight-saving changes.
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.check_mode_full
  - labcloud.jupyter.attributes.diff_mode_none
notes:
  - O(time) and O(timezone) are required with O(state=present).
author:
  - labcloud.jupyter developers (@labcloud)
seealso:
  - module: labcloud.jupyter.owner_info
"""

EXAMPLES = r"""
- name: Stop ada's and grace's VMs at 19:00 Berlin time every day
  labcloud.jupyter.stop_schedule:
    owners: [ada, grace]
    time: "19:00"
    timezone: Europe/Berlin

- name: Remove the daily stop of ada's VM, and its role
  labcloud.jupyter.stop_schedule:
    owners: [ada]
    state: absent
"""

RETURN = r"""
opt_out_tag:
  description: The tag key that keeps an instance out of the daily stop.
  returned: always
  type: str
  sample: DailyStopOptOut
schedules:
  description: One entry per owner, in the order of O(owners).
  returned: always
  type: list
  elements: dict
  contains:
    owner:
      description: The owner.
      type: str
      sample: ada
    name:
      description: The name of the schedule and of its role.
      type: str
      sample: jupyter-ada-daily-stop
    present:
      description: Whether the schedule exists after the run (in check mode, would exist).
      type: bool
      sample: true
    changed:
      description: Whether the run changed (in check mode, would change) the owner's schedule or role.
      type: bool
    schedule_arn:
      description: The schedule's ARN, when it is present.
      type: str
      sample: arn:aws:scheduler:us-west-2:123456789012:schedule/default/jupyter-ada-daily-stop
    role_arn:
      description: The role's ARN, when it is present.
      type: str
      sample: arn:aws:iam::123456789012:role/jupyter-ada-daily-stop
    expression:
      description: The schedule's expression and time zone.
      type: str
      sample: cron(0 19 * * ? *) Europe/Berlin
    instance_ids:
      description: The instances the schedule stops.
      type: list
      elements: str
      sample: [i-0123456789abcdef0]
    opted_out:
      description: The owner's instances left out because they carry the opt-out tag.
      type: list
      elements: str
      sample: []
"""

import json
import re

try:
    from zoneinfo import ZoneInfo
except ImportError:  # Python < 3.9: the time zone is then checked by Scheduler only
    ZoneInfo = None

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.labcloud.jupyter.plugins.module_utils import aws
from ansible_collections.labcloud.jupyter.plugins.module_utils import identity

TARGET_ARN = "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
POLICY_NAME = "stop-instances"
TIME_PATTERN = r"^([01][0-9]|2[0-3]):([0-5][0-9])$"
# Instances in these states are not stopped (nor can they be).
GONE_STATES = ("shutting-down", "terminated")


def schedule_name(owner):
    """Return the name of the owner's daily-stop schedule and of its role."""
    return identity.resource_name(owner) + "-daily-stop"


def request_problems(params):
    """Return one message per problem with the request (empty when it can be carried out)."""
    problems = [error for error in (identity.owner_error(owner) for owner in params["owners"] or []) if error]
    if not params["owners"]:
        problems.append("owners must name at least one owner")
    if params["state"] == "present":
        if not re.match(TIME_PATTERN, params["time"] or ""):
            problems.append("Invalid time %r: use HH:MM on a 24-hour clock, for example 19:00" % (params["time"],))
        if not timezone_exists(params["timezone"]):
            problems.append(
                "Invalid timezone %r: use an IANA time zone name, for example Europe/Berlin" % (params["timezone"],)
            )
    return problems


def timezone_exists(name):
    """Return True when name is an IANA time zone (any non-empty name when zoneinfo is missing)."""
    if not name or name != name.strip():
        return False
    if ZoneInfo is None:
        return True
    try:
        ZoneInfo(name)
    except Exception:
        return False
    return True


def cron_expression(time):
    """Return Scheduler's expression for every day at time (HH:MM)."""
    hours, minutes = time.split(":")
    return "cron(%d %d * * ? *)" % (int(minutes), int(hours))


def owner_instances(ec2, owner):
    """Return the IDs of the owner's instances to stop and of those that opted out, both sorted."""
    filters = identity.identity(owner)["instance_filters"]
    reservations = aws.describe_all(
        ec2,
        "describe_instances",
        "Reservations",
        "Could not look up the instances of %s" % owner,
        Filters=[{"Name": key, "Values": [value]} for key, value in filters.items()],
    )
    stop, skip = [], []
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            if instance["State"]["Name"] in GONE_STATES:
                continue
            if identity.DAILY_STOP_OPT_OUT_TAG in identity.tag_dict(instance):
                skip.append(instance["InstanceId"])
            else:
                stop.append(instance["InstanceId"])
    return sorted(stop), sorted(skip)


def trust_policy(account, schedule_arn):
    """Return the role's trust policy: Scheduler, for this schedule of this account only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": SCHEDULER_PRINCIPAL},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnEquals": {"aws:SourceArn": schedule_arn},
                },
            }
        ],
    }


def stop_policy(partition, region, account, owner, instance_ids):
    """Return the role's policy: StopInstances on these instances while they are the owner's."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ec2:StopInstances",
                "Resource": [
                    "arn:%s:ec2:%s:%s:instance/%s" % (partition, region, account, instance_id)
                    for instance_id in instance_ids
                ],
                "Condition": {
                    "StringEquals": {
                        "ec2:ResourceTag/" + identity.OWNER_TAG: owner,
                        "ec2:ResourceTag/" + identity.MANAGED_BY_TAG: identity.MANAGED_BY,
                    }
                },
            }
        ],
    }


def as_document(value):
    """Return a policy document IAM returned (a dict, or URL-encoded JSON text) as a dict."""
    if isinstance(value, str):
        try:
            from urllib.parse import unquote
        except ImportError:  # Python 2 is not supported by amazon.aws; kept for the import check
            from urllib import unquote
        return json.loads(unquote(value))
    return value


def look_up(method, doing, missing_code, **params):
    """Return the answer of a Get* call, or None when AWS says (missing_code) there is no such thing."""
    try:
        return aws.call(method, doing, **params)
    except aws.LabcloudAWSError as e:
        if e.code == missing_code:
            return None
        raise


def get_role(iam, name):
    """Return the role, or None when there is none."""
    answer = look_up(iam.get_role, "Could not look up role %s" % name, "NoSuchEntity", RoleName=name)
    return answer and answer["Role"]


def get_schedule(scheduler, name):
    """Return the schedule as GetSchedule describes it, or None when there is none."""
    return look_up(
        scheduler.get_schedule, "Could not look up schedule %s" % name, "ResourceNotFoundException", Name=name
    )


def role_policy(iam, name):
    """Return the role's inline stop policy, or None."""
    answer = look_up(
        iam.get_role_policy,
        "Could not read the policy of role %s" % name,
        "NoSuchEntity",
        RoleName=name,
        PolicyName=POLICY_NAME,
    )
    return answer and as_document(answer["PolicyDocument"])


def schedule_request(name, expression, timezone, role_arn, instance_ids, owner):
    """Return the CreateSchedule / UpdateSchedule parameters of the owner's schedule."""
    return {
        "Name": name,
        "Description": "labcloud.jupyter: stop %s's JupyterLab VMs every day" % owner,
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": timezone,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": TARGET_ARN,
            "RoleArn": role_arn,
            "Input": json.dumps({"InstanceIds": instance_ids}, sort_keys=True),
        },
    }


def schedule_differs(current, wanted):
    """Return True when the schedule's settings are not those wanted."""
    target = current.get("Target") or {}
    try:
        current_input = json.loads(target.get("Input") or "null")
    except ValueError:
        current_input = None
    return (
        current.get("ScheduleExpression") != wanted["ScheduleExpression"]
        or current.get("ScheduleExpressionTimezone") != wanted["ScheduleExpressionTimezone"]
        or (current.get("FlexibleTimeWindow") or {}).get("Mode") != "OFF"
        or current.get("State") != "ENABLED"
        or current.get("Description") != wanted["Description"]
        or target.get("Arn") != TARGET_ARN
        or target.get("RoleArn") != wanted["Target"]["RoleArn"]
        or current_input != json.loads(wanted["Target"]["Input"])
    )


class Scheduling(object):
    """The clients and account facts shared by the owners of one run."""

    def __init__(self, module):
        self.module = module
        self.ec2 = module.client("ec2")
        self.iam = module.client("iam")
        self.scheduler = module.client("scheduler")
        caller = aws.call(module.client("sts").get_caller_identity, "Could not tell which account the keys are of")
        self.account = caller["Account"]
        self.partition = caller["Arn"].split(":")[1]
        self.region = module.region

    def schedule_arn(self, name):
        return "arn:%s:scheduler:%s:%s:schedule/default/%s" % (self.partition, self.region, self.account, name)

    def role_arn(self, name):
        return "arn:%s:iam::%s:role/%s" % (self.partition, self.account, name)

    def apply(self, method, doing, retry_codes=(), **params):
        """Make one change, except in check mode; return AWS's answer (None in check mode)."""
        if self.module.check_mode:
            return None
        return aws.call(method, doing, retry_codes=retry_codes, **params)

    def own_role(self, name):
        """Return the role of this name, None when there is none, an error when it is not this collection's."""
        role = get_role(self.iam, name)
        if role is not None and not identity.is_managed(identity.tag_dict(role)):
            raise aws.LabcloudAWSError(
                "Role %s exists and is not this collection's (no tag %s=%s): it is left alone; remove or rename it"
                % (name, identity.MANAGED_BY_TAG, identity.MANAGED_BY)
            )
        return role

    def keep_role(self, owner, name, instance_ids):
        """Make or correct the owner's role; return its ARN and whether it changed."""
        role = self.own_role(name)
        trust = trust_policy(self.account, self.schedule_arn(name))
        policy = stop_policy(self.partition, self.region, self.account, owner, instance_ids)
        changed = False
        role_arn = role["Arn"] if role else self.role_arn(name)
        if role is None:
            changed = True
            tags = dict(identity.identity(owner)["tags"], **{identity.NAME_TAG: name})
            self.apply(
                self.iam.create_role,
                "Could not create role %s" % name,
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description="Lets EventBridge Scheduler stop %s's JupyterLab VMs every day" % owner,
                Tags=[{"Key": key, "Value": value} for key, value in sorted(tags.items())],
            )
        elif as_document(role.get("AssumeRolePolicyDocument")) != trust:
            changed = True
            self.apply(
                self.iam.update_assume_role_policy,
                "Could not set the trust policy of role %s" % name,
                RoleName=name,
                PolicyDocument=json.dumps(trust),
            )
        if role is None or role_policy(self.iam, name) != policy:
            changed = True
            self.apply(
                self.iam.put_role_policy,
                "Could not set the policy of role %s" % name,
                RoleName=name,
                PolicyName=POLICY_NAME,
                PolicyDocument=json.dumps(policy),
            )
        return role_arn, changed

    def keep_schedule(self, wanted, new_role):
        """Make or correct a schedule; return whether it changed."""
        current = get_schedule(self.scheduler, wanted["Name"])
        if current is not None and not schedule_differs(current, wanted):
            return False
        # IAM is eventually consistent: Scheduler may not see a role made moments ago.
        retry = ["ValidationException"] if new_role else []
        method = self.scheduler.create_schedule if current is None else self.scheduler.update_schedule
        self.apply(method, "Could not keep schedule %s" % wanted["Name"], retry_codes=retry, **wanted)
        return True

    def present(self, owner, time, timezone):
        """Bring the owner's schedule and role to what is asked; return the owner's entry."""
        name = schedule_name(owner)
        stop, skip = owner_instances(self.ec2, owner)
        if not stop:
            return dict(self.absent(owner), opted_out=skip)
        expression = cron_expression(time)
        role_arn, role_changed = self.keep_role(owner, name, stop)
        wanted = schedule_request(name, expression, timezone, role_arn, stop, owner)
        schedule_changed = self.keep_schedule(wanted, new_role=role_changed)
        return {
            "owner": owner,
            "name": name,
            "present": True,
            "changed": role_changed or schedule_changed,
            "schedule_arn": self.schedule_arn(name),
            "role_arn": role_arn,
            "expression": "%s %s" % (expression, timezone),
            "instance_ids": stop,
            "opted_out": skip,
        }

    def absent(self, owner):
        """Remove the owner's schedule and role; return the owner's entry."""
        name = schedule_name(owner)
        role = self.own_role(name)
        changed = get_schedule(self.scheduler, name) is not None
        if changed:
            self.apply(self.scheduler.delete_schedule, "Could not delete schedule %s" % name, Name=name)
        if role is not None:
            changed = True
            doing = "Could not list the policies of role %s" % name
            answer = self.apply(self.iam.list_role_policies, doing, RoleName=name) or {"PolicyNames": []}
            for policy_name in answer["PolicyNames"]:
                doing = "Could not delete policy %s of role %s" % (policy_name, name)
                self.apply(self.iam.delete_role_policy, doing, RoleName=name, PolicyName=policy_name)
            self.apply(self.iam.delete_role, "Could not delete role %s" % name, RoleName=name)
        return {"owner": owner, "name": name, "present": False, "changed": changed, "instance_ids": [], "opted_out": []}


def main():
    argument_spec = dict(
        owners=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        time=dict(type="str"),
        timezone=dict(type="str"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ("time", "timezone"))],
    )
    params = module.params
    problems = request_problems(params)
    if problems:
        module.fail_json(msg=" ".join(problems), problems=problems)
    try:
        scheduling = Scheduling(module)
        if params["state"] == "present":
            entries = [scheduling.present(owner, params["time"], params["timezone"]) for owner in params["owners"]]
        else:
            entries = [scheduling.absent(owner) for owner in params["owners"]]
    except aws.LabcloudAWSError as e:
        module.fail_json_aws_error(e)
    module.exit_json(
        changed=any(entry["changed"] for entry in entries),
        schedules=entries,
        opt_out_tag=identity.DAILY_STOP_OPT_OUT_TAG,
    )


if __name__ == "__main__":
    main()
