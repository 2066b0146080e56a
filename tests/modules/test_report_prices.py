"""Where report.yml's prices come from: the AWS Price List API when it answers (here a stand-in of its
GetProducts on 127.0.0.1, reached through AWS_ENDPOINT_URL_PRICING as a user would point boto3 at it),
and the bundled table when asked for or when the API cannot be reached; the report says which."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from owner_cloud import allocate, owner_tags, tag_spec, wait_for_state

from tests.modules.conftest import REPO, module_env

PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
# What the stand-in answers (unlike the bundled table, so that the report shows which it used).
API_PRICES = {"c5.large": "0.0999", "volume": "0.2", "snapshot": "0.07", "ipv4": "0.006"}


def price_entry(usd: str, usage: str) -> str:
    """A PriceList entry of GetProducts, as JSON text."""
    dimension = {"unit": "Hrs", "pricePerUnit": {"USD": usd}}
    return json.dumps(
        {
            "product": {"attributes": {"usagetype": usage}},
            "terms": {"OnDemand": {"T": {"priceDimensions": {"D": dimension}}}},
        }
    )


class PriceListStandIn:
    """GetProducts of the Price List API (JSON 1.1 protocol) on 127.0.0.1, recording each request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                stand_in.requests.append(request)
                payload = json.dumps({"FormatVersion": "aws_v1", "PriceList": stand_in.answer(request)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def answer(request: dict[str, Any]) -> list[str]:
        terms = {term["Field"]: term["Value"] for term in request.get("Filters", [])}
        if request.get("ServiceCode") == "AmazonVPC":
            return [
                price_entry("0.0", "USE1-PublicIPv4:IdleAddress"),
                price_entry(API_PRICES["ipv4"], "PublicIPv4:InUseAddress"),
            ]
        if terms.get("instanceType") == "c5.large" and terms.get("operatingSystem") == "Linux":
            return [price_entry(API_PRICES["c5.large"], "BoxUsage:c5.large")]
        if terms.get("productFamily") == "Storage" and terms.get("volumeApiName"):
            return [price_entry(API_PRICES["volume"], f"EBS:VolumeUsage.{terms['volumeApiName']}")]
        if terms.get("productFamily") == "Storage Snapshot":
            return [price_entry(API_PRICES["snapshot"], "EBS:SnapshotUsage")]
        return []

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def price_list():
    stand_in = PriceListStandIn()
    try:
        yield stand_in
    finally:
        stand_in.stop()


def run_report(endpoint: str, pricing: str, *extra: str) -> subprocess.CompletedProcess:
    env = module_env(endpoint, {"AWS_ENDPOINT_URL_PRICING": pricing})
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    return subprocess.run(
        [str(PLAYBOOK), "playbooks/report.yml", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def a_vm(aws) -> str:
    """A running c5.large of the collection with its Elastic IP."""
    image_id = aws.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = {**owner_tags("ada"), "Project": "ocean"}
    instance_id = aws.ec2.run_instances(
        ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="c5.large", TagSpecifications=tag_spec("instance", tags)
    )["Instances"][0]["InstanceId"]
    wait_for_state(aws, instance_id, "running")
    allocate(aws, {"Name": "jupyter-ada", "Owner": "ada", "ManagedBy": "labcloud.jupyter"}, instance_id)
    return instance_id


def rows_of(path: Path) -> dict[str, dict[str, str]]:
    return {row["kind"]: row for row in csv.DictReader(path.open()) if row["owner"] == "ada"}


def test_the_price_list_api_is_used_when_it_answers(endpoint, aws, price_list, tmp_path):
    instance_id = a_vm(aws)
    result = run_report(endpoint, price_list.endpoint, "-e", f"report_dir={tmp_path}")
    assert result.returncode == 0, result.stdout[-3000:]
    rows = rows_of(tmp_path / "cost-us-east-1.csv")
    assert rows["instance"]["id"] == instance_id
    assert float(rows["instance"]["per_hour_usd"]) == 0.0999
    assert float(rows["elastic-ip"]["per_hour_usd"]) == 0.006
    (volume,) = aws.ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])[
        "Volumes"
    ]
    assert float(rows["volume"]["per_month_usd"]) == pytest.approx(volume["Size"] * 0.2)
    markdown = (tmp_path / "cost-us-east-1.md").read_text()
    assert "Prices: AWS Price List API (on-demand, us-east-1, read now)" in markdown
    asked = [{t["Field"]: t["Value"] for t in r["Filters"]} for r in price_list.requests]
    assert {"regionCode": "us-east-1", "instanceType": "c5.large"}.items() <= asked[0].items()


def test_the_bundled_table_when_asked_for_or_when_the_api_cannot_be_reached(endpoint, aws, price_list, tmp_path):
    a_vm(aws)
    bundled = run_report(endpoint, price_list.endpoint, "-e", f"report_dir={tmp_path}", "-e", "prices=bundled")
    assert bundled.returncode == 0, bundled.stdout[-3000:]
    assert price_list.requests == [], "not asked"
    assert float(rows_of(tmp_path / "cost-us-east-1.csv")["instance"]["per_hour_usd"]) == 0.085

    price_list.stop()
    unreachable = run_report(endpoint, price_list.endpoint, "-e", f"report_dir={tmp_path}")
    assert unreachable.returncode == 0, unreachable.stdout[-3000:]
    assert float(rows_of(tmp_path / "cost-us-east-1.csv")["instance"]["per_hour_usd"]) == 0.085
    assert "Prices: bundled table of 2025-06" in (tmp_path / "cost-us-east-1.md").read_text()
