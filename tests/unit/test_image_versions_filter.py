"""Unit tests of the filter image_versions: ec2_ami_info's images grouped as the clean-up groups them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labcloud.jupyter.plugins.filter.images import FilterModule

image_versions = FilterModule().filters()["image_versions"]


def ami(image_id: str, version: str, created: str, **extra):
    """An image the way amazon.aws.ec2_ami_info returns it (describe_image_attributes: true)."""
    tags = {"Owner": "ada", "Project": "ocean", "ManagedBy": "labcloud.jupyter", "Version": version}
    return {
        "image_id": image_id,
        "name": f"jupyter-ada-ocean-{version}{extra.pop('suffix', '')}",
        "creation_date": created,
        "public": False,
        "tags": tags | extra.pop("tags", {}),
        "launch_permissions": extra.pop("launch_permissions", []),
        "block_device_mappings": [
            {"device_name": "/dev/sda1", "ebs": {"snapshot_id": f"snap-{image_id}", "volume_size": 8}},
            {"device_name": "/dev/sdb", "virtual_name": "ephemeral0"},
        ],
        **extra,
    }


def test_versions_are_an_image_and_its_copies_newest_first():
    versions = image_versions(
        [
            ami("ami-1", "v1", "2026-10-01T10:00:00.000Z"),
            ami("ami-3", "v3", "2026-12-01T10:00:00.000Z"),
            ami("ami-2", "v2", "2026-11-01T10:00:00.000Z", launch_permissions=[{"user_id": "111122223333"}]),
            ami("ami-2c", "v2", "2026-11-02T10:00:00.000Z", suffix="-copy", tags={"CopyOf": "ami-2"}),
            ami("ami-0", "v0", "2026-09-01T10:00:00.000Z", public=True, launch_permissions=[{"group": "all"}]),
        ]
    )
    assert [v["version"] for v in versions] == ["v3", "v2", "v1", "v0"]
    v2 = versions[1]
    assert v2["images"] == ["ami-2", "ami-2c"]
    assert v2["names"] == ["jupyter-ada-ocean-v2", "jupyter-ada-ocean-v2-copy"]
    assert v2["snapshot_ids"] == ["snap-ami-2", "snap-ami-2c"]
    assert v2["gib"] == 16
    assert v2["created"] == "2026-11-01T10:00:00+00:00", "a version is as old as its first image"
    assert v2["shared_with"] == ["111122223333", "a copy made to share it (ami-2c)"]
    assert versions[3]["shared_with"] == ["everyone (public)"]
    assert versions[0]["shared_with"] == [] and versions[0]["owner"] == "ada" and versions[0]["project"] == "ocean"


def test_no_images_no_versions():
    assert image_versions([]) == []


@pytest.mark.parametrize("bad", [None, "ami-1", [{"image_id": "ami-1", "tags": ["Owner"]}], ["ami-1"]])
def test_bad_input_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match="image_versions"):
        image_versions(bad)
