"""Unit tests of the pure parts of module_utils/owner_lookup.py, on EC2-style descriptions built by hand."""

from pathlib import Path

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils import owner_lookup as lookup

INSTANCE = {"InstanceId": "i-0ada"}


def tags(**values):
    """An EC2 Tags list."""
    return [{"Key": key, "Value": value} for key, value in values.items()]


def entry(**settings):
    """A normalized entry of owner ada."""
    return lookup.normalized([{"owner": "ada", "ssh_cidr": "203.0.113.7/32", **settings}])[0]


def group(*cidrs, port=22, **tag_values):
    """A group admitting tcp/port from each CIDR, tagged Name=jupyter-ada Owner=ada (or tag_values)."""
    return {
        "GroupId": "sg-0ada",
        "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]} for cidr in cidrs
        ],
        "Tags": tags(**(tag_values or {"Name": "jupyter-ada", "Owner": "ada"})),
    }


KEY = {"KeyName": "jupyter-ada", "PublicKey": "ssh-ed25519 AAAA jupyter-ada"}


class TestNormalized:
    def test_defaults_and_the_owners_name(self):
        unset = dict.fromkeys(["key_file", "ssh_cidr", "instance_type", "image", "root_size"])
        expected = {"owner": "ada", "name": "jupyter-ada", "tags": {}, "image_family": "", "elastic_ip": True, **unset}
        assert lookup.normalized([{"owner": "ada"}]) == [expected]

    def test_given_settings_are_kept_and_none_means_the_default(self):
        (found,) = lookup.normalized(
            [
                {
                    "owner": "ada",
                    "name": "lab-ada",
                    "tags": None,
                    "image_family": None,
                    "instance_type": "t3.large",
                    "root_size": 30,
                    "public_key": "ssh-ed25519 AAAA",
                }
            ]
        )
        assert found["name"] == "lab-ada"
        assert (found["tags"], found["image_family"]) == ({}, "")
        assert (found["instance_type"], found["root_size"], found["public_key"]) == ("t3.large", 30, "ssh-ed25519 AAAA")

    def test_the_input_is_not_changed(self):
        raw = [{"owner": "ada", "tags": None}]
        lookup.normalized(raw)
        assert raw == [{"owner": "ada", "tags": None}]

    @pytest.mark.parametrize("owner", ["Ada", "a", "ada*", ""])
    def test_an_invalid_owner_gets_no_name(self, owner):
        assert lookup.normalized([{"owner": owner}])[0]["name"] == ""


class TestInputErrors:
    def test_good_entries(self):
        assert lookup.input_errors(lookup.normalized([{"owner": "ada"}, {"owner": "grace", "ssh_cidr": "::1"}])) == []

    def test_invalid_owner_is_one_error(self):
        (error,) = lookup.input_errors(lookup.normalized([{"owner": "Ada", "ssh_cidr": "nonsense"}]))
        assert error.startswith("Invalid owner 'Ada': use 2 to 32 lower-case letters")

    def test_bad_name_and_bad_cidr(self):
        errors = lookup.input_errors(lookup.normalized([{"owner": "ada", "name": "jupyter-*", "ssh_cidr": "1.2.3"}]))
        assert errors == [
            'jupyter-*: name: "jupyter-*" contains "*", which EC2 filters treat as a wildcard',
            "jupyter-*: ssh_cidr '1.2.3' is not an IP address or CIDR",
        ]

    def test_a_name_given_twice(self):
        errors = lookup.input_errors(lookup.normalized([{"owner": "ada"}, {"owner": "grace", "name": "jupyter-ada"}]))
        assert errors == ["jupyter-ada is given more than once in owners"]

    def test_every_error_at_once(self):
        errors = lookup.input_errors(
            lookup.normalized([{"owner": "x"}, {"owner": "ada", "ssh_cidr": "bad"}, {"owner": "ada"}])
        )
        assert len(errors) == 3
        assert errors[0].startswith("Invalid owner 'x'")
        assert errors[1] == "jupyter-ada: ssh_cidr 'bad' is not an IP address or CIDR"
        assert errors[2] == "jupyter-ada is given more than once in owners"


class TestAccessInOrder:
    def test_in_order(self):
        assert lookup.access_in_order(entry(), KEY, group("203.0.113.7/32"), 22, []) is True

    def test_a_bare_address_is_its_host_network(self):
        assert lookup.access_in_order(entry(ssh_cidr="203.0.113.7"), KEY, group("203.0.113.7/32"), 22, []) is True

    def test_extra_tags_kept_on_the_group_do_not_matter(self):
        extra = group("203.0.113.7/32", Name="jupyter-ada", Owner="ada", Keep="me")
        assert lookup.access_in_order(entry(), KEY, extra, 22, []) is True

    @pytest.mark.parametrize(
        ("key", "found", "port", "problems"),
        [
            (None, group("203.0.113.7/32"), 22, []),
            (KEY, None, 22, []),
            (KEY, group("203.0.113.7/32"), 22, ["a problem"]),
            (KEY, group("203.0.113.7/32"), 2222, []),
            (KEY, group("198.51.100.0/24"), 22, []),
            (KEY, group("203.0.113.7/32", "0.0.0.0/0"), 22, []),
            (KEY, group(), 22, []),
            (KEY, group("203.0.113.7/32", Name="jupyter-ada"), 22, []),
        ],
        ids=[
            "no key",
            "no group",
            "problems",
            "other port",
            "other source",
            "extra source",
            "no source",
            "missing tag",
        ],
    )
    def test_not_in_order(self, key, found, port, problems):
        assert lookup.access_in_order(entry(), key, found, port, problems) is False

    def test_a_missing_wanted_tag(self):
        assert lookup.access_in_order(entry(tags={"Course": "cs101"}), KEY, group("203.0.113.7/32"), 22, []) is False

    def test_no_ssh_cidr(self):
        assert lookup.access_in_order(entry(ssh_cidr=None), KEY, group("203.0.113.7/32"), 22, []) is False

    def test_private_key_file(self, tmp_path: Path):
        key_file = tmp_path / "jupyter-ada.pem"
        assert lookup.access_in_order(entry(key_file=str(key_file)), KEY, group("203.0.113.7/32"), 22, []) is False
        key_file.write_text("a key\n")
        assert lookup.access_in_order(entry(key_file=str(key_file)), KEY, group("203.0.113.7/32"), 22, []) is True


OWN = {"AllocationId": "eipalloc-0a", "InstanceId": "i-0ada", "Tags": tags(Name="jupyter-ada", Owner="ada")}


class TestAddressInOrder:
    def test_in_order(self):
        assert lookup.address_in_order(entry(), [OWN], INSTANCE) is True

    @pytest.mark.parametrize(
        ("addresses", "instance"),
        [
            ([], INSTANCE),
            ([OWN], None),
            ([OWN, {**OWN, "AllocationId": "eipalloc-0b"}], INSTANCE),
            ([{**OWN, "InstanceId": "i-0other"}], INSTANCE),
            ([{key: value for key, value in OWN.items() if key != "InstanceId"}], INSTANCE),
            ([{**OWN, "Tags": tags(Owner="ada")}], INSTANCE),
        ],
        ids=["no address", "no instance", "two addresses", "elsewhere", "unassociated", "missing tag"],
    )
    def test_not_in_order(self, addresses, instance):
        assert lookup.address_in_order(entry(), addresses, instance) is False

    def test_wanted_extra_tags(self):
        assert lookup.address_in_order(entry(tags={"Course": "cs101"}), [OWN], INSTANCE) is False
        tagged = {**OWN, "Tags": tags(Name="jupyter-ada", Owner="ada", Course="cs101")}
        assert lookup.address_in_order(entry(tags={"Course": "cs101"}), [tagged], INSTANCE) is True


class FakeModule:
    """Stands in for the module's run_command: ssh-keygen -y answers the given public key, or fails."""

    def __init__(self, public_key):
        self.public_key = public_key

    def run_command(self, command):
        assert command[:2] == ["ssh-keygen", "-y"]
        return (0, f"{self.public_key}\n", "") if self.public_key else (1, "", "load failed")


class TestKeyProblems:
    @pytest.fixture
    def key_file(self, tmp_path: Path) -> str:
        path = tmp_path / "jupyter-ada.pem"
        path.write_text("a private key\n")
        return str(path)

    def test_no_key_pair_or_no_key_file_is_no_problem(self, key_file):
        assert lookup.key_problems(FakeModule(None), entry(key_file=key_file), None, "eu-west-1") == []
        assert lookup.key_problems(FakeModule(None), entry(), KEY, "eu-west-1") == []

    def test_matching_key(self, key_file):
        module = FakeModule("ssh-ed25519 AAAA ada@laptop")
        assert lookup.key_problems(module, entry(key_file=key_file), KEY, "eu-west-1") == []

    def test_lost_private_key(self, tmp_path: Path):
        missing = str(tmp_path / "gone.pem")
        (problem,) = lookup.key_problems(FakeModule(None), entry(key_file=missing), KEY, "eu-west-1")
        assert problem.startswith(f"Key pair jupyter-ada exists in eu-west-1 but its private key {missing} is not")

    @pytest.mark.parametrize("local", ["ssh-ed25519 BBBB ada@laptop", None], ids=["other key", "unreadable"])
    def test_foreign_key(self, key_file, local):
        (problem,) = lookup.key_problems(FakeModule(local), entry(key_file=key_file), KEY, "eu-west-1")
        assert problem.startswith(f"Key pair jupyter-ada in eu-west-1 does not match the private key {key_file}")


class TestSnake:
    def test_tags_become_a_dict(self):
        described = lookup.snake({"InstanceId": "i-0a", "State": {"Name": "running"}, "Tags": tags(Owner="ada")})
        assert described == {"instance_id": "i-0a", "state": {"name": "running"}, "tags": {"Owner": "ada"}}
