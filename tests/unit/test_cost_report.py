"""Unit tests of the cost computations: the price table (bundled and from the Price List API), the
launch summary's cost, the report's rows, totals, Markdown and CSV, from EC2 descriptions made here."""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils import cost, prices
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import PriceTable

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
MANAGED = {"ManagedBy": "labcloud.jupyter"}
REPO = Path(__file__).resolve().parents[2]


def tagged(**tags: str) -> list:
    return [{"Key": k, "Value": v} for k, v in {**MANAGED, **tags}.items()]


def instance(instance_id: str, state: str, owner: str = "ada", project: str = "ocean", **more) -> dict:
    return {
        "InstanceId": instance_id,
        "InstanceType": "c5.large",
        "State": {"Name": state},
        "LaunchTime": NOW - timedelta(hours=10),
        "Tags": tagged(Owner=owner, Project=project, Name=f"jupyter-{owner}"),
        **more,
    }


class TestLaunchCost:
    def test_c5_large_with_100_gib_and_an_address(self):
        found = prices.launch_cost("c5.large", "us-east-1", [100])
        # 0.085 + 100 * 0.08 / 730 + 0.005 per hour: the instance's price alone is about 16 % short.
        assert found["hourly"] == pytest.approx(0.085 + 8 / 730 + 0.005, abs=1e-4)
        assert found["monthly"] == pytest.approx(62.05 + 8 + 3.65, abs=0.01)
        assert found["stopped_monthly"] == pytest.approx(8 + 3.65, abs=0.01)
        assert found["parts"] == {"instance": 0.085, "volumes": pytest.approx(0.011, abs=1e-4), "public_ipv4": 0.005}
        assert 0.15 < 1 - 0.085 / found["hourly"] < 0.17

    def test_several_volumes_and_no_address(self):
        found = prices.launch_cost("t3.micro", "us-west-2", [8, "12"], addresses=0)
        assert found["gib"] == 20 and found["parts"]["public_ipv4"] == 0

    @pytest.mark.parametrize(("instance_type", "region"), [("c5.large", "eu-west-1"), ("x9.huge", "us-east-1")])
    def test_unknown(self, instance_type, region):
        found = prices.launch_cost(instance_type, region, [100])
        assert found["known"] is False and found["hourly"] is None and found["monthly"] is None

    def test_the_lookup_serves_it(self):
        found = lookup(
            "'ebs_gb_month', 'hours_per_month', 'launch_cost', instance_type='c5.large', region='us-east-1', gib=[100]"
        )
        assert found == [prices.EBS_GB_MONTH, 730, prices.launch_cost("c5.large", "us-east-1", [100])]
        assert "launch_cost needs instance_type" in lookup("'launch_cost'", fails=True)


def lookup(arguments: str, fails: bool = False):
    """Run the prices lookup in a playbook's template, as roles call it; its value, or its error when it fails."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-m", "debug", "-a",
         f"msg={{{{ query('labcloud.jupyter.prices', {arguments}) | to_json }}}}"],
        cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json",
                       "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    result = json.loads(proc.stdout[proc.stdout.index("{") :])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert bool(result.get("failed")) == fails, result
    return result["msg"] if fails else json.loads(result["msg"])


def product(usd: str, usage: str = "BoxUsage:c5.large") -> str:
    """A GetProducts PriceList entry as the Price List API returns it (JSON text)."""
    return json.dumps(
        {
            "product": {"attributes": {"usagetype": usage}},
            "terms": {
                "OnDemand": {
                    "SKU.TERM": {
                        "priceDimensions": {
                            "SKU.TERM.FREE": {"unit": "Hrs", "pricePerUnit": {"USD": "0.0000000000"}},
                            "SKU.TERM.RATE": {"unit": "Hrs", "pricePerUnit": {"USD": usd}},
                        }
                    }
                }
            },
        }
    )


class TestPriceList:
    def test_on_demand_price_skips_the_free_dimension(self):
        assert prices.on_demand_usd(product("0.0960000000")) == 0.096
        assert prices.on_demand_usd(product("0.05", "USE2-EBS:SnapshotUsage"), "EBS:SnapshotUsage") == 0.05
        assert prices.on_demand_usd(product("0.0125", "USE2-EBS:SnapshotArchiveStorage"), "EBS:SnapshotUsage") is None
        assert prices.on_demand_usd(product("0")) is None

    def test_prices_from_the_api_and_what_it_lacks(self):
        asked = []

        def get_products(request):
            asked.append(request)
            values = {term["Field"]: term["Value"] for term in request["Filters"]}
            if values.get("instanceType") == "c5.large":
                return [product("0.0960000000")]
            if values.get("volumeApiName") == "gp3":
                return [product("0.0912", "EUC1-EBS:VolumeUsage.gp3")]
            if values.get("productFamily") == "Storage Snapshot":
                return [
                    product("0.0125", "EUC1-EBS:SnapshotArchiveStorage"),
                    product("0.054", "EUC1-EBS:SnapshotUsage"),
                ]
            if request["ServiceCode"] == "AmazonVPC":
                return [product("0.005", "EUC1-PublicIPv4:InUseAddress")]
            return []

        table = prices.from_price_list(get_products, "eu-central-1", ["c5.large", "z1d.large"], ["gp3"])
        assert table.from_api and table.instance("c5.large") == 0.096
        assert table.instance("z1d.large") is None, "not in the API's answer, nor in the table"
        assert table.volume("gp3", 100) == pytest.approx(9.12)
        assert table.snapshot(10) == pytest.approx(0.54) and table.ipv4() == 0.005
        described = table.describe()
        assert described["source"] == "api" and "eu-central-1" in described["text"]
        assert "bundled table (2025-06) for z1d.large" in described["text"]
        assert {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"} in asked[0]["Filters"]

    def test_nothing_from_the_api_means_the_bundled_table(self):
        table = prices.from_price_list(lambda request: [], "us-east-1", ["c5.large"], ["gp3"])
        assert not table.from_api and table.instance("c5.large") == 0.085
        assert table.describe()["source"] == "bundled"

    def test_the_bundled_table_says_its_date_source_and_regions(self):
        described = PriceTable("us-east-2").describe()
        assert described["date"] == "2025-06" and described["regions"] == ["us-east-1", "us-east-2", "us-west-2"]
        assert "AWS pricing pages" in described["text"]
        elsewhere = PriceTable("eu-west-1")
        assert elsewhere.instance("c5.large") is None and elsewhere.ipv4() is None
        assert "eu-west-1 is not one of them" in elsewhere.describe()["text"]


class TestRows:
    def resources(self) -> dict:
        running = instance("i-run", "running", PublicIpAddress="198.51.100.1")
        stopped = instance(
            "i-stop", "stopped", owner="grace", StateTransitionReason="User initiated (2026-12-02 08:00:00 GMT)"
        )
        return {
            "instances": [
                running,
                stopped,
                instance("i-gone", "terminated"),
                {**running, "InstanceId": "i-foreign", "Tags": []},
            ],
            "statuses": [{"InstanceId": "i-run", "InstanceStatus": {"Status": "ok"}}],
            "addresses": [
                {"AllocationId": "eipalloc-idle", "PublicIp": "198.51.100.9", "Tags": tagged(Owner="hedy")},
                {
                    "AllocationId": "eipalloc-stop",
                    "PublicIp": "198.51.100.8",
                    "InstanceId": "i-stop",
                    "AssociationId": "eipassoc-1",
                    "Tags": tagged(Owner="grace", Project="ocean"),
                },
                {"AllocationId": "eipalloc-foreign", "PublicIp": "198.51.100.7", "Tags": []},
            ],
            "volumes": [
                {"VolumeId": "vol-root", "Size": 100, "VolumeType": "gp3", "Attachments": [{"InstanceId": "i-run"}]},
                {
                    "VolumeId": "vol-loose",
                    "Size": 10,
                    "VolumeType": "io2",
                    "Attachments": [],
                    "Tags": tagged(Owner="hedy"),
                },
                {"VolumeId": "vol-foreign", "Size": 10, "VolumeType": "gp3", "Attachments": []},
            ],
            "images": [
                {
                    "ImageId": "ami-1",
                    "Name": "jupyter-ada-ocean-v1",
                    "State": "available",
                    "CreationDate": "2026-11-02T12:00:00.000Z",
                    "Tags": tagged(Owner="ada", Project="ocean"),
                    "BlockDeviceMappings": [{"Ebs": {"SnapshotId": "snap-img", "VolumeSize": 30}}],
                    "LaunchPermissions": [{"UserId": "210987654321"}, {"Group": "all"}],
                },
                {"ImageId": "ami-other", "State": "available", "BlockDeviceMappings": []},
            ],
            "snapshots": [
                {
                    "SnapshotId": "snap-img",
                    "VolumeSize": 30,
                    "State": "completed",
                    "Tags": tagged(Owner="ada", Project="ocean"),
                },
                {"SnapshotId": "snap-orphan", "VolumeSize": 12, "State": "completed", "Tags": tagged(Owner="hedy")},
            ],
        }

    def rows(self, **options) -> dict:
        found = cost.report_rows(self.resources(), NOW, PriceTable("us-east-1"), **options)
        return {(r["kind"], r["id"]): r for r in found}

    def test_only_the_collections_resources_and_the_volumes_of_its_instances(self):
        assert set(self.rows()) == {
            ("instance", "i-run"), ("public-ipv4", "198.51.100.1"), ("volume", "vol-root"), ("instance", "i-stop"),
            ("elastic-ip", "eipalloc-idle"), ("elastic-ip", "eipalloc-stop"), ("volume", "vol-loose"),
            ("image", "ami-1"), ("snapshot", "snap-img"), ("snapshot", "snap-orphan"),
        }  # fmt: skip

    def test_instances(self):
        rows = self.rows()
        running, stopped = rows[("instance", "i-run")], rows[("instance", "i-stop")]
        assert running["hours"] == 10 and running["cost_so_far_usd"] == pytest.approx(0.85)
        assert running["per_hour_usd"] == 0.085 and running["per_month_usd"] == pytest.approx(62.05)
        assert running["health"].startswith("running, EC2 status checks ok; JupyterLab not checked")
        assert stopped["hours"] == 6, "from its launch until it was stopped"
        assert stopped["per_hour_usd"] == 0 and stopped["per_month_usd"] == 0
        assert stopped["health"] == "stopped (no JupyterLab)"
        assert self.rows(health={"ada": "JupyterLab answers 200"})[("instance", "i-run")]["health"].endswith(
            "JupyterLab answers 200"
        )

    def test_addresses_bill_whether_idle_or_not(self):
        rows = self.rows()
        assert rows[("elastic-ip", "eipalloc-idle")]["state"] == "idle"
        assert rows[("elastic-ip", "eipalloc-stop")]["state"] == "associated with i-stop (stopped)"
        for key in (("elastic-ip", "eipalloc-idle"), ("elastic-ip", "eipalloc-stop"), ("public-ipv4", "198.51.100.1")):
            assert rows[key]["per_hour_usd"] == 0.005 and rows[key]["per_month_usd"] == pytest.approx(3.65)

    def test_storage(self):
        rows = self.rows()
        assert rows[("volume", "vol-root")]["owner"] == "ada", "reported with its instance"
        assert rows[("volume", "vol-root")]["per_month_usd"] == pytest.approx(8.0)
        assert rows[("volume", "vol-loose")]["per_month_usd"] == pytest.approx(1.25)
        image = rows[("image", "ami-1")]
        assert image["age_days"] == 30 and image["gib"] == 30 and image["per_month_usd"] == pytest.approx(1.5)
        assert image["shared_with"] == ["210987654321", "everyone (public)"]
        assert rows[("snapshot", "snap-img")]["per_month_usd"] == 0, "billed on the image's row"
        assert rows[("snapshot", "snap-orphan")]["per_month_usd"] == pytest.approx(0.6)

    def test_owners_narrow_the_report(self):
        assert {r["owner"] for r in self.rows(owners=["hedy"]).values()} == {"hedy"}

    def test_totals_add_up_and_unknown_amounts_are_said(self):
        rows = cost.report_rows(self.resources(), NOW, PriceTable("us-east-1"))
        totals = cost.totals(rows)
        assert totals[-1]["owner"] == "all"
        assert totals[-1]["per_month_usd"] == pytest.approx(sum(r["per_month_usd"] for r in rows))
        assert totals[-1]["per_month_usd"] == pytest.approx(sum(t["per_month_usd"] for t in totals[:-1]))
        unknown = cost.report_rows(self.resources(), NOW, PriceTable("eu-west-1"))
        assert "amount(s) unknown, left out" in cost.totals(unknown)[-1]["notes"]
        assert cost.totals(unknown)[-1]["per_month_usd"] == 0

    def test_markdown_and_csv(self):
        rows = cost.report_rows(self.resources(), NOW, PriceTable("us-east-1"))
        described = PriceTable("us-east-1").describe()
        text = cost.markdown(rows, NOW, "us-east-1", described, "health note")
        assert text.startswith("# Cost report of the labcloud.jupyter resources in us-east-1, 2026-12-02 12:00:00 UTC")
        for heading in ("## ada / ocean", "## grace / ocean", "## hedy / -", "## Class total"):
            assert heading in text
        assert "| instance | i-run | running | c5.large | 10.00 h | 0.85 | 0.0850 | 62.05 |" in text
        table = list(csv.DictReader(io.StringIO(cost.csv_text(rows))))
        assert len(table) == len(rows) + len(cost.totals(rows))
        assert table[-1]["owner"] == "all" and float(table[-1]["per_month_usd"]) == pytest.approx(
            sum(r["per_month_usd"] for r in rows)
        )

    def test_stopped_at(self):
        assert cost.stopped_at({"StateTransitionReason": "User initiated (2026-12-01 10:00:00 UTC)"}) == datetime(
            2026, 12, 1, 10, tzinfo=UTC
        )
        assert cost.stopped_at({"StateTransitionReason": ""}) is None


def test_ids_are_asked_for_in_chunks_ec2_accepts():
    from ansible_collections.labcloud.jupyter.plugins.module_utils.holdings import chunks

    ids = [f"i-{n}" for n in range(250)]
    assert [len(some) for some in chunks(ids)] == [100, 100, 50]
    assert [i for some in chunks(ids) for i in some] == ids and chunks([]) == []
