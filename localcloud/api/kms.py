"""KMS keys for EBS: the AWS-managed key, and who may use a key when EC2 needs it.

- The AWS-managed key for EBS (`alias/aws/ebs`) is made on first use in each account and region,
  as AWS makes it: KeyManager `AWS`, AWS's description and key policy (any principal of the
  account, through EC2 only). moto makes it as a customer-managed key with the default policy,
  both when EBS needs it and when KMS is asked for `alias/aws/ebs`.
- EC2 reports a volume's or snapshot's key by its ARN, whichever form (key ID, alias, alias ARN)
  the request named it by; `key_arn` resolves them.
- `usable_by` is the rule EC2 applies when it needs a key for another account's data (a shared
  image's encrypted snapshots, a volume encrypted with another account's key): the key's own
  account may always use it (the default key policy gives the account root full access); another
  account only when the key is customer-managed, enabled, and its key policy or a grant allows
  that account every operation EBS performs (KMS_OPERATIONS). An AWS-managed key of another
  account can never be used. IAM policies are not evaluated (see the local cloud's limits).
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from localcloud.api.patching import replace

EBS_ALIAS = "alias/aws/ebs"
EBS_KEY_DESCRIPTION = "Default key that protects my EBS volumes when no other key is defined"
# What EBS does with a key to make and attach a volume from an encrypted snapshot, as KMS names
# the operations in key policies (kms:<operation>) and in grants (<operation>).
KMS_OPERATIONS = (
    "CreateGrant",
    "Decrypt",
    "DescribeKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
)


def install() -> None:
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.kms.models import KmsBackend

    replace(EBSBackend, "_create_default_encryption_key", default_ebs_key)
    replace(KmsBackend, "_generate_default_keys", generate_default_key)


def kms_backend(account_id: str, region: str) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[account_id][region]


def aws_managed_policy(account_id: str, region: str) -> str:
    """The key policy AWS gives the AWS-managed key for EBS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "auto-ebs-2",
            "Statement": [
                {
                    "Sid": "Allow access through EBS for all principals in the account that are authorized to use EBS",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:CreateGrant",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account_id,
                            "kms:ViaService": f"ec2.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        }
    )


def aws_managed_key(backend: Any, alias: str) -> Any:
    """The AWS-managed key behind a reserved alias (alias/aws/...), made on first use."""
    key_id = next((key.id for key in backend.keys.values() if alias in key.aliases), None)
    if key_id is not None:
        return backend.keys[key_id]
    service = alias.removeprefix("alias/aws/")
    description = (
        EBS_KEY_DESCRIPTION
        if alias == EBS_ALIAS
        else f"Default key that protects my {service} data when no other key is defined"
    )
    key = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", description, None)
    key.key_manager = "AWS"
    if alias == EBS_ALIAS:
        key.policy = aws_managed_policy(backend.account_id, backend.region_name)
    backend.create_alias(key.id, alias)
    return key


def generate_default_key(self: Any, alias_name: str) -> str | None:
    """KMS asked for a reserved alias that has no key yet: make the AWS-managed key, as AWS does."""
    from moto.kms.utils import RESERVED_ALIASES

    if alias_name not in RESERVED_ALIASES:
        return None
    return aws_managed_key(self, alias_name).id


def default_ebs_key(self: Any) -> str:
    """EBS's key when a request asks for encryption without naming one: the account's aws/ebs key."""
    key = aws_managed_key(kms_backend(self.account_id, self.region_name), EBS_ALIAS)
    self.default_kms_key_id = key.arn
    return key.arn


def ebs_default_key_arn(ec2_backend: Any) -> str:
    """The key EBS uses in an account and region when none is named (ModifyEbsDefaultKmsKeyId's, or aws/ebs)."""
    return ec2_backend.default_kms_key_id or default_ebs_key(ec2_backend)


def split_arn(ref: str) -> tuple[str, str, str] | None:
    """(region, account, resource) of a KMS ARN, or None for a bare key ID or alias name."""
    parts = ref.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "kms":
        return parts[3], parts[4], parts[5]
    return None


def find_key(ref: str | None, account_id: str, region: str) -> Any | None:
    """The key a reference names (key ID, key ARN, alias name or alias ARN), as seen from an account and region."""
    if not ref:
        return None
    arn = split_arn(ref)
    if arn is not None:
        region, account_id, resource = arn
        ref = resource.removeprefix("key/") if resource.startswith("key/") else resource
    try:
        backend = kms_backend(account_id, region)
    except KeyError:
        return None
    if ref.startswith("alias/"):
        if ref.startswith("alias/aws/"):
            return aws_managed_key(backend, ref) if ref == EBS_ALIAS else None
        return next((key for key in backend.keys.values() if ref in key.aliases), None)
    return backend.keys.get(ref)


def key_arn(ref: str | None, account_id: str, region: str) -> str | None:
    """The ARN of the key a reference names, or None when there is no such key."""
    key = find_key(ref, account_id, region)
    return key.arn if key is not None else None


def is_aws_managed(ref: str | None, account_id: str, region: str) -> bool:
    key = find_key(ref, account_id, region)
    return key is not None and key.key_manager == "AWS"


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def principal_is_account(principal: Any, account_id: str) -> bool:
    """Whether a policy's Principal covers every principal of an account (its root, its ID, or everyone)."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    names = as_list(principal.get("AWS"))
    return any(name in ("*", account_id, f"arn:aws:iam::{account_id}:root") for name in names)


def condition_holds(condition: dict[str, Any] | None, account_id: str, region: str) -> bool:
    """Whether a statement's Condition holds for EC2 using the key on behalf of the account.

    The keys EC2's own use of a key can be judged on: kms:CallerAccount, kms:ViaService and
    kms:GrantIsForAWSResource; a condition on anything else is not known to hold.
    """
    context = {
        "kms:calleraccount": account_id,
        "kms:viaservice": f"ec2.{region}.amazonaws.com",
        "kms:grantisforawsresource": "true",
    }
    for operator, tests in (condition or {}).items():
        for name, wanted in tests.items():
            actual = context.get(name.lower())
            if actual is None:
                return False
            values = [str(v).lower() if operator.startswith("Bool") else str(v) for v in as_list(wanted)]
            if operator in ("StringEquals", "Bool", "StringEqualsIgnoreCase"):
                if actual not in values and not (operator.endswith("IgnoreCase") and actual.lower() in values):
                    return False
            elif operator == "StringLike":
                if not any(fnmatch.fnmatchcase(actual, value) for value in values):
                    return False
            else:
                return False
    return True


def policy_operations(policy: str, account_id: str, region: str, key_arn_: str) -> tuple[set[str], set[str]]:
    """The KMS operations a key policy allows and denies to an account (for EC2's use of the key)."""
    allowed: set[str] = set()
    denied: set[str] = set()
    try:
        statements = as_list(json.loads(policy).get("Statement"))
    except (ValueError, AttributeError):
        return allowed, denied
    for statement in statements:
        if not isinstance(statement, dict) or "NotAction" in statement or "NotPrincipal" in statement:
            continue
        if not principal_is_account(statement.get("Principal"), account_id):
            continue
        resources = as_list(statement.get("Resource", "*"))
        if not any(fnmatch.fnmatchcase(key_arn_, r) for r in resources):
            continue
        if not condition_holds(statement.get("Condition"), account_id, region):
            continue
        patterns = [str(a).lower() for a in as_list(statement.get("Action"))]
        matched = {op for op in KMS_OPERATIONS if any(fnmatch.fnmatchcase(f"kms:{op}".lower(), p) for p in patterns)}
        (allowed if statement.get("Effect") == "Allow" else denied).update(matched)
    return allowed, denied


def grantee_account(principal: str) -> str | None:
    """The account of a grant's GranteePrincipal (an account ID, or an IAM or STS ARN)."""
    if principal.isdigit() and len(principal) == 12:
        return principal
    parts = principal.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] in ("iam", "sts"):
        return parts[4]
    return None


def usable_by(ref: str | None, account_id: str, region: str) -> bool:
    """Whether EC2 may use a key for an account's volumes (see the module's docstring)."""
    if not ref:
        return True
    key = find_key(ref, account_id, region)
    if key is None or key.key_state != "Enabled":
        return False
    if key.account_id == account_id:
        return True
    if key.key_manager == "AWS":
        return False
    allowed, denied = policy_operations(key.policy, account_id, key.region, key.arn)
    for grant in key.grants.values():
        if grantee_account(grant.grantee_principal or "") == account_id:
            allowed.update(op for op in KMS_OPERATIONS if op in (grant.operations or []))
    return not denied and allowed >= set(KMS_OPERATIONS)
