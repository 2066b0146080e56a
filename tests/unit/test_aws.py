"""Unit tests of the AWS plumbing of the modules: retried calls, the error type, tags, pages, parallel runs."""

import threading
import time

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils import aws
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import (
    WORKERS,
    LabcloudAWSError,
    aws_error,
    call,
    create_tags,
    describe_all,
    error_code,
    missing_tags,
    run_each,
    tag_specifications,
)
from botocore.exceptions import ClientError, EndpointConnectionError


def client_error(code, message="it went wrong", operation="DescribeAddresses"):
    """A ClientError as botocore raises it."""
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class Failing:
    """A callable that raises the given exceptions one after the other, then returns result."""

    def __init__(self, *errors, result=None):
        self.errors = list(errors)
        self.result = result
        self.calls = []

    def __call__(self, **params):
        self.calls.append(params)
        if self.errors:
            raise self.errors.pop(0)
        return self.result


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """Retries do not sleep in these tests."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


class TestError:
    def test_client_error_carries_code_and_says_what_then_why(self):
        error = aws_error("Could not release 198.51.100.7", client_error("AuthFailure", "not yours"))
        assert isinstance(error, LabcloudAWSError)
        assert error.code == "AuthFailure"
        assert error.message == "Could not release 198.51.100.7"
        assert str(error).startswith("Could not release 198.51.100.7: An error occurred (AuthFailure)")
        assert str(error).endswith("not yours")

    def test_other_errors_have_no_code(self):
        assert aws_error("Could not connect", EndpointConnectionError(endpoint_url="http://x")).code is None
        assert LabcloudAWSError("Refused").code is None
        assert str(LabcloudAWSError("Refused")) == "Refused"
        assert error_code(ValueError("x")) is None

    def test_kwargs_are_kept(self):
        assert LabcloudAWSError("x", done=["imported key pair a"]).kwargs == {"done": ["imported key pair a"]}


class TestCall:
    def test_passes_parameters_and_returns_the_answer(self):
        method = Failing(result={"Addresses": []})
        assert call(method, "Could not look up", Filters=[1]) == {"Addresses": []}
        assert method.calls == [{"Filters": [1]}]

    def test_throttling_is_retried(self):
        method = Failing(client_error("Throttling"), client_error("RequestLimitExceeded"), result={"ok": True})
        assert call(method, "Could not look up") == {"ok": True}
        assert len(method.calls) == 3

    def test_other_errors_fail_at_once_saying_what_was_done(self):
        method = Failing(client_error("InvalidGroup.NotFound"), result={})
        with pytest.raises(LabcloudAWSError) as raised:
            call(method, "Could not revoke tcp/22 of sg-1")
        assert raised.value.code == "InvalidGroup.NotFound"
        assert raised.value.message == "Could not revoke tcp/22 of sg-1"
        assert isinstance(raised.value.__cause__, ClientError)
        assert len(method.calls) == 1

    def test_retry_codes_are_retried_too(self):
        method = Failing(client_error("InvalidGroup.NotFound"), result={"ok": True})
        assert call(method, "Could not revoke", retry_codes=["InvalidGroup.NotFound"]) == {"ok": True}
        assert len(method.calls) == 2

    def test_botocore_errors_become_labcloud_errors(self):
        method = Failing(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
        with pytest.raises(LabcloudAWSError, match=r"^Could not allocate: Could not connect") as raised:
            call(method, "Could not allocate")
        assert raised.value.code is None


class Client:
    """A boto3 client stand-in: operations that may or may not have a paginator."""

    def __init__(self, pages=None, answer=None):
        self.pages = pages or {}
        self.answer = answer
        self.created_tags = []

    def can_paginate(self, operation):
        return operation in self.pages

    def get_paginator(self, operation):
        pages = self.pages[operation]

        class Paginator:
            def paginate(self, **params):
                class Result:
                    def build_full_result(self):
                        return {"Items": [item for page in pages for item in page], "Params": params}

                return Result()

        return Paginator()

    def describe_addresses(self, **params):
        return self.answer

    def create_tags(self, **params):
        self.created_tags.append(params)


class TestDescribeAll:
    def test_pages_are_merged(self):
        client = Client(pages={"describe_security_groups": [[{"GroupId": "sg-1"}], [{"GroupId": "sg-2"}]]})
        items = describe_all(client, "describe_security_groups", "Items", "Could not look up the groups")
        assert items == [{"GroupId": "sg-1"}, {"GroupId": "sg-2"}]

    def test_operation_without_pages_is_called_once(self):
        client = Client(answer={"Addresses": [{"AllocationId": "eipalloc-1"}]})
        assert describe_all(client, "describe_addresses", "Addresses", "Could not look up") == [
            {"AllocationId": "eipalloc-1"}
        ]

    def test_missing_key_is_an_empty_list(self):
        assert describe_all(Client(answer={}), "describe_addresses", "Addresses", "Could not look up") == []


class TestTags:
    def test_missing_tags_leaves_other_tags_alone(self):
        current = {"Name": "jupyter-alice", "Owner": "alice", "CostCenter": "42", "Project": "old"}
        wanted = {"Name": "jupyter-alice", "Owner": "alice", "Project": "ocean"}
        assert missing_tags(current, wanted) == {"Project": "ocean"}

    def test_missing_tags_are_the_missing_and_different_ones(self):
        current = {"Name": "jupyter-ada", "Owner": "ada", "Project": "old", "Keep": "me"}
        wanted = {"Name": "jupyter-ada", "Owner": "ada", "Project": "new", "Course": "ocean"}
        assert missing_tags(current, wanted) == {"Project": "new", "Course": "ocean"}

    def test_nothing_changes_when_all_are_there(self):
        assert missing_tags({"Name": "a", "Owner": "b", "Other": "c"}, {"Name": "a", "Owner": "b"}) == {}
        assert missing_tags({}, {}) == {}
        assert missing_tags({}, {"Owner": "ada"}) == {"Owner": "ada"}

    def test_tag_specifications(self):
        assert tag_specifications("elastic-ip", {"Owner": "ada"}) == [
            {"ResourceType": "elastic-ip", "Tags": [{"Key": "Owner", "Value": "ada"}]}
        ]

    def test_create_tags(self):
        client = Client()
        create_tags(client, ("sg-1",), {"Owner": "ada", "Course": "cs101"})
        assert client.created_tags == [
            {
                "Resources": ["sg-1"],
                "Tags": [{"Key": "Owner", "Value": "ada"}, {"Key": "Course", "Value": "cs101"}],
            }
        ]

    def test_create_tags_failure_names_the_resources(self, monkeypatch):
        client = Client()
        refused = client_error("UnauthorizedOperation")
        monkeypatch.setattr(client, "create_tags", Failing(refused, refused))
        with pytest.raises(LabcloudAWSError, match=r"^Could not tag sg-1, sg-2: "):
            create_tags(client, ["sg-1", "sg-2"], {"Owner": "ada"})
        with pytest.raises(LabcloudAWSError, match=r"^Could not tag security group jupyter-ada \(sg-1\): "):
            create_tags(client, ["sg-1"], {"Owner": "ada"}, "Could not tag security group jupyter-ada (sg-1)")


class TestRunEach:
    def test_results_come_in_the_order_of_the_items(self):
        def slow_for_small(number):
            time_to_wait = (10 - number) / 1000
            threading.Event().wait(time_to_wait)
            return number * 2

        outcomes = run_each(slow_for_small, list(range(10)))
        assert [outcome.result for outcome in outcomes] == [number * 2 for number in range(10)]
        assert all(outcome.error is None for outcome in outcomes)

    def test_failures_are_kept_per_item_without_losing_the_others(self):
        def serve(owner):
            if owner == "bob":
                raise LabcloudAWSError(f"Could not serve {owner}")
            return {"owner": owner}

        outcomes = run_each(serve, ["ada", "bob", "carol"])
        assert [outcome.result for outcome in outcomes] == [{"owner": "ada"}, None, {"owner": "carol"}]
        assert outcomes[1].error.message == "Could not serve bob"

    def test_other_exceptions_are_not_swallowed(self):
        def broken(item):
            raise KeyError(item)

        with pytest.raises(KeyError):
            run_each(broken, ["ada"])

    def test_no_items(self):
        assert run_each(lambda item: item, []) == []

    def test_at_most_workers_at_once(self, monkeypatch):
        monkeypatch.setattr(aws, "WORKERS", 3)
        lock = threading.Lock()
        state = {"running": 0, "most": 0}

        def count(item):
            with lock:
                state["running"] += 1
                state["most"] = max(state["most"], state["running"])
            threading.Event().wait(0.01)
            with lock:
                state["running"] -= 1
            return item

        assert [outcome.result for outcome in run_each(count, list(range(12)))] == list(range(12))
        assert state["most"] == 3

    def test_worker_count(self):
        assert WORKERS == 8
