"""Unit tests of the owner identity: names, tags, ownership, image families and login users."""

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import (
    LOGIN_USERS,
    MANAGED_BY,
    OWNER_RULE,
    identity,
    image_family,
    instance_owner_error,
    is_managed,
    is_owned_by,
    key_file_name,
    login_user,
    login_user_of,
    owned_addresses,
    owner_error,
    resource_name,
    tag_dict,
    user_name_error,
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


class TestOwnerName:
    @pytest.mark.parametrize("owner", ["ab", "hedylamarr", "ada-lovelace", "x2", "a" + "b" * 31])
    def test_valid_owners_pass(self, owner):
        assert owner_error(owner) is None

    @pytest.mark.parametrize(
        "owner",
        ["", "a", "Ada", "2ada", "-ada", "ada lovelace", "ada_l", "ada.l", "a" * 33, "ada\n", "ädä", None, 42],
    )
    def test_invalid_owners_are_refused_with_value_and_rule(self, owner):
        error = owner_error(owner)
        assert error.startswith(f"Invalid owner {owner!r}: use ")
        assert OWNER_RULE in error

    def test_resource_and_key_file_names(self):
        assert resource_name("hedylamarr") == "jupyter-hedylamarr"
        assert key_file_name("hedylamarr") == "jupyter-hedylamarr.pem"


class TestIdentity:
    def test_names_tags_and_filters(self):
        assert identity("ada") == {
            "owner": "ada",
            "name": "jupyter-ada",
            "key_pair": "jupyter-ada",
            "security_group": "jupyter-ada",
            "address": "jupyter-ada",
            "tags": {"Name": "jupyter-ada", "Owner": "ada", "ManagedBy": "labcloud.jupyter"},
            "instance_filters": {
                "tag:Name": "jupyter-ada",
                "tag:Owner": "ada",
                "tag:ManagedBy": "labcloud.jupyter",
            },
        }

    def test_key_file_only_with_key_dir(self, monkeypatch):
        monkeypatch.setenv("HOME", "/home/ada")
        assert "key_file" not in identity("ada")
        assert identity("ada", "~/.labcloud/keys")["key_file"] == "/home/ada/.labcloud/keys/jupyter-ada.pem"
        assert identity("ada", "/srv/keys/")["key_file"] == "/srv/keys/jupyter-ada.pem"

    def test_invalid_owner_raises_value_error(self):
        with pytest.raises(ValueError, match=r"Invalid owner 'Ada Lovelace': use 2 to 32"):
            identity("Ada Lovelace")

    def test_managed_by_value(self):
        assert MANAGED_BY == "labcloud.jupyter"
        assert identity("ada")["tags"]["ManagedBy"] == MANAGED_BY


class TestIsManaged:
    def test_managed_tags(self):
        assert is_managed({"ManagedBy": "labcloud.jupyter", "Owner": "ada"})

    @pytest.mark.parametrize(
        "tags", [{}, {"ManagedBy": "someone-else"}, {"managedby": "labcloud.jupyter"}, None, "labcloud.jupyter", []]
    )
    def test_anything_else_is_not_managed(self, tags):
        assert not is_managed(tags)


class TestImageFamily:
    @pytest.mark.parametrize(
        ("name", "description", "family"),
        [
            ("debian-12-amd64-20250610-2137", "", "debian"),
            ("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610", "", "ubuntu"),
            ("al2023-ami-2023.7.20250609.0-kernel-6.1-x86_64", "", "amazon"),
            ("amzn2-ami-kernel-5.10-hvm-2.0.20250610.0-x86_64-gp2", "", "amazon"),
            ("lab-image-7", "Amazon Linux 2023 with JupyterLab", "amazon"),
            ("lab-image-7", "Debian 12 (bookworm) with JupyterLab", "debian"),
            ("DEBIAN-12", None, "debian"),
            ("windows-server-2022", "Microsoft Windows", ""),
            ("", "", ""),
        ],
    )
    def test_family_from_name_and_description(self, name, description, family):
        assert image_family(name, description) == family

    def test_known_tag_wins(self):
        assert image_family("debian-12-lab", "", {"ImageFamily": "ubuntu"}) == "ubuntu"

    def test_unknown_tag_is_ignored(self):
        assert image_family("debian-12-lab", "", {"ImageFamily": "gentoo"}) == "debian"
        assert image_family("custom", "", {"ImageFamily": "gentoo"}) == ""

    def test_login_user_of_family(self):
        assert login_user("debian") == "admin"
        assert login_user("ubuntu") == "ubuntu"
        assert login_user("amazon") == "ec2-user"
        assert login_user("gentoo") is None
        assert login_user(None) is None
        assert login_user(["debian"]) is None


class TestLoginUserOf:
    def test_login_user_tag(self):
        assert login_user_of({"LoginUser": "admin", "ImageFamily": "ubuntu"}) == "admin"
        assert login_user_of({"LoginUser": "_svc-1"}) == "_svc-1"

    @pytest.mark.parametrize("family", sorted(LOGIN_USERS))
    def test_family_tag_when_no_login_user(self, family):
        assert login_user_of({"ImageFamily": family}) == LOGIN_USERS[family]

    @pytest.mark.parametrize(
        "hostile",
        [
            "ubuntu -oProxyCommand=touch /tmp/x",
            "-oProxyCommand=touch /tmp/x",
            "root@evil.example",
            "admin\n",
            "admin\nProxyCommand touch /tmp/x",
            "a b",
            "Admin",
            "",
            "a" * 33,
            "$(id)",
            "a;b",
            7,
        ],
    )
    @pytest.mark.parametrize("family", [{}, {"ImageFamily": "debian"}])
    def test_unsafe_login_user_is_refused_even_with_a_family(self, hostile, family):
        with pytest.raises(ValueError) as raised:
            login_user_of({"LoginUser": hostile, **family})
        message = str(raised.value)
        assert message.startswith(f"Refusing the instance's LoginUser tag {hostile!r}: it is not a user name")
        assert "Set the tag to the VM's login user" in message

    def test_no_tags_are_refused(self):
        with pytest.raises(ValueError, match="LoginUser tag is missing, and its ImageFamily tag 'gentoo' is not"):
            login_user_of({"ImageFamily": "gentoo"})
        with pytest.raises(ValueError, match="Cannot tell the instance's login user"):
            login_user_of(None)


class TestUserNameError:
    @pytest.mark.parametrize("name", ["admin", "ubuntu", "ec2-user", "_svc", "jupyter-ada", "a" * 32])
    def test_user_names(self, name):
        assert user_name_error(name) is None

    @pytest.mark.parametrize(
        "name", ["", "Admin", "1ada", "-oProxyCommand=x", "ada\n", "a b", "a" * 33, "$(id)", None, 7]
    )
    def test_not_user_names(self, name):
        message = user_name_error(name, "sshd_login_user")
        assert message.startswith(f"Invalid sshd_login_user {name!r}: use 1 to 32 lower-case letters")


class TestValidateIdentity:
    def test_plain_owner_and_name_pass(self):
        assert validate_identity("hedylamarr", resource_name("hedylamarr"), {"Project": "ocean"}) == []

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
        assert resource_name("hedylamarr") == "jupyter-hedylamarr"

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

    def test_tag_dict(self):
        assert tag_dict({"Tags": [{"Key": "Owner", "Value": "ada"}]}) == {"Owner": "ada"}
        assert tag_dict({}) == {}
        assert tag_dict({"Tags": None}) == {}


class TestInstanceOwner:
    def test_instance_of_another_owner_is_refused(self):
        instance = {"InstanceId": "i-0abc", "Tags": [{"Key": "Owner", "Value": "bob"}]}
        error = instance_owner_error(instance, "alice")
        assert "Instance i-0abc belongs to owner bob" in error

    @pytest.mark.parametrize("tags", [[], [{"Key": "Owner", "Value": "alice"}], [{"Key": "Name", "Value": "x"}]])
    def test_own_or_untagged_instance_passes(self, tags):
        assert instance_owner_error({"InstanceId": "i-0abc", "Tags": tags}, "alice") is None
