# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The AWS plumbing every module of labcloud.jupyter uses.

Every API call goes through call() (or describe_all() for the Describe* calls that return a list),
retried with jittered exponential backoff on throttling. A failed call raises LabcloudAWSError,
whose message says what was being done, then why (the AWS error). run_each() runs one function per
owner of a class at once, keeping each owner's result or failure.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence

# The import guard is the pattern ansible-test sanity expects.
try:  # noqa: SIM105
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_specifications

# Owners handled at once: enough to hide the API's latency for a class, few enough not to be throttled.
WORKERS = 8


def error_code(exception: Optional[BaseException]) -> Optional[str]:
    """Return the AWS error code of a botocore ClientError, or None for any other exception."""
    response = getattr(exception, "response", None)
    if not isinstance(response, dict):
        return None
    return response.get("Error", {}).get("Code")


def aws_message(error: "LabcloudAWSError") -> str:
    """Return AWS's own message of a failed call (without what was being done), or the error's text."""
    response = getattr(error.exception, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Message"):
        return response["Error"]["Message"]
    return str(error.exception or error)


class LabcloudAWSError(AnsibleAWSError):
    """A step failed or was refused: message says what was being done, exception (and code) why."""

    def __init__(self, message: Optional[str] = None, exception: Optional[BaseException] = None, **kwargs: Any):
        super().__init__(message, exception, **kwargs)
        self.code = error_code(exception)


def aws_error(doing: str, exception: BaseException) -> LabcloudAWSError:
    """Return the error of a failed AWS call: what was being done, then the BotoCoreError or ClientError."""
    return LabcloudAWSError(doing, exception)


def call(method: Callable[..., Any], doing: str, retry_codes: Sequence[str] = (), **params: Any) -> Any:
    """Call one boto3 client method, retried on throttling and on retry_codes; LabcloudAWSError(doing) on failure."""
    # A decorator per call: its backoff state is then not shared by the threads of run_each().
    retrying = AWSRetry.jittered_backoff(catch_extra_error_codes=list(retry_codes))
    try:
        return retrying(method)(**params)
    except (BotoCoreError, ClientError) as e:
        raise aws_error(doing, e) from e


def describe_all(client: Any, operation: str, key: str, doing: str, **params: Any) -> List[Dict[str, Any]]:
    """Return the list under key of a Describe* call, every page of it when the operation has pages."""
    if client.can_paginate(operation):

        def method(**kwargs: Any) -> Dict[str, Any]:
            """Call the operation page by page and return the pages merged."""
            return client.get_paginator(operation).paginate(**kwargs).build_full_result()

    else:
        method = getattr(client, operation)
    return call(method, doing, **params).get(key) or []


def missing_tags(current: Dict[str, str], wanted: Dict[str, str]) -> Dict[str, str]:
    """Return the wanted tags that are absent or differ; tags not wanted are left alone."""
    return {key: value for key, value in wanted.items() if current.get(key) != value}


def tag_specifications(resource_type: str, tags: Dict[str, str]) -> List[Dict[str, Any]]:
    """Return the TagSpecifications that tag a resource in the call that creates it."""
    return boto3_tag_specifications(tags, [resource_type])


def create_tags(
    client: Any,
    resource_ids: Iterable[str],
    tags: Dict[str, str],
    doing: Optional[str] = None,
    retry_codes: Sequence[str] = (),
) -> None:
    """Add or overwrite the given tags on the resources with CreateTags; their other tags are kept."""
    resources = list(resource_ids)
    call(
        client.create_tags,
        doing or f"Could not tag {', '.join(resources)}",
        retry_codes=retry_codes,
        Resources=resources,
        Tags=ansible_dict_to_boto3_tag_list(tags),
    )


class Outcome(NamedTuple):
    """What run_each() got for one item: its result, or the error that stopped it."""

    result: Any
    error: Optional[LabcloudAWSError]


def run_each(function: Callable[[Any], Any], items: Sequence[Any]) -> List[Outcome]:
    """Run function for every item, WORKERS at a time, and return their outcomes in the order of items."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        futures = [pool.submit(function, item) for item in items]
    outcomes = []
    for future in futures:
        try:
            outcomes.append(Outcome(future.result(), None))
        except LabcloudAWSError as e:
            outcomes.append(Outcome(None, e))
    return outcomes
