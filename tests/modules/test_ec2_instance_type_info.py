"""ec2_instance_type_info against the local cloud's EC2 API over HTTP."""

from __future__ import annotations


def test_known_types_are_described(run_module):
    result = run_module("ec2_instance_type_info", {"instance_types": ["c5.large", "t3.micro"]})
    assert result["changed"] is False and result["missing"] == []
    assert result["instance_types"]["c5.large"]["vcpus"] == 2
    assert result["instance_types"]["c5.large"]["memory_mib"] == 4096
    assert "x86_64" in result["instance_types"]["t3.micro"]["architectures"]


def test_unknown_types_are_listed_not_fatal(run_module):
    result = run_module("ec2_instance_type_info", {"instance_types": ["c5.lrage", "t3.micro", "m9.huge"]})
    assert result.get("failed") is not True
    assert sorted(result["missing"]) == ["c5.lrage", "m9.huge"]
    assert list(result["instance_types"]) == ["t3.micro"]


def test_only_unknown_types(run_module):
    result = run_module("ec2_instance_type_info", {"instance_types": ["c5.lrage"]}, check=True)
    assert result["missing"] == ["c5.lrage"] and result["instance_types"] == {}


def test_empty_name_is_refused(run_module):
    result = run_module("ec2_instance_type_info", {"instance_types": [""]})
    assert result["failed"] is True and "non-empty" in result["msg"]
