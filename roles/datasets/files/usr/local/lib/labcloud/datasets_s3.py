#!/usr/bin/python3
# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bring an S3 prefix into a directory, copying only the objects that are new or changed.

Run by the labcloud.jupyter.datasets role as the Jupyter user. The credentials are the ones the
SDK finds itself: on EC2, the instance profile's, from the instance metadata service. An object
is unchanged when a file of the same size and modification time (the object's LastModified) is
there already. Prints one JSON object: the files and bytes copied, the objects seen, and the keys
skipped because they cannot be a path under the directory.
"""

import argparse
import json
import os
import sys
from collections.abc import Iterator

import boto3
from botocore.utils import InstanceMetadataRegionFetcher


def split_source(source: str) -> tuple[str, str]:
    """Return the bucket and the key prefix (ending with / unless empty) of s3://bucket/prefix."""
    bucket, _, prefix = source[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    return bucket, prefix + "/" if prefix else ""


def relative_path(key: str, prefix: str) -> str | None:
    """Return the key's path below the prefix, or None when it is not a plain relative path."""
    parts = key[len(prefix) :].split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    return os.path.join(*parts)


def unchanged(path: str, size: int, mtime: int) -> bool:
    """Tell whether a regular file (not a link) of this size and modification time is there."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return False
    return os.path.isfile(path) and not os.path.islink(path) and found.st_size == size and int(found.st_mtime) == mtime


def region() -> str | None:
    """Return the region from the environment, else the instance's own (boto3 does not ask IMDS)."""
    return (
        os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or InstanceMetadataRegionFetcher().retrieve_region()
    )


def s3_client():
    """Return an S3 client; an endpoint in the environment is used as newer SDKs use it."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    return boto3.client("s3", region_name=region(), endpoint_url=endpoint)


def objects(client, bucket: str, prefix: str) -> Iterator[dict]:
    """Yield the objects under the prefix (folder markers left out)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                yield item


def download(client, bucket: str, key: str, path: str, mtime: int) -> None:
    """Download an object next to its path, give it the object's time, and move it into place."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    part = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".part")
    client.download_file(bucket, key, part)
    os.utime(part, (mtime, mtime))
    os.replace(part, path)


def sync(source: str, dest: str, check: bool) -> dict:
    """Copy the new and changed objects of the source into dest; in check mode only count them."""
    client = s3_client()
    bucket, prefix = split_source(source)
    copied, size_copied, seen = 0, 0, 0
    skipped: list[str] = []
    for item in objects(client, bucket, prefix):
        seen += 1
        relative = relative_path(item["Key"], prefix)
        if relative is None:
            skipped.append(item["Key"])
            continue
        path = os.path.join(dest, relative)
        mtime = int(item["LastModified"].timestamp())
        if unchanged(path, item["Size"], mtime):
            continue
        if not check:
            download(client, bucket, item["Key"], path, mtime)
        copied += 1
        size_copied += item["Size"]
    return {"files": copied, "bytes": size_copied, "objects": seen, "skipped": skipped}


def main() -> int:
    """Parse the arguments, sync, and print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="s3://bucket/prefix")
    parser.add_argument("--dest", required=True, help="directory the objects land in")
    parser.add_argument("--check", action="store_true", help="only count what would be copied")
    args = parser.parse_args()
    try:
        result = sync(args.source, args.dest, args.check)
    except Exception as error:  # the SDK's errors name the bucket and the reason
        print(json.dumps({"error": f"Could not sync {args.source}: {error}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
