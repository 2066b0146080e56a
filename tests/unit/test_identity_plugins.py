"""Unit tests of the plugins that hand the owner identity to playbooks: filters, test and lookup."""

import pytest
from ansible.errors import AnsibleFilterError, AnsibleLookupError
from ansible_collections.labcloud.jupyter.plugins.filter.identity import FilterModule
from ansible_collections.labcloud.jupyter.plugins.lookup.identity import LookupModule
from ansible_collections.labcloud.jupyter.plugins.module_utils import identity
from ansible_collections.labcloud.jupyter.plugins.test.identity import TestModule as IdentityTests

FILTERS = FilterModule().filters()


class TestFilterNames:
    def test_the_filters(self):
        assert sorted(FILTERS) == [
            "identity",
            "image_family",
            "image_name",
            "login_user",
            "owner_problems",
            "user_name_problems",
        ]

    def test_the_test(self):
        assert sorted(IdentityTests().tests()) == ["managed"]


class TestIdentityFilter:
    def test_identity_of_an_owner(self):
        me = FILTERS["identity"]("hedylamarr")
        assert me == identity.identity("hedylamarr")
        assert me["name"] == "jupyter-hedylamarr"
        assert me["instance_filters"]["tag:ManagedBy"] == "labcloud.jupyter"

    def test_key_dir(self):
        assert FILTERS["identity"]("ada", "/srv/keys")["key_file"] == "/srv/keys/jupyter-ada.pem"

    @pytest.mark.parametrize("owner", ["Ada", "a", "ada lovelace", "", None, 3])
    def test_invalid_owner_fails_the_task(self, owner):
        with pytest.raises(AnsibleFilterError, match=r"Invalid owner .*: use 2 to 32 lower-case letters"):
            FILTERS["identity"](owner)


class TestOwnerProblems:
    def test_good_roster_has_no_problems(self):
        assert FILTERS["owner_problems"](["ada", {"owner": "grace", "local_port": 7010}, "hedy-lamarr"]) == []
        assert FILTERS["owner_problems"]([]) == []

    def test_invalid_owners_are_named(self):
        problems = FILTERS["owner_problems"](["ada", {"owner": "Grace Hopper"}, "x"])
        assert len(problems) == 2
        assert problems[0].startswith("Roster entry 2: Invalid owner 'Grace Hopper': use 2 to 32")
        assert problems[1].startswith("Roster entry 3: Invalid owner 'x'")

    def test_duplicates_are_named_once_per_repeat(self):
        problems = FILTERS["owner_problems"](["ada", {"owner": "ada"}, "grace", "ada"])
        assert problems == [
            "Roster entry 2: owner 'ada' is listed more than once",
            "Roster entry 4: owner 'ada' is listed more than once",
        ]

    @pytest.mark.parametrize("entry", [42, None, ["ada"], {"name": "ada"}])
    def test_entries_of_neither_form(self, entry):
        (problem,) = FILTERS["owner_problems"](["ada", entry])
        assert problem.startswith("Roster entry 2 is neither an owner's name nor a dictionary with an 'owner' key")

    def test_owner_that_is_not_text(self):
        (problem,) = FILTERS["owner_problems"]([{"owner": 42}])
        assert problem.startswith("Roster entry 1: Invalid owner 42")

    @pytest.mark.parametrize("roster", ["ada", {"owner": "ada"}, None])
    def test_roster_that_is_not_a_list(self, roster):
        (problem,) = FILTERS["owner_problems"](roster)
        assert problem.startswith("A roster is a list of owners, not ")


class TestLoginUserFilter:
    def test_login_user_tag(self):
        assert FILTERS["login_user"]({"LoginUser": "admin", "Owner": "ada"}) == "admin"

    def test_image_family_tag(self):
        assert FILTERS["login_user"]({"ImageFamily": "amazon"}) == "ec2-user"

    @pytest.mark.parametrize("tags", [{}, {"ImageFamily": "gentoo"}])
    def test_no_user_fails_the_task(self, tags):
        with pytest.raises(AnsibleFilterError, match="Cannot tell the instance's login user"):
            FILTERS["login_user"](tags)

    def test_tags_must_be_a_dictionary(self):
        with pytest.raises(AnsibleFilterError, match="takes the tags of an instance"):
            FILTERS["login_user"]("admin")

    @pytest.mark.parametrize("hostile", ["ubuntu -oProxyCommand=touch /tmp/x", "admin\nProxyCommand touch /tmp/x"])
    def test_an_unsafe_login_user_tag_fails_the_task_whatever_the_family(self, hostile):
        with pytest.raises(AnsibleFilterError, match="Refusing the instance's LoginUser tag"):
            FILTERS["login_user"]({"LoginUser": hostile, "ImageFamily": "ubuntu"})


class TestUserNameProblemsFilter:
    def test_good_names(self):
        assert FILTERS["user_name_problems"](["admin", "grace", "_svc-1"]) == []
        assert FILTERS["user_name_problems"]("ubuntu") == []

    def test_one_message_per_bad_name(self):
        problems = FILTERS["user_name_problems"](
            ["admin", "Ada", "x -oProxyCommand=y", "bob\n"], "sshd_extra_allow_users"
        )
        assert problems == [
            f"Invalid sshd_extra_allow_users {bad!r}: use {identity.LOGIN_USER_RULE}"
            for bad in ("Ada", "x -oProxyCommand=y", "bob\n")
        ]

    def test_a_single_bad_name(self):
        assert FILTERS["user_name_problems"]("root; id", "sshd_login_user") == [
            f"Invalid sshd_login_user 'root; id': use {identity.LOGIN_USER_RULE}"
        ]


class TestImageNameFilter:
    def test_an_image_is_named_after_its_owner_project_and_version(self):
        assert FILTERS["image_name"]("hedylamarr", "ocean", "2026-12-01") == "jupyter-hedylamarr-ocean-2026-12-01"

    @pytest.mark.parametrize(
        ("owner", "project", "version", "message"),
        [
            ("Hedy", "ocean", "1", "Invalid owner 'Hedy'"),
            ("hedy", "ocean lab", "1", "Invalid image project 'ocean lab'"),
            ("hedy", "ocean", "", "Invalid image version ''"),
            ("hedy", "ocean", "-1", "Invalid image version '-1'"),
            ("hedy", "ocean", "v" * 41, "Invalid image version"),
            ("hedy", "ocean", 7, "Invalid image version 7"),
        ],
    )
    def test_parts_that_cannot_name_an_image_are_refused(self, owner, project, version, message):
        with pytest.raises(AnsibleFilterError, match=message):
            FILTERS["image_name"](owner, project, version)


class TestImageFamilyFilter:
    def test_image_as_ec2_ami_info_returns_it(self):
        image = {"image_id": "ami-1", "name": "debian-12-amd64-20250610-2137", "description": None, "tags": {}}
        assert FILTERS["image_family"](image) == "debian"

    def test_description_and_tags(self):
        assert FILTERS["image_family"]({"name": "lab-7", "description": "Amazon Linux 2023"}) == "amazon"
        assert FILTERS["image_family"]({"name": "lab-7", "tags": {"ImageFamily": "ubuntu"}}) == "ubuntu"

    def test_unknown_image_is_empty(self):
        assert FILTERS["image_family"]({"name": "windows-server-2022"}) == ""
        assert FILTERS["image_family"]({}) == ""

    def test_image_must_be_a_dictionary(self):
        with pytest.raises(AnsibleFilterError, match="takes an image"):
            FILTERS["image_family"]("debian-12")


class TestManagedTest:
    def test_managed(self):
        managed = IdentityTests().tests()["managed"]
        assert managed({"ManagedBy": "labcloud.jupyter"}) is True
        assert managed({"ManagedBy": "other"}) is False
        assert managed({}) is False
        assert managed(None) is False


class TestLookup:
    def run(self, *terms):
        return LookupModule().run(list(terms), variables={})

    def test_managed_by(self):
        assert self.run("managed_by") == ["labcloud.jupyter"]

    def test_every_term_in_order(self):
        assert self.run("owner_pattern", "owner_rule", "login_users", "tag_keys") == [
            r"^[a-z][a-z0-9-]{1,31}$",
            "2 to 32 lower-case letters, digits and hyphens, starting with a letter",
            {"debian": "admin", "ubuntu": "ubuntu", "amazon": "ec2-user"},
            {
                "name": "Name",
                "owner": "Owner",
                "managed_by": "ManagedBy",
                "login_user": "LoginUser",
                "image_family": "ImageFamily",
                "project": "Project",
                "version": "Version",
                "source_instance": "SourceInstance",
                "packages": "PackagesDigest",
                "verified": "Verified",
                "copy_of": "CopyOf",
            },
        ]

    def test_connection_defaults(self):
        assert self.run("key_dir", "jupyter_port", "local_port") == ["~/.labcloud/keys", 8887, 7005]

    def test_values_are_copies(self):
        self.run("login_users")[0]["debian"] = "root"
        assert identity.LOGIN_USERS["debian"] == "admin"

    def test_unknown_term(self):
        with pytest.raises(AnsibleLookupError, match=r"labcloud\.jupyter\.identity has no 'owners'; the terms are"):
            self.run("owners")
