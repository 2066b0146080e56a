"""Unit tests of the pure parts of labcloud.jupyter.elastic_ip: its filters and its view of an address."""

from ansible_collections.labcloud.jupyter.plugins.modules.elastic_ip import describe_address, lookup_filters


def address(allocation_id, **tags):
    """An address description as DescribeAddresses returns it."""
    return {
        "AllocationId": allocation_id,
        "PublicIp": "198.51.100.7",
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


def test_lookup_filters_are_exact_values():
    assert lookup_filters("alice", "jupyter-alice") == [
        {"Name": "domain", "Values": ["vpc"]},
        {"Name": "tag:Name", "Values": ["jupyter-alice"]},
        {"Name": "tag:Owner", "Values": ["alice"]},
    ]


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
