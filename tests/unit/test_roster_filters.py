"""Unit tests of the filters roster_entry, roster_owner, roster_entries and block_device_mappings."""

import os

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labcloud.jupyter.plugins.filter.ec2 import FilterModule as Ec2Filters
from ansible_collections.labcloud.jupyter.plugins.filter.roster import FilterModule as RosterFilters
from ansible_collections.labcloud.jupyter.plugins.module_utils import identity

FILTERS = {**RosterFilters().filters(), **Ec2Filters().filters()}
DEFAULT_KEY_DIR = os.path.expanduser(identity.KEY_DIR)


def test_the_filters():
    assert sorted(RosterFilters().filters()) == ["roster_entries", "roster_entry", "roster_owner"]
    assert sorted(Ec2Filters().filters()) == ["block_device_mappings"]


class TestRosterEntry:
    def test_a_name(self):
        assert FILTERS["roster_entry"]("ada") == {"owner": "ada"}

    def test_a_dictionary_is_copied(self):
        raw = {"owner": "ada", "instance_type": "t3.large"}
        found = FILTERS["roster_entry"](raw)
        assert found == raw
        found["owner"] = "grace"
        assert raw["owner"] == "ada"

    @pytest.mark.parametrize("raw", [None, 3, ["ada"], {"name": "ada"}, {"owner": 3}])
    def test_anything_else_fails(self, raw):
        with pytest.raises(AnsibleFilterError, match="A roster entry is an owner's name or a dictionary"):
            FILTERS["roster_entry"](raw)


class TestRosterOwner:
    @pytest.mark.parametrize(
        ("raw", "owner"),
        [("ada", "ada"), ({"owner": "grace", "local_port": 7010}, "grace"), ({"owner": None}, None)],
    )
    def test_the_owner(self, raw, owner):
        assert FILTERS["roster_owner"](raw) == owner

    @pytest.mark.parametrize("raw", [None, 3, ["ada"], {"name": "ada"}])
    def test_none_when_there_is_no_owner(self, raw):
        assert FILTERS["roster_owner"](raw) is None


class TestRosterEntries:
    def test_identity_position_and_defaults(self):
        first, second = FILTERS["roster_entries"](["ada", {"owner": "grace"}])
        assert first == {
            **identity.identity("ada", identity.KEY_DIR),
            "key_dir": identity.KEY_DIR,
            "index": 0,
            "local_port": identity.LOCAL_PORT,
        }
        assert first["key_file"] == os.path.join(DEFAULT_KEY_DIR, "jupyter-ada.pem")
        assert first["tags"] == {"Name": "jupyter-ada", "Owner": "ada", "ManagedBy": "labcloud.jupyter"}
        assert first["instance_filters"]["tag:Owner"] == "ada"
        assert (second["owner"], second["name"], second["index"]) == ("grace", "jupyter-grace", 1)
        assert second["local_port"] == identity.LOCAL_PORT + 1

    def test_key_dir_given(self, tmp_path):
        (ada,) = FILTERS["roster_entries"](["ada"], str(tmp_path))
        assert ada["key_dir"] == str(tmp_path)
        assert ada["key_file"] == str(tmp_path / "jupyter-ada.pem")

    @pytest.mark.parametrize("key_dir", [None, ""])
    def test_empty_key_dir_is_the_default(self, key_dir):
        (ada,) = FILTERS["roster_entries"](["ada"], key_dir)
        assert ada["key_dir"] == identity.KEY_DIR

    def test_common_settings_left_out_when_empty_and_an_entrys_own_wins(self):
        common = {"instance_type": "t3.large", "image": "", "root_size": None, "ssh_cidr": "203.0.113.7/32"}
        ada, grace = FILTERS["roster_entries"](["ada", {"owner": "grace", "instance_type": "m5.xlarge"}], None, common)
        assert ada["instance_type"] == "t3.large"
        assert grace["instance_type"] == "m5.xlarge"
        for found in (ada, grace):
            assert found["ssh_cidr"] == "203.0.113.7/32"
            assert "image" not in found
            assert "root_size" not in found

    def test_an_entry_cannot_override_its_identity(self):
        (ada,) = FILTERS["roster_entries"]([{"owner": "ada", "name": "other", "key_file": "/tmp/k"}])
        assert (ada["name"], ada["key_file"]) == ("jupyter-ada", os.path.join(DEFAULT_KEY_DIR, "jupyter-ada.pem"))

    @pytest.mark.parametrize(("first_port", "expected"), [(8000, [8000, 8001, 8002]), ("9000", [9000, 9001, 9002])])
    def test_local_ports_from_the_first_port(self, first_port, expected):
        entries = FILTERS["roster_entries"](["ada", "grace", "hedy"], None, None, first_port)
        assert [found["local_port"] for found in entries] == expected

    @pytest.mark.parametrize("first_port", [None, ""])
    def test_empty_first_port_is_the_default(self, first_port):
        entries = FILTERS["roster_entries"](["ada", "grace"], None, None, first_port)
        assert [found["local_port"] for found in entries] == [identity.LOCAL_PORT, identity.LOCAL_PORT + 1]

    def test_an_entrys_own_local_port_wins(self):
        entries = FILTERS["roster_entries"](["ada", {"owner": "grace", "local_port": "7100"}, "hedy"], None, None, 8000)
        assert [found["local_port"] for found in entries] == [8000, 7100, 8002]

    def test_a_common_local_port_is_every_entrys(self):
        entries = FILTERS["roster_entries"](["ada", "grace"], None, {"local_port": 7200})
        assert [found["local_port"] for found in entries] == [7200, 7200]

    @pytest.mark.parametrize("roster", [[], None])
    def test_no_roster(self, roster):
        assert FILTERS["roster_entries"](roster) == []

    @pytest.mark.parametrize("owner", ["Ada", "a", "ada lovelace"])
    def test_invalid_owner_fails(self, owner):
        with pytest.raises(AnsibleFilterError, match=r"Invalid owner .*: use 2 to 32 lower-case letters"):
            FILTERS["roster_entries"](["ada", owner])

    def test_invalid_entry_fails(self):
        with pytest.raises(AnsibleFilterError, match="A roster entry is an owner's name or a dictionary"):
            FILTERS["roster_entries"](["ada", {"name": "grace"}])


class TestBlockDeviceMappings:
    def test_defaults(self):
        assert FILTERS["block_device_mappings"]([{"device_name": "/dev/sdf", "size": "200"}]) == [
            {
                "device_name": "/dev/sdf",
                "ebs": {"volume_size": 200, "volume_type": "gp3", "encrypted": True, "delete_on_termination": False},
            }
        ]

    def test_given_settings_in_order_and_always_encrypted(self):
        volumes = [
            {"device_name": "/dev/sdf", "size": 10, "type": "io2", "delete_on_termination": True, "encrypted": False},
            {"device_name": "/dev/sdg", "size": 20, "type": ""},
        ]
        first, second = FILTERS["block_device_mappings"](volumes)
        assert first["ebs"] == {
            "volume_size": 10,
            "volume_type": "io2",
            "encrypted": True,
            "delete_on_termination": True,
        }
        assert second["device_name"] == "/dev/sdg"
        assert second["ebs"]["volume_type"] == "gp3"

    def test_null_delete_on_termination_keeps_the_volume(self):
        (mapping,) = FILTERS["block_device_mappings"](
            [{"device_name": "/dev/sdf", "size": 1, "delete_on_termination": None}]
        )
        assert mapping["ebs"]["delete_on_termination"] is False

    def test_no_volumes(self):
        assert FILTERS["block_device_mappings"]([]) == []
        assert FILTERS["block_device_mappings"](()) == []

    @pytest.mark.parametrize("volumes", [None, "/dev/sdf", {"device_name": "/dev/sdf", "size": 1}])
    def test_not_a_list_fails(self, volumes):
        with pytest.raises(AnsibleFilterError, match="block_device_mappings takes a list of volumes, not "):
            FILTERS["block_device_mappings"](volumes)

    @pytest.mark.parametrize("volume", [{"size": 1}, {"device_name": "/dev/sdf"}, "/dev/sdf", None])
    def test_a_volume_without_device_name_or_size_fails(self, volume):
        with pytest.raises(AnsibleFilterError, match="A volume needs device_name and size: "):
            FILTERS["block_device_mappings"]([volume])


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("roster_entries", ["ada", {"owner": "grace", "local_port": "tunnel"}], "grace"),
        ("block_device_mappings", [{"device_name": "/dev/sdf", "size": "big"}], "/dev/sdf"),
    ],
)
def test_a_value_that_is_not_a_number_fails_as_a_filter_error(name, value, match):
    with pytest.raises(AnsibleFilterError, match=match):
        FILTERS[name](value)

    def test_every_volume_gets_the_kms_key_when_one_is_given(self):
        volumes = [{"device_name": "/dev/xvda", "size": 100}, {"device_name": "/dev/sdf", "size": 20}]
        mappings = FILTERS["block_device_mappings"](volumes, "alias/lab-volumes")
        assert [m["ebs"]["kms_key_id"] for m in mappings] == ["alias/lab-volumes", "alias/lab-volumes"]
        assert all(m["ebs"]["encrypted"] is True for m in mappings)
        assert all("kms_key_id" not in m["ebs"] for m in FILTERS["block_device_mappings"](volumes, ""))
