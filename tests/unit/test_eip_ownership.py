"""Unit tests for the pure logic of labcloud.jupyter.elastic_ip: ownership by tags."""

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import (
    default_name,
    describe_address,
    instance_owner_error,
    is_owned_by,
    lookup_filters,
    missing_tags,
    owned_addresses,
    tag_dict,
    validate_identity,
    wanted_tags,
)


def address(allocation_id, **tags):
    """An address description as DescribeAddresses returns it."""
    return {
        "AllocationId": allocation_id,
        "PublicIp": "198.51.100.7",
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


class TestValidateIdentity:
    def test_plain_owner_and_name_pass(self):
        assert validate_identity("hedylamarr", default_name("hedylamarr"), {"Project": "ocean"}) == []

    @pytest.mark.parametrize(
        ("owner", "fragment"),
        [
            ("", "owner must not be empty"),
            ("   ", "owner must not be empty"),
            (" alice", "leading or trailing spaces"),
            ("ali*", 'contains "*"'),
            ("al?ce", 'contains "?"'),
            ("aws:alice", "reserves"),
            ("a" * 257, "at most 256"),
        ],
    )
    def test_bad_owner_is_refused(self, owner, fragment):
        errors = validate_identity(owner, "jupyter-x", None)
        assert len(errors) == 1
        assert fragment in errors[0]

    def test_bad_name_is_refused(self):
        (error,) = validate_identity("alice", "jupyter-*", None)
        assert error.startswith('name: "jupyter-*" contains "*"')

    def test_tags_cannot_override_owner_or_name(self):
        errors = validate_identity("alice", "jupyter-alice", {"Owner": "bob", "Name": "other"})
        assert len(errors) == 2
        assert 'tags: "Owner" is set by the owner option' in errors[0]
        assert 'tags: "Name" is set by the name option' in errors[1]

    def test_tags_may_repeat_owner_and_name(self):
        assert validate_identity("alice", "jupyter-alice", {"Owner": "alice", "Name": "jupyter-alice"}) == []

    def test_reserved_tag_key_is_refused(self):
        (error,) = validate_identity("alice", "jupyter-alice", {"aws:cloudformation": "x"})
        assert "reserves" in error


class TestOwnership:
    def test_default_name_is_derived_from_owner(self):
        assert default_name("hedylamarr") == "jupyter-hedylamarr"

    def test_lookup_filters_are_exact_values(self):
        assert lookup_filters("alice", "jupyter-alice") == [
            {"Name": "domain", "Values": ["vpc"]},
            {"Name": "tag:Name", "Values": ["jupyter-alice"]},
            {"Name": "tag:Owner", "Values": ["alice"]},
        ]

    def test_only_exact_matches_are_owned(self):
        candidates = [
            address("eipalloc-1", Name="jupyter-alice", Owner="alice"),
            address("eipalloc-2", Name="jupyter-alice", Owner="alice2"),
            address("eipalloc-3", Name="jupyter-alice"),
            address("eipalloc-4"),
            address("eipalloc-5", Name="jupyter-alice", Owner="ALICE"),
            address("eipalloc-6", Name="other", Owner="alice"),
        ]
        owned = owned_addresses(candidates, "alice", "jupyter-alice")
        assert [a["AllocationId"] for a in owned] == ["eipalloc-1"]

    def test_untagged_address_is_never_owned(self):
        assert not is_owned_by({"AllocationId": "eipalloc-1", "PublicIp": "198.51.100.7"}, "alice", "jupyter-alice")

    def test_wanted_tags_put_identity_last(self):
        assert wanted_tags("alice", "jupyter-alice", {"Project": "ocean", "Year": 2025}) == {
            "Project": "ocean",
            "Year": "2025",
            "Name": "jupyter-alice",
            "Owner": "alice",
        }

    def test_missing_tags_leaves_other_tags_alone(self):
        current = {"Name": "jupyter-alice", "Owner": "alice", "CostCenter": "42", "Project": "old"}
        wanted = {"Name": "jupyter-alice", "Owner": "alice", "Project": "ocean"}
        assert missing_tags(current, wanted) == {"Project": "ocean"}


class TestInstanceOwner:
    def test_instance_of_another_owner_is_refused(self):
        instance = {"InstanceId": "i-0abc", "Tags": [{"Key": "Owner", "Value": "bob"}]}
        error = instance_owner_error(instance, "alice")
        assert "Instance i-0abc belongs to owner bob" in error

    @pytest.mark.parametrize("tags", [[], [{"Key": "Owner", "Value": "alice"}], [{"Key": "Name", "Value": "x"}]])
    def test_own_or_untagged_instance_passes(self, tags):
        assert instance_owner_error({"InstanceId": "i-0abc", "Tags": tags}, "alice") is None


class TestDescribeAddress:
    def test_no_address_is_all_none(self):
        assert describe_address(None) == {
            "allocation_id": None,
            "public_ip": None,
            "association_id": None,
            "instance_id": None,
            "tags": {},
        }

    def test_associated_address(self):
        found = address("eipalloc-1", Owner="alice")
        found.update(AssociationId="eipassoc-1", InstanceId="i-0abc")
        assert describe_address(found) == {
            "allocation_id": "eipalloc-1",
            "public_ip": "198.51.100.7",
            "association_id": "eipassoc-1",
            "instance_id": "i-0abc",
            "tags": {"Owner": "alice"},
        }

    def test_empty_instance_id_is_none(self):
        found = address("eipalloc-1")
        found["InstanceId"] = ""
        assert describe_address(found)["instance_id"] is None


class TestTagsOfKeyPairsAndGroups:
    """The tag helpers as labcloud.jupyter.owner_access uses them."""

    def test_missing_tags_are_the_missing_and_different_ones(self):
        current = {"Name": "jupyter-ada", "Owner": "ada", "Project": "old", "Keep": "me"}
        wanted = {"Name": "jupyter-ada", "Owner": "ada", "Project": "new", "Course": "ocean"}
        assert missing_tags(current, wanted) == {"Project": "new", "Course": "ocean"}

    def test_nothing_changes_when_all_are_there(self):
        assert missing_tags({"Name": "a", "Owner": "b", "Other": "c"}, {"Name": "a", "Owner": "b"}) == {}
        assert missing_tags({}, {}) == {}
        assert missing_tags({}, {"Owner": "ada"}) == {"Owner": "ada"}

    def test_tag_dict(self):
        assert tag_dict({"Tags": [{"Key": "Owner", "Value": "ada"}]}) == {"Owner": "ada"}
        assert tag_dict({}) == {}
        assert tag_dict({"Tags": None}) == {}
