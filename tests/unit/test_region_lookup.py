"""Unit tests of the lookup labcloud.jupyter.region: the order it finds the region in (the variable
region, AWS_REGION, AWS_DEFAULT_REGION, the AWS profile's region as the AWS CLI reads it) and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.labcloud.jupyter.plugins.lookup.region import LookupModule

CONFIG = """\
[default]
region = ap-southeast-2

[profile lab]
region = eu-north-1

[profile noregion]
output = json
"""


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment without region variables, and an AWS CLI config file of our own."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text(CONFIG)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return config


def region(variables: dict | None = None) -> str:
    (found,) = LookupModule().run([], variables=variables or {})
    return found


class TestOrder:
    def test_the_variable_wins_over_everything(self, aws_env, monkeypatch):
        monkeypatch.setenv("AWS_REGION", "us-east-2")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")
        assert region({"region": "eu-west-3"}) == "eu-west-3"

    def test_aws_region_before_aws_default_region(self, aws_env, monkeypatch):
        monkeypatch.setenv("AWS_REGION", "us-east-2")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")
        assert region() == "us-east-2"

    def test_aws_default_region_before_the_profile(self, aws_env, monkeypatch):
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")
        assert region() == "us-west-1"

    @pytest.mark.parametrize("empty", ["", "  "])
    def test_empty_values_count_as_unset(self, aws_env, monkeypatch, empty):
        monkeypatch.setenv("AWS_REGION", empty)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")
        assert region({"region": empty}) == "us-west-1"

    def test_the_default_profile_of_the_config_file(self, aws_env):
        assert region() == "ap-southeast-2"

    def test_the_profile_aws_profile_names(self, aws_env, monkeypatch):
        monkeypatch.setenv("AWS_PROFILE", "lab")
        assert region() == "eu-north-1"

    def test_the_environment_wins_over_the_profile(self, aws_env, monkeypatch):
        monkeypatch.setenv("AWS_PROFILE", "lab")
        monkeypatch.setenv("AWS_REGION", "ca-central-1")
        assert region() == "ca-central-1"


class TestErrors:
    def test_no_region_anywhere_says_how_to_set_one(self, aws_env, monkeypatch):
        monkeypatch.setenv("AWS_PROFILE", "noregion")
        with pytest.raises(AnsibleLookupError) as error:
            region()
        message = str(error.value)
        assert "No AWS region is set" in message
        assert f"the profile noregion in {aws_env}" in message
        for way in ("-e region=", "AWS_REGION", "aws configure"):
            assert way in message

    def test_no_config_file(self, aws_env, monkeypatch, tmp_path):
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing"))
        with pytest.raises(AnsibleLookupError, match="No AWS region is set"):
            region()

    def test_a_profile_that_does_not_exist(self, aws_env, monkeypatch):
        monkeypatch.setenv("AWS_PROFILE", "nosuchprofile")
        with pytest.raises(AnsibleLookupError, match=r"region of the profile nosuchprofile.*aws configure"):
            region()

    @pytest.mark.parametrize("bad", ["US-EAST-1", "useast1", "us-east-1a", "eu west 1", "us-east-1;x"])
    def test_not_a_region_name(self, aws_env, bad):
        with pytest.raises(AnsibleLookupError) as error:
            region({"region": bad})
        assert str(error.value).startswith(f"Region {bad} is not a region name: ")
        assert "(It came from the variable region.)" in str(error.value)

    def test_a_bad_environment_value_names_its_variable(self, aws_env, monkeypatch):
        monkeypatch.setenv("AWS_DEFAULT_REGION", "Frankfurt")
        with pytest.raises(AnsibleLookupError, match=r"Frankfurt is not .* came from AWS_DEFAULT_REGION"):
            region()

    def test_terms_are_refused(self, aws_env):
        with pytest.raises(AnsibleLookupError, match="takes no terms"):
            LookupModule().run(["us-east-1"], variables={})
