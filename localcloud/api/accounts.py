"""Accounts and credentials: every request is signed with keys the local cloud issued.

moto answers any access key (it maps unknown keys to its default account) and checks signatures
only when IAM enforcement is switched on for the whole process. Here every request must be
signed (SigV4) with keys the local cloud issued: the administrator keys made at start (an IAM
user of the default account, printed by `localcloud up` and kept in a 0600 file), keys made
through IAM (CreateAccessKey), and temporary keys from STS (AssumeRole, and the instance-profile
credentials that the metadata service hands out). Anything else gets EC2's AuthFailure (or the
service's own InvalidClientTokenId / SignatureDoesNotMatch), as on AWS. Which actions a key may
call is not checked (no IAM policy evaluation).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from localcloud.api.patching import replace
from localcloud.config import DEFAULT_ACCOUNT_ID

ADMIN_USER = "localcloud-admin"
ADMIN_POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
_STATE = {"signatures": False}
BODILESS_METHODS = ("GET", "HEAD", "DELETE")


def install() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin

    replace(ActionAuthenticatorMixin, "_authenticate_and_authorize_action", authenticate)


def require_signatures() -> None:
    """From now on, refuse requests that are not signed with keys the local cloud issued."""
    _STATE["signatures"] = True


def authenticate(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    """Check the request's SigV4 signature against the secret of the key it names."""
    if not _STATE["signatures"]:
        return
    parsed = urlparse(self.uri)
    path = self.raw_path + (f"?{parsed.query}" if parsed.query else "")
    # A GET, HEAD or DELETE signed an empty payload: moto would hash its parsed query (or, for a
    # REST service such as the Scheduler, its headers) in its place and never match. A form POST
    # (EC2, IAM, STS) must keep its parsed form: moto has read the body into it.
    request = iam_request_cls(
        account_id=self.current_account,
        method=self.method,
        path=path,
        data={} if self.method in BODILESS_METHODS else self.data,
        body=self.raw_body,
        headers=self.headers,
        action=self._get_action(),
    )
    request.check_signature()


def admin_keys(account_id: str = DEFAULT_ACCOUNT_ID) -> tuple[str, str]:
    """Make the administrator user and a new access key for it; returns (key ID, secret)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["aws"]
    if ADMIN_USER not in backend.users:
        backend.create_user("us-east-1", ADMIN_USER, "/", None)
        backend.put_user_policy(ADMIN_USER, "administrator", ADMIN_POLICY)
    key = backend.create_access_key(ADMIN_USER, prefix="AKIA")
    return key.access_key_id, key.secret_access_key
