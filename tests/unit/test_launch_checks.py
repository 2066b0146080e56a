"""Unit tests of module_utils/launch_checks.py: what an image request means, and what stops a launch."""

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils import launch_checks as checks


def image(image_id="ami-0aaa", **fields):
    """An image as DescribeImages returns it: available, x86_64, an 8 GiB root snapshot, plus fields."""
    described = {
        "ImageId": image_id,
        "Name": "debian-12-amd64-20250101-1200",
        "Description": "Lab image",
        "State": "available",
        "Architecture": "x86_64",
        "RootDeviceName": "/dev/xvda",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvdb", "Ebs": {"VolumeSize": 100}},
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "SnapshotId": "snap-0a"}},
        ],
        "CreationDate": "2025-01-01T12:00:00.000Z",
        "Tags": [],
    }
    described.update(fields)
    return described


class TestRegion:
    @pytest.mark.parametrize("region", ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"])
    def test_region_names_pass(self, region):
        assert checks.region_error(region) is None

    @pytest.mark.parametrize("region", [None, ""])
    def test_no_region(self, region):
        assert checks.region_error(region) == (
            "No region given: set -e region=<name> (for example us-west-2) or export AWS_REGION."
        )

    @pytest.mark.parametrize("region", ["us-east", "US-EAST-1", "useast1", "us-east-1a", " us-east-1", "eu_west_1"])
    def test_not_a_region_name(self, region):
        message = checks.region_error(region)
        assert message.startswith(f"Region {region} is not a region name: ")
        assert "export AWS_REGION" in message

    def test_unknown_region_lists_the_regions_sorted(self):
        message = checks.unknown_region("us-nowhere-1", ["us-west-2", "eu-west-1", "us-east-1"])
        assert message == (
            "Region us-nowhere-1 does not exist or is not enabled in this account: "
            "use one of eu-west-1, us-east-1, us-west-2."
        )


class TestImageQuery:
    def test_ami_id(self):
        assert checks.image_query("ami-0123456789abcdef0") == {"ImageIds": ["ami-0123456789abcdef0"]}

    @pytest.mark.parametrize("owner", ["136693071363", "self", "amazon", "aws-marketplace"])
    def test_owner_and_pattern(self, owner):
        assert checks.image_query(f"{owner}/debian-12-amd64-*") == {
            "Owners": [owner],
            "Filters": [{"Name": "name", "Values": ["debian-12-amd64-*"]}],
        }

    def test_a_pattern_with_slashes_keeps_them(self):
        query = checks.image_query("099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*")
        assert query["Owners"] == ["099720109477"]
        assert query["Filters"][0]["Values"] == ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]

    @pytest.mark.parametrize(
        "request_",
        [
            "lab-image-*",
            # Not an owner: an 11-digit account, another alias, a name with a slash.
            "13669307136/debian-*",
            "microsoft/windows-*",
            "ubuntu/images/hvm-ssd/*",
            # An owner without a pattern.
            "amazon/",
        ],
    )
    def test_anything_else_is_a_pattern_of_the_callers_own_images(self, request_):
        assert checks.image_query(request_) == {
            "Owners": ["self"],
            "Filters": [{"Name": "name", "Values": [request_]}],
        }


class TestNewestImage:
    def test_ami_by_id_whatever_its_state(self):
        wanted = image("ami-0b", State="pending")
        assert checks.newest_image([image("ami-0a"), wanted], "ami-0b") is wanted

    def test_ami_by_id_not_found(self):
        assert checks.newest_image([image("ami-0a")], "ami-0b") is None

    def test_newest_available_of_a_pattern(self):
        old = image("ami-old", CreationDate="2024-01-01T00:00:00.000Z")
        new = image("ami-new", CreationDate="2025-06-01T00:00:00.000Z")
        newer_pending = image("ami-pending", CreationDate="2025-07-01T00:00:00.000Z", State="pending")
        newest_failed = image("ami-failed", CreationDate="2025-08-01T00:00:00.000Z", State="failed")
        assert checks.newest_image([old, newer_pending, new, newest_failed], "debian-12-*") is new

    @pytest.mark.parametrize("images", [[], [image(State="pending"), image("ami-0b", State="failed")]])
    def test_none_available(self, images):
        assert checks.newest_image(images, "debian-12-*") is None


class TestRootSize:
    def test_size_of_the_root_device(self):
        assert checks.root_size(image()) == 8

    @pytest.mark.parametrize(
        "fields",
        [
            {"BlockDeviceMappings": []},
            {"BlockDeviceMappings": None},
            {"RootDeviceName": "/dev/sda1"},
            {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda"}]},
            {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {}}]},
        ],
    )
    def test_one_when_the_image_does_not_say(self, fields):
        assert checks.root_size(image(**fields)) == 1


class TestDescribeImage:
    def test_described_in_snake_case(self):
        assert checks.describe_image(image(Tags=[{"Key": "Project", "Value": "ocean"}])) == {
            "image_id": "ami-0aaa",
            "name": "debian-12-amd64-20250101-1200",
            "state": "available",
            "architecture": "x86_64",
            "root_device_name": "/dev/xvda",
            "root_size": 8,
            "family": "debian",
            "login_user": "admin",
            "creation_date": "2025-01-01T12:00:00.000Z",
            "tags": {"Project": "ocean"},
        }

    @pytest.mark.parametrize(
        ("fields", "family", "user"),
        [
            ({"Name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101"}, "ubuntu", "ubuntu"),
            ({"Name": "al2023-ami-2023.6-kernel-6.1-x86_64"}, "amazon", "ec2-user"),
            ({"Name": "lab-image", "Description": "Amazon Linux 2023 with JupyterLab"}, "amazon", "ec2-user"),
            ({"Name": "lab-image", "Tags": [{"Key": "ImageFamily", "Value": "ubuntu"}]}, "ubuntu", "ubuntu"),
            # A known ImageFamily tag wins over the name.
            ({"Tags": [{"Key": "ImageFamily", "Value": "amazon"}]}, "amazon", "ec2-user"),
            ({"Name": "lab-image", "Description": None}, "", None),
            ({"Name": "lab-image", "Tags": [{"Key": "ImageFamily", "Value": "gentoo"}]}, "", None),
        ],
    )
    def test_family_and_login_user(self, fields, family, user):
        described = checks.describe_image(image(**fields))
        assert (described["family"], described["login_user"]) == (family, user)

    def test_the_given_family_wins(self):
        described = checks.describe_image(image(), "ubuntu")
        assert (described["family"], described["login_user"]) == ("ubuntu", "ubuntu")


class TestImageProblems:
    def test_missing(self):
        assert checks.image_problems("debian-13-*", "eu-west-1", None) == [
            "No image debian-13-* in eu-west-1: give an AMI ID of this region that you may launch "
            "(-e image=ami-...), or <owner account>/<name pattern> of an existing image "
            "(for example 136693071363/debian-12-amd64-*)."
        ]

    @pytest.mark.parametrize("state", ["pending", "failed", "deregistered"])
    def test_not_available(self, state):
        (problem,) = checks.image_problems("ami-0aaa", "eu-west-1", image(State=state))
        assert problem.startswith(f"Image ami-0aaa is {state}, not available: give an AMI ID")

    def test_available(self):
        assert checks.image_problems("ami-0aaa", "eu-west-1", image()) == []


class TestFitProblems:
    def test_fine(self):
        assert checks.fit_problems(image(), "t3.micro", ["x86_64", "i386"], 8, "") == []

    def test_root_too_small(self):
        assert checks.fit_problems(image(), "t3.micro", ["x86_64"], 7, "") == [
            "Root volume of 7 GiB is smaller than the 8 GiB snapshot of image ami-0aaa: set the root size "
            "(ec2_instance_root_size) to at least 8."
        ]

    def test_architecture_mismatch(self):
        assert checks.fit_problems(image(Architecture="arm64"), "t3.micro", ["x86_64", "i386"], 8, "") == [
            "Image ami-0aaa is arm64, which instance type t3.micro cannot run (x86_64, i386): choose an image or "
            "a type of the same architecture."
        ]

    def test_architectures_unknown_are_not_a_problem(self):
        assert checks.fit_problems(image(Architecture="arm64"), "t3.micro", [], 8, "") == []

    def test_unknown_family(self):
        assert checks.fit_problems(image(Name="lab-image", Description=""), "t3.micro", ["x86_64"], 8, "") == [
            "Cannot tell the login user of image ami-0aaa (lab-image): tag it ImageFamily=<family> or set the "
            "image family (ec2_instance_image_family) to one of debian, ubuntu, amazon."
        ]

    def test_unknown_family_is_fine_when_the_family_is_given(self):
        assert checks.fit_problems(image(Name="lab-image", Description=""), "t3.micro", ["x86_64"], 8, "ubuntu") == []

    def test_every_problem_at_once(self):
        problems = checks.fit_problems(
            image(Name="lab-image", Description="", Architecture="arm64"), "t3.micro", ["x86_64"], 2, ""
        )
        assert [problem.split(" ")[0] for problem in problems] == ["Root", "Image", "Cannot"]


class TestSamePublicKey:
    KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ1"

    def test_comments_do_not_matter(self):
        assert checks.same_public_key(f"{self.KEY} jupyter-ada", f"{self.KEY} ada@laptop")
        assert checks.same_public_key(self.KEY, f"{self.KEY} ada@laptop")

    def test_another_key_or_type(self):
        assert not checks.same_public_key(self.KEY, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2")
        assert not checks.same_public_key(self.KEY, self.KEY.replace("ssh-ed25519", "ssh-rsa"))


class TestMessages:
    def test_unknown_type(self):
        message = checks.unknown_type("t9.tiny", "eu-west-1")
        assert message.startswith("Instance type t9.tiny does not exist in eu-west-1: check its spelling")
        assert message.endswith("aws ec2 describe-instance-types --region eu-west-1.")

    def test_several_instances(self):
        message = checks.several_instances(
            "ada", "jupyter-ada", [{"InstanceId": "i-0a"}, {"InstanceId": "i-0b"}, {"InstanceId": "i-0c"}]
        )
        assert message.startswith("ada has 3 instances named jupyter-ada (i-0a, i-0b, i-0c): terminate the ones")

    def test_foreign_group(self):
        message = checks.foreign_group("ada", "jupyter-ada", {"GroupId": "sg-0a"})
        assert message.startswith(
            "Security group jupyter-ada (sg-0a) exists but is not tagged Owner=ada: it was not made for this owner"
        )

    def test_lost_private_key(self):
        message = checks.lost_private_key("jupyter-ada", "eu-west-1", "/keys/jupyter-ada.pem")
        assert message.startswith(
            "Key pair jupyter-ada exists in eu-west-1 but its private key /keys/jupyter-ada.pem is not on this machine."
        )
        assert "aws ec2 delete-key-pair --key-name jupyter-ada" in message

    def test_foreign_key(self):
        message = checks.foreign_key("jupyter-ada", "eu-west-1", "/keys/jupyter-ada.pem")
        assert message.startswith(
            "Key pair jupyter-ada in eu-west-1 does not match the private key /keys/jupyter-ada.pem: "
            "it is not this owner's key. Nothing was changed"
        )

    def test_missing_subnet(self):
        assert checks.missing_subnet("subnet-0a", "eu-west-1") == (
            "Subnet subnet-0a does not exist in eu-west-1: set ec2_instance_subnet_id to a subnet of the VPC to "
            "launch in."
        )

    def test_no_default_vpc(self):
        assert checks.missing_subnet("", "eu-west-1").startswith("Region eu-west-1 has no default VPC: ")

    def test_no_credentials(self):
        message = checks.NO_CREDENTIALS.format(why="Unable to locate credentials")
        assert message.startswith("No usable AWS credentials (Unable to locate credentials). Provide them")


def subnet(zone, subnet_id=None):
    """A subnet as find_subnets keeps it."""
    return {
        "subnet_id": subnet_id or f"subnet-{zone[-1]}",
        "vpc_id": "vpc-0a",
        "availability_zone": zone,
        "cidr_block": "172.31.0.0/20",
    }


DEFAULT_SUBNETS = [subnet(f"us-west-2{letter}") for letter in "abcd"]


class TestZones:
    def test_offerings_are_grouped_by_type(self):
        offerings = [
            {"InstanceType": "g4dn.xlarge", "Location": "us-west-2c", "LocationType": "availability-zone"},
            {"InstanceType": "g4dn.xlarge", "Location": "us-west-2a", "LocationType": "availability-zone"},
            {"InstanceType": "t3.micro", "Location": "us-west-2d", "LocationType": "availability-zone"},
        ]
        assert checks.zones_offering(offerings) == {
            "g4dn.xlarge": ["us-west-2a", "us-west-2c"],
            "t3.micro": ["us-west-2d"],
        }

    def test_the_first_zone_that_offers_every_type_is_taken(self):
        offered = {"h1.2xlarge": ["us-west-2b", "us-west-2c"], "t3.micro": ["us-west-2a", "us-west-2c"]}
        first, chosen, problems = checks.choose_subnets(
            DEFAULT_SUBNETS, {"jupyter-ada": "h1.2xlarge", "jupyter-grace": "t3.micro"}, offered, "us-west-2", False
        )
        assert problems == []
        assert first["availability_zone"] == "us-west-2c"
        assert chosen == {"jupyter-ada": first, "jupyter-grace": first}

    def test_each_owner_gets_a_zone_of_its_type_when_no_zone_offers_all(self):
        offered = {"h1.2xlarge": ["us-west-2b"], "t3.micro": ["us-west-2a", "us-west-2d"]}
        first, chosen, problems = checks.choose_subnets(
            DEFAULT_SUBNETS, {"jupyter-ada": "h1.2xlarge", "jupyter-grace": "t3.micro"}, offered, "us-west-2", False
        )
        assert problems == []
        assert first["availability_zone"] == "us-west-2a"
        assert chosen["jupyter-ada"]["availability_zone"] == "us-west-2b"
        assert chosen["jupyter-grace"]["availability_zone"] == "us-west-2a"

    def test_unknown_offerings_keep_the_first_subnet(self):
        first, chosen, problems = checks.choose_subnets(
            DEFAULT_SUBNETS, {"jupyter-ada": "h1.2xlarge"}, None, "us-west-2", False
        )
        assert (first, chosen, problems) == (DEFAULT_SUBNETS[0], {"jupyter-ada": DEFAULT_SUBNETS[0]}, [])

    def test_a_given_subnet_in_a_zone_without_the_type_is_refused(self):
        given = [subnet("us-west-2d", "subnet-0d")]
        offered = {"g4dn.xlarge": ["us-west-2a", "us-west-2b", "us-west-2c"]}
        _first, chosen, problems = checks.choose_subnets(
            given, {"jupyter-ada": "g4dn.xlarge", "jupyter-grace": "g4dn.xlarge"}, offered, "us-west-2", True
        )
        assert chosen == {"jupyter-ada": None, "jupyter-grace": None}
        assert problems == [
            "Instance type g4dn.xlarge (for jupyter-ada, jupyter-grace) is not offered in us-west-2d, the zone of "
            "subnet subnet-0d; us-west-2 offers it in us-west-2a, us-west-2b, us-west-2c: set "
            "ec2_instance_subnet_id to a subnet in one of those zones (or leave it empty to launch in a default subnet "
            "that offers it), or choose another instance type."
        ]

    def test_a_type_no_zone_offers_is_refused(self):
        _first, chosen, problems = checks.choose_subnets(
            DEFAULT_SUBNETS, {"jupyter-ada": "p3.2xlarge"}, {}, "us-west-2", False
        )
        assert chosen == {"jupyter-ada": None}
        (problem,) = problems
        assert problem.startswith(
            "Instance type p3.2xlarge (for jupyter-ada) is not offered in any Availability Zone of us-west-2 "
            "(aws ec2 describe-instance-type-offerings --location-type availability-zone --filters "
            "Name=instance-type,Values=p3.2xlarge --region us-west-2 lists none): choose another instance type"
        )

    def test_a_type_offered_only_where_there_is_no_default_subnet_is_refused(self):
        _first, _chosen, problems = checks.choose_subnets(
            DEFAULT_SUBNETS[:2], {"jupyter-ada": "vt1.3xlarge"}, {"vt1.3xlarge": ["us-west-2c"]}, "us-west-2", False
        )
        assert problems == [
            "Instance type vt1.3xlarge (for jupyter-ada) is offered in us-west-2c of us-west-2, where the VPC has no "
            "default subnet (it has them in us-west-2a, us-west-2b): set ec2_instance_subnet_id to a subnet in one "
            "of those zones, or choose another instance type."
        ]
