"""Unit tests of the zombie rules: what is a zombie, what is held, and that removing the zombies leaves
nothing a second look would call one."""

from datetime import UTC, datetime, timedelta

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import PriceTable
from ansible_collections.labcloud.jupyter.plugins.module_utils.zombies import (
    find_zombies,
    image_versions,
    monthly_total,
    settings_errors,
)

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
PRICES = PriceTable("us-east-1")


def tags(**more: str) -> list:
    return [{"Key": k, "Value": v} for k, v in {"ManagedBy": "labcloud.jupyter", **more}.items()]


def stopped_for(days: int) -> str:
    return f"User initiated ({NOW - timedelta(days=days):%Y-%m-%d %H:%M:%S} GMT)"


def image(image_id: str, version: str, days: int, owner: str = "ada", **more) -> dict:
    extra = {k: v for k, v in more.items() if k[0].isupper() and k not in ("LaunchPermissions", "Public")}
    return {
        "ImageId": image_id,
        "State": "available",
        "CreationDate": (NOW - timedelta(days=days)).isoformat(),
        "Tags": tags(Owner=owner, Project="ocean", Version=version, **extra),
        "BlockDeviceMappings": [{"Ebs": {"SnapshotId": f"snap-{image_id}", "VolumeSize": 10}}],
        "LaunchPermissions": more.get("LaunchPermissions", []),
    }


def snapshot(snapshot_id: str, size: int = 10, **more) -> dict:
    return {"SnapshotId": snapshot_id, "VolumeSize": size, "State": "completed", "Tags": tags(**more)}


def ids(found: dict, kind: str, which: str = "zombies") -> set:
    return {entry["id"] for entry in found[which] if entry["kind"] == kind}


def apply(resources: dict, found: dict) -> dict:
    """The resources once the zombies are removed (an instance terminated, what it kept detached)."""
    gone = {entry["id"] for entry in found["zombies"]}
    after = {}
    for kind, items in resources.items():
        after[kind] = []
        for item in items:
            key = next(item[k] for k in ("InstanceId", "AllocationId", "VolumeId", "ImageId", "SnapshotId", "KeyName",
                                          "GroupId") if k in item)  # fmt: skip
            if key in gone:
                continue
            going = [a for a in item.get("Attachments", []) if a["InstanceId"] in gone]
            if kind == "volumes" and any(a["DeleteOnTermination"] for a in going):
                continue
            if kind == "volumes" and going:
                item = {**item, "State": "available", "Attachments": []}
            if kind == "addresses" and item.get("InstanceId") in gone:
                item = {k: v for k, v in item.items() if k not in ("InstanceId", "AssociationId")}
            after[kind].append(item)
    return after


def a_class() -> dict:
    return {
        "instances": [
            {"InstanceId": "i-ada", "State": {"Name": "running"}, "Tags": tags(Owner="ada")},
            {
                "InstanceId": "i-carol",
                "State": {"Name": "stopped"},
                "StateTransitionReason": stopped_for(40),
                "Tags": tags(Owner="carol"),
                "BlockDeviceMappings": [{"Ebs": {"VolumeId": "vol-carol-root", "DeleteOnTermination": True}}],
            },
            {
                "InstanceId": "i-dan",
                "State": {"Name": "stopped"},
                "StateTransitionReason": stopped_for(40),
                "Tags": tags(Owner="dan"),
            },
            {
                "InstanceId": "i-erin",
                "State": {"Name": "stopped"},
                "StateTransitionReason": stopped_for(3),
                "Tags": tags(Owner="erin"),
            },
            {
                "InstanceId": "i-zed",
                "State": {"Name": "stopped"},
                "StateTransitionReason": stopped_for(400),
                "Tags": [{"Key": "Owner", "Value": "zed"}],
            },
        ],
        "addresses": [
            {
                "AllocationId": "eip-ada",
                "PublicIp": "198.51.100.1",
                "InstanceId": "i-ada",
                "AssociationId": "a1",
                "Tags": tags(Owner="ada"),
            },
            {"AllocationId": "eip-bob", "PublicIp": "198.51.100.2", "Tags": tags(Owner="bob")},
            {
                "AllocationId": "eip-carol",
                "PublicIp": "198.51.100.3",
                "InstanceId": "i-carol",
                "AssociationId": "a3",
                "Tags": tags(Owner="carol"),
            },
            {"AllocationId": "eip-zed", "PublicIp": "198.51.100.4", "Tags": [{"Key": "Owner", "Value": "zed"}]},
        ],
        "volumes": [
            {
                "VolumeId": "vol-carol-root",
                "Size": 8,
                "VolumeType": "gp3",
                "State": "in-use",
                "Attachments": [{"InstanceId": "i-carol", "DeleteOnTermination": True}],
                "Tags": tags(Owner="carol"),
            },
            {
                "VolumeId": "vol-carol-data",
                "Size": 50,
                "VolumeType": "gp3",
                "State": "in-use",
                "Attachments": [{"InstanceId": "i-carol", "DeleteOnTermination": False}],
                "Tags": tags(Owner="carol"),
            },
            {
                "VolumeId": "vol-bob",
                "Size": 25,
                "VolumeType": "gp3",
                "State": "available",
                "Attachments": [],
                "Tags": tags(Owner="bob"),
            },
            {"VolumeId": "vol-zed", "Size": 25, "VolumeType": "gp3", "State": "available", "Attachments": []},
        ],
        "images": [
            image("ami-v1", "v1", 120, LaunchPermissions=[{"UserId": "210987654321"}]),
            image("ami-v2", "v2", 90),
            image("ami-v3", "v3", 60),
            image("ami-v3-copy", "v3", 59, CopyOf="ami-v3"),
            image("ami-v4", "v4", 30),
            image("ami-carol", "v1", 45, owner="carol", SourceInstance="i-carol"),
            {
                "ImageId": "ami-zed",
                "State": "available",
                "CreationDate": "2020-01-01T00:00:00Z",
                "BlockDeviceMappings": [],
            },
        ],
        "snapshots": [
            snapshot("snap-ami-v1"),
            snapshot("snap-ami-v2"),
            snapshot("snap-ami-v3"),
            snapshot("snap-ami-v4"),
            snapshot("snap-ami-carol"),
            snapshot("snap-orphan", 12, Owner="bob"),
            {"SnapshotId": "snap-zed", "VolumeSize": 5, "State": "completed"},
            snapshot("snap-pending", 5),
            {**snapshot("snap-making"), "State": "pending"},
        ],
        "key_pairs": [
            {"KeyName": "jupyter-ada", "Tags": tags(Owner="ada")},
            {"KeyName": "jupyter-bob", "Tags": tags(Owner="bob")},
            {"KeyName": "jupyter-carol", "Tags": tags(Owner="carol")},
            {"KeyName": "jupyter-dan", "Tags": tags(Owner="dan")},
            {"KeyName": "jupyter-zed", "Tags": [{"Key": "Owner", "Value": "zed"}]},
        ],
        "security_groups": [
            {"GroupId": "sg-bob", "GroupName": "jupyter-bob", "Tags": tags(Owner="bob")},
            {"GroupId": "sg-erin", "GroupName": "jupyter-erin", "Tags": tags(Owner="erin")},
            {"GroupId": "sg-default", "GroupName": "default", "Tags": tags()},
        ],
    }


class TestZombies:
    def test_what_is_a_zombie(self):
        found = find_zombies(a_class(), NOW, PRICES, keep=2, stopped_days=30)
        assert ids(found, "instance") == {"i-carol"}
        assert ids(found, "elastic-ip") == {"eip-bob", "eip-carol"}
        assert ids(found, "volume") == {"vol-bob", "vol-carol-data"}, "the root goes with the instance"
        assert ids(found, "image") == {"ami-v2"}
        assert ids(found, "snapshot") == {"snap-ami-v2", "snap-orphan", "snap-pending"}
        assert ids(found, "key-pair") == {"jupyter-bob", "jupyter-carol"}
        assert ids(found, "security-group") == {"sg-bob"}
        assert ids(found, "image", "held") == {"ami-v1"}
        assert ids(found, "instance", "held") == {"i-dan"}

    def test_the_order_of_removal_and_the_costs(self):
        found = find_zombies(a_class(), NOW, PRICES, keep=2)
        kinds = [entry["kind"] for entry in found["zombies"]]
        assert kinds == sorted(kinds, key=["instance", "elastic-ip", "volume", "image", "snapshot", "key-pair",
                                           "security-group"].index)  # fmt: skip
        cost = {entry["id"]: entry["per_month_usd"] for entry in found["zombies"]}
        assert cost["i-carol"] == pytest.approx(0.64), "its root volume, which goes with it"
        assert cost["eip-bob"] == pytest.approx(3.65) and cost["vol-bob"] == pytest.approx(2.0)
        assert cost["ami-v2"] == pytest.approx(0.5) and cost["snap-ami-v2"] == 0
        assert cost["snap-orphan"] == pytest.approx(0.6) and cost["jupyter-bob"] == 0
        assert monthly_total(found["zombies"]) == pytest.approx(sum(cost.values()))

    def test_a_second_look_after_the_removal_finds_nothing(self):
        resources = a_class()
        found = find_zombies(resources, NOW, PRICES, keep=2)
        again = find_zombies(apply(resources, found), NOW, PRICES, keep=2)
        assert again["zombies"] == []
        assert again["held"] == found["held"]

    def test_force_removes_the_shared_version_and_the_stopped_instance_without_image(self):
        found = find_zombies(a_class(), NOW, PRICES, keep=2, force=True)
        assert ids(found, "image") == {"ami-v1", "ami-v2"} and ids(found, "instance") == {"i-carol", "i-dan"}
        assert "jupyter-dan" in ids(found, "key-pair")
        assert found["held"] == []

    def test_age_spares_the_newest_version(self):
        found = find_zombies(a_class(), NOW, PRICES, keep=10, image_days=1, stopped_days=0)
        assert ids(found, "image") == {"ami-v2"}
        assert ids(found, "image", "held") == {"ami-v1", "ami-v3", "ami-v3-copy"}, "shared, or copied to be shared"
        assert "ami-v4" not in ids(found, "image") and "ami-carol" not in ids(found, "image")
        assert ids(found, "instance") == set() and ids(found, "instance", "held") == set()

    def test_an_image_of_the_instance_that_is_itself_removed_does_not_save_it(self):
        resources = a_class()
        resources["images"].append(image("ami-carol-2", "v2", 10, owner="carol"))
        found = find_zombies(resources, NOW, PRICES, keep=1)
        assert "ami-carol" in ids(found, "image") and ids(found, "instance") == set()
        assert ids(found, "instance", "held") == {"i-carol", "i-dan"}

    def test_nothing_untagged_is_ever_touched(self):
        found = find_zombies(a_class(), NOW, PRICES, keep=1, image_days=1, stopped_days=1, force=True)
        touched = {entry["id"] for entry in found["zombies"]}
        assert not touched & {"i-zed", "eip-zed", "vol-zed", "ami-zed", "snap-zed", "jupyter-zed"}


class TestVersions:
    def test_a_version_is_an_image_and_its_copies_newest_first(self):
        versions = image_versions(a_class()["images"])
        ada = versions[("ada", "ocean")]
        assert [v["version"] for v in ada] == ["v4", "v3", "v2", "v1"]
        assert {i["ImageId"] for i in ada[1]["images"]} == {"ami-v3", "ami-v3-copy"}
        assert ada[1]["shared_with"] == ["a copy made to share it (ami-v3-copy)"]


@pytest.mark.parametrize(
    ("keep", "image_days", "stopped_days", "problem"),
    [
        (0, 0, 30, "keep must be a whole number, 1 or more"),
        ("two", 0, 30, "keep must be"),
        (3, -1, 30, "image_days must be a whole number, 0 or more"),
        (3, "1.5", 30, "image_days must be"),
        (3, 0, True, "stopped_days must be"),
    ],
)
def test_settings_errors(keep, image_days, stopped_days, problem):
    errors = settings_errors(keep, image_days, stopped_days)
    assert len(errors) == 1 and problem in errors[0]


def test_good_settings():
    assert settings_errors(1, "0", 30) == []


def test_versions_without_a_date_count_as_the_oldest():
    undated = [{**image(f"ami-{n}", f"u{n}", 1), "CreationDate": ""} for n in range(2)]
    versions = image_versions([*undated, image("ami-dated", "d", 500)])[("ada", "ocean")]
    assert versions[0]["version"] == "d"
