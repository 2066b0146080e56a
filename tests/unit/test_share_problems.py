"""Unit tests of the filter share_problems (the rules of ami_share, for playbooks)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labcloud.jupyter.plugins.filter.share import FilterModule

share_problems = FilterModule().filters()["share_problems"]
ORG = "arn:aws:organizations::123456789012:organization/o-abcde12345"
OU = "arn:aws:organizations::123456789012:ou/o-abcde12345/ou-ab12-cdefgh34"


def test_a_good_request_has_no_problem():
    request = {"account_ids": ["111122223333"], "organization_arns": [ORG], "organizational_unit_arns": [OU]}
    assert share_problems(request | {"state": "present", "purge": True, "public": None}) == []
    assert share_problems({}) == []


def test_each_bad_grantee_is_named():
    problems = share_problems(
        {"account_ids": ["12345", "all", "111122223333", "111122223333"], "organization_arns": [OU], "state": "present"}
    )
    assert problems == [
        'account_ids: "12345" has 5 digits, an AWS account ID has exactly 12 (quote account IDs in YAML so that'
        " leading zeros are kept)",
        'account_ids: "all" is not an account ID; to make the AMI public set public: true explicitly',
        'account_ids: "111122223333" is listed more than once',
        f'organization_arns: "{OU}" is an organizational unit ARN; list it under organizational_unit_arns',
    ]


def test_purge_and_public_go_with_present():
    assert share_problems({"state": "absent", "purge": True, "public": False}) == [
        "purge: true sets the permissions exactly and needs state: present",
        "public cannot be combined with state: absent; use state: present with public: false",
    ]


def test_numbers_from_yaml_are_checked_as_text():
    # 012345678901 unquoted in YAML is the number 12345678901: eleven digits, refused.
    assert share_problems({"account_ids": [12345678901]})[0].startswith('account_ids: "12345678901" has 11 digits')


@pytest.mark.parametrize("bad", ["111122223333", ["not", "a", "mapping"]])
def test_not_a_request_is_refused(bad):
    with pytest.raises(AnsibleFilterError):
        share_problems(bad)
