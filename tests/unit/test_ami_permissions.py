"""Unit tests for the pure logic of labcloud.jupyter.ami_share: validation and permission diffs."""

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import (
    PermissionSet,
    as_result,
    desired_set,
    desired_snapshot_set,
    difference,
    from_permission_list,
    launch_permission_payload,
    own_account_error,
    requested_set,
    to_launch_permission_list,
    validate_grantees,
    validate_request,
)

B = "210987654321"
C = "333344445555"
D = "444455556666"
ORG = "arn:aws:organizations::123456789012:organization/o-abcde12345"
ORG2 = "arn:aws:organizations::123456789012:organization/o-zyxwv98765"
OU = "arn:aws:organizations::123456789012:ou/o-abcde12345/ou-ab12-cdefgh34"


def perms(accounts=(), orgs=(), ous=(), public=False):
    """Build a PermissionSet from plain iterables."""
    return PermissionSet(frozenset(accounts), frozenset(orgs), frozenset(ous), public)


class TestValidateGrantees:
    @pytest.mark.parametrize(
        "accounts",
        [[B], [B, C], ["000000000001"], []],
    )
    def test_valid_account_ids_pass(self, accounts):
        assert validate_grantees(accounts, [], []) == []

    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            ("21098765432", "has 11 digits"),
            ("2109876543210", "has 13 digits"),
            ("21098765432a", "is not an AWS account ID"),
            (" 210987654321", "is not an AWS account ID"),
            ("2109-8765-4321", "is not an AWS account ID"),
            ("", "is not an AWS account ID"),
            ("all", "set public: true explicitly"),
            ("ALL", "set public: true explicitly"),
        ],
    )
    def test_bad_account_id_is_named(self, value, fragment):
        errors = validate_grantees([value], [], [])
        assert len(errors) == 1
        assert f'"{value}"' in errors[0]
        assert fragment in errors[0]

    def test_short_numeric_id_hints_at_yaml_quoting(self):
        # YAML reads an unquoted 012345678901 as a number and drops the leading zero.
        (error,) = validate_grantees(["12345678901"], [], [])
        assert "quote account IDs in YAML" in error

    def test_duplicate_account_is_reported_once(self):
        errors = validate_grantees([B, C, B, B], [], [])
        assert errors == [f'account_ids: "{B}" is listed more than once']

    @pytest.mark.parametrize(
        "arn",
        [
            ORG,
            "arn:aws:organizations::123456789012:organization/o-" + "a" * 32,
            "arn:aws-us-gov:organizations::123456789012:organization/o-abcde12345",
        ],
    )
    def test_valid_organization_arns_pass(self, arn):
        assert validate_grantees([], [arn], []) == []

    @pytest.mark.parametrize(
        "arn",
        [
            "arn:aws:organizations::123456789012:organization/o-short",
            "arn:aws:organizations::123456789012:organization/o-ABCDE12345",
            "arn:aws:organizations::12345678901:organization/o-abcde12345",
            "arn:aws:organizations:us-east-1:123456789012:organization/o-abcde12345",
            "arn:aws:iam::123456789012:organization/o-abcde12345",
            "o-abcde12345",
            "arn:aws:organizations::123456789012:organization/o-" + "a" * 33,
        ],
    )
    def test_malformed_organization_arn_is_named(self, arn):
        (error,) = validate_grantees([], [arn], [])
        assert error.startswith(f'organization_arns: "{arn}" is not an organization ARN')

    def test_unit_arn_among_organizations_points_to_the_right_option(self):
        (error,) = validate_grantees([], [OU], [])
        assert "list it under organizational_unit_arns" in error

    def test_organization_arn_among_units_points_to_the_right_option(self):
        (error,) = validate_grantees([], [], [ORG])
        assert "list it under organization_arns" in error

    @pytest.mark.parametrize(
        "arn",
        [
            "arn:aws:organizations::123456789012:ou/o-abcde12345/ou-ab1-cdefgh34",
            "arn:aws:organizations::123456789012:ou/o-abcde12345/ou-ab12-cdefg",
            "arn:aws:organizations::123456789012:ou/o-abcde12345/ou-ab12cdefgh34",
            "arn:aws:organizations::123456789012:ou/ou-ab12-cdefgh34",
        ],
    )
    def test_malformed_unit_arn_is_named(self, arn):
        (error,) = validate_grantees([], [], [arn])
        assert error.startswith(f'organizational_unit_arns: "{arn}" is not an organizational unit ARN')

    def test_every_problem_is_reported_at_once(self):
        errors = validate_grantees(["1", "all", B, B], ["x", ORG, ORG], ["y"])
        assert len(errors) == 6


class TestValidateRequest:
    def test_purge_needs_present(self):
        assert "purge" in validate_request("absent", True, None)[0]

    @pytest.mark.parametrize("public", [True, False])
    def test_public_needs_present(self, public):
        assert "public cannot be combined with state: absent" in validate_request("absent", False, public)[0]

    @pytest.mark.parametrize(("purge", "public"), [(False, None), (True, None), (True, True), (False, False)])
    def test_present_accepts_purge_and_public(self, purge, public):
        assert validate_request("present", purge, public) == []


class TestOwnAccount:
    def test_own_account_is_refused_by_name(self):
        error = own_account_error([B, "123456789012"], "123456789012")
        assert '"123456789012" is the account that owns the AMI' in error

    def test_other_accounts_pass(self):
        assert own_account_error([B, C], "123456789012") is None


class TestDesiredSet:
    def test_present_adds_to_what_is_there(self):
        current = perms([B], [ORG])
        desired = desired_set(current, requested_set([C], [], [OU]), "present", False, None)
        assert desired == perms([B, C], [ORG], [OU])

    def test_present_keeps_public_unless_told(self):
        current = perms([B], public=True)
        assert desired_set(current, requested_set([C], [], []), "present", False, None).public is True
        assert desired_set(current, requested_set([], [], []), "present", False, False).public is False

    def test_public_true_is_explicit(self):
        assert desired_set(perms(), requested_set([], [], []), "present", False, True) == perms(public=True)

    def test_absent_removes_only_what_is_listed(self):
        current = perms([B, C], [ORG, ORG2], [OU], public=True)
        desired = desired_set(current, requested_set([B, D], [ORG], []), "absent", False, None)
        assert desired == perms([C], [ORG2], [OU], public=True)

    def test_purge_sets_exactly_and_revokes_public(self):
        current = perms([B, C], [ORG], [OU], public=True)
        desired = desired_set(current, requested_set([D], [], []), "present", True, None)
        assert desired == perms([D])

    def test_purge_with_public_true_keeps_it_public(self):
        current = perms([B], public=True)
        assert desired_set(current, requested_set([], [], []), "present", True, True) == perms(public=True)

    def test_purge_with_nothing_listed_makes_it_private(self):
        current = perms([B, C], [ORG], [OU], public=True)
        assert desired_set(current, requested_set([], [], []), "present", True, None) == perms()


class TestDesiredSnapshotSet:
    def test_snapshots_follow_accounts_only(self):
        desired = desired_snapshot_set(perms(), requested_set([B], [ORG], [OU]), "present", False, True)
        assert desired == perms([B])

    def test_snapshots_are_never_made_public(self):
        assert desired_snapshot_set(perms(), requested_set([], [], []), "present", True, True).public is False

    def test_public_snapshot_is_left_alone_when_adding(self):
        current = perms([C], public=True)
        assert desired_snapshot_set(current, requested_set([B], [], []), "present", False, None) == perms(
            [B, C], public=True
        )

    @pytest.mark.parametrize(("purge", "public"), [(True, None), (False, False)])
    def test_public_snapshot_is_made_private_by_purge_or_public_false(self, purge, public):
        current = perms([C], public=True)
        desired = desired_snapshot_set(current, requested_set([C], [], []), "present", purge, public)
        assert desired == perms([C])

    def test_absent_revokes_the_accounts(self):
        current = perms([B, C])
        assert desired_snapshot_set(current, requested_set([B], [], []), "absent", False, None) == perms([C])


class TestDifference:
    def test_no_change_means_empty_sets(self):
        current = perms([B], [ORG], [OU], public=True)
        to_add, to_remove = difference(current, current)
        assert to_add.is_empty()
        assert to_remove.is_empty()
        assert launch_permission_payload(to_add, to_remove) == {}

    def test_add_and_remove_in_one_payload(self):
        to_add, to_remove = difference(perms([B], [ORG]), perms([C], [ORG], [OU], public=True))
        assert to_add == perms([C], [], [OU], public=True)
        assert to_remove == perms([B])
        assert launch_permission_payload(to_add, to_remove) == {
            "Add": [{"Group": "all"}, {"UserId": C}, {"OrganizationalUnitArn": OU}],
            "Remove": [{"UserId": B}],
        }

    def test_making_private_removes_the_group(self):
        to_add, to_remove = difference(perms(public=True), perms())
        assert launch_permission_payload(to_add, to_remove) == {"Remove": [{"Group": "all"}]}


class TestConversions:
    def test_round_trip_through_the_api_format(self):
        original = perms([C, B], [ORG], [OU], public=True)
        assert from_permission_list(to_launch_permission_list(original)) == original

    def test_api_list_is_parsed(self):
        items = [{"Group": "all"}, {"UserId": B}, {"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}]
        assert from_permission_list(items) == perms([B], [ORG], [OU], public=True)

    def test_result_is_sorted(self):
        assert as_result(perms([C, B])) == {
            "account_ids": [B, C],
            "organization_arns": [],
            "organizational_unit_arns": [],
            "public": False,
        }

    def test_snapshot_result_has_no_organizations(self):
        assert as_result(perms([B]), with_organizations=False) == {"account_ids": [B], "public": False}
