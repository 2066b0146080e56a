"""The S3 sync of the datasets role (roles/datasets' datasets_s3.py): which keys become which paths,
and what counts as unchanged, imported from the role."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "roles/datasets/files/usr/local/lib/labcloud/datasets_s3.py"
spec = importlib.util.spec_from_file_location("datasets_s3", SCRIPT)
datasets_s3 = importlib.util.module_from_spec(spec)
sys.modules["datasets_s3"] = datasets_s3
spec.loader.exec_module(datasets_s3)


def test_the_source_names_a_bucket_and_a_prefix_taken_as_a_directory() -> None:
    assert datasets_s3.split_source("s3://ocean-data/sst/2026") == ("ocean-data", "sst/2026/")
    assert datasets_s3.split_source("s3://ocean-data/sst/") == ("ocean-data", "sst/")
    assert datasets_s3.split_source("s3://ocean-data") == ("ocean-data", "")


def test_only_plain_relative_keys_become_paths() -> None:
    assert datasets_s3.relative_path("sst/a/b.nc", "sst/") == os.path.join("a", "b.nc")
    for key in ("sst/../etc/passwd", "sst//abs", "sst/./x", "sst/a/..", "sst/"):
        assert datasets_s3.relative_path(key, "sst/") is None, key


def test_a_file_of_the_same_size_and_time_is_unchanged_and_a_link_never_is(tmp_path: Path) -> None:
    data = tmp_path / "a.nc"
    data.write_bytes(b"12345")
    os.utime(data, (1_700_000_000, 1_700_000_000))
    assert datasets_s3.unchanged(str(data), 5, 1_700_000_000)
    assert not datasets_s3.unchanged(str(data), 6, 1_700_000_000)
    assert not datasets_s3.unchanged(str(data), 5, 1_700_000_001)
    assert not datasets_s3.unchanged(str(tmp_path / "missing"), 5, 1_700_000_000)
    link = tmp_path / "link.nc"
    link.symlink_to(data)
    assert not datasets_s3.unchanged(str(link), 5, 1_700_000_000)
