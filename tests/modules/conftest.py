"""Fixtures for the module tests: a moto server over HTTP, the modules run through `ansible`,
boto3 clients to check the state afterwards, and a proxy that records and can fail API calls.

Everything listens on 127.0.0.1 only. The modules get the endpoint the way users give it, through
AWS_ENDPOINT_URL in the environment.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import moto.settings
import pytest
from moto.server import ThreadedMotoServer

from localcloud import api, config
from localcloud.controller import LocalCloud

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"
REGION = "us-east-1"
# moto maps unknown access keys to this account; it is "our" account, the AMI owner.
ACCOUNT_A = "123456789012"
# The second account, reached through sts:AssumeRole (moto then answers as that account).
ACCOUNT_B = "210987654321"
ACCOUNT_C = "333344445555"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory):
    """The local cloud's EC2 API layer (moto with its patches, no machines) over HTTP for the session.

    It runs in this process, so that tests can reach into moto's backend where no API call makes
    the state they need (an AMI on an encrypted snapshot, a pending AMI).
    """
    with pytest.MonkeyPatch.context() as patch:
        # Real EC2 refuses RunInstances with an AMI the caller cannot use; moto checks it only
        # when asked (MOTO_ENABLE_AMI_VALIDATION, read here at call time).
        patch.setattr(moto.settings, "ENABLE_AMI_VALIDATION", True)
        home = tmp_path_factory.mktemp("localcloud-api")
        settings = dataclasses.replace(config.load(), home=home, cache=home / "cache")
        api.install(LocalCloud(settings, with_machines=False))
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    """The moto endpoint, reset to an empty cloud before the test."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    return moto_endpoint


@dataclass
class Credentials:
    """One account's credentials."""

    access_key: str
    secret_key: str
    session_token: str | None = None

    def client(self, service: str, endpoint: str):
        """Return a boto3 client for this account on the endpoint."""
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.session_token,
        )


ACCOUNT_A_CREDENTIALS = Credentials("testing", "testing")


class Clients:
    """boto3 clients of one account, created on first use."""

    def __init__(self, credentials: Credentials, endpoint: str):
        self.credentials = credentials
        self.endpoint = endpoint
        self._clients: dict[str, Any] = {}

    def __getattr__(self, service: str):
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._clients:
            self._clients[service] = self.credentials.client(service, self.endpoint)
        return self._clients[service]


@pytest.fixture
def aws(endpoint: str) -> Clients:
    """boto3 clients of account A (the one the modules run as)."""
    return Clients(ACCOUNT_A_CREDENTIALS, endpoint)


@pytest.fixture
def account_b(endpoint: str, aws: Clients) -> Clients:
    """boto3 clients of account B, with credentials from sts:AssumeRole on a role of account B."""
    response = aws.sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_B}:role/collaborator", RoleSessionName="b-test")
    creds = response["Credentials"]
    clients = Clients(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]), endpoint)
    assert clients.sts.get_caller_identity()["Account"] == ACCOUNT_B
    return clients


def module_env(endpoint: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an `ansible` run: this checkout's config and the endpoint in AWS_* variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "ANSIBLE_"))}
    env.update(
        PATH=f"{ANSIBLE.parent}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_NOCOLOR="1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=ACCOUNT_A_CREDENTIALS.access_key,
        AWS_SECRET_ACCESS_KEY=ACCOUNT_A_CREDENTIALS.secret_key,
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        # No profile or credentials file of the machine running the tests may leak in.
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    env.update(extra or {})
    return env


@dataclass
class ModuleRunner:
    """Runs one module of the collection with `ansible localhost -m` and returns its result."""

    endpoint: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self,
        module: str,
        args: dict[str, Any],
        *,
        check: bool = False,
        diff: bool = False,
        endpoint: str | None = None,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        command = [str(ANSIBLE), "localhost", "-m", f"labcloud.jupyter.{module}", "-a", json.dumps(args)]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        proc = subprocess.run(
            command,
            cwd=REPO,
            env=module_env(endpoint or self.endpoint, env),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        try:
            output = json.loads(proc.stdout[proc.stdout.index("{") :])
            result = output["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError) as e:
            raise AssertionError(f"ansible gave no result ({e}):\n{proc.stdout}\n{proc.stderr}") from e
        assert bool(result.get("failed")) == (proc.returncode != 0), proc.stderr
        self.runs.append({"module": module, "args": args, "check": check, "result": result})
        return result


@pytest.fixture
def run_module(endpoint: str) -> ModuleRunner:
    """Run a labcloud.jupyter module against the test cloud (endpoint overridable per call)."""
    return ModuleRunner(endpoint)


EC2_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
    "<RequestID>fault-proxy</RequestID></Response>"
)


class FaultProxy:
    """An HTTP proxy in front of moto that records every API action and answers chosen ones with
    an error instead of forwarding them (to test retries and failure handling for real, over HTTP).
    """

    def __init__(self, upstream: str):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.calls: list[str] = []
        self.injected: list[str] = []
        self._faults: dict[str, list[tuple[int, str, str]]] = {}
        self._hooks: dict[tuple[str, int], Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The proxy's URL, to be used as AWS_ENDPOINT_URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, action: str, code: str, message: str, times: int = 1, status: int = 400) -> None:
        """Answer the next `times` calls of `action` with the EC2 error `code` instead of forwarding them."""
        with self._lock:
            self._faults.setdefault(action, []).extend([(status, code, message)] * times)

    def after_call(self, action: str, nth: int, callback: Callable[[], None]) -> None:
        """Run callback once the nth call of action has been answered (to change the cloud between calls)."""
        with self._lock:
            self._hooks[(action, nth)] = callback

    def count(self, action: str) -> int:
        """How many calls of `action` reached the proxy (failed ones included)."""
        with self._lock:
            return self.calls.count(action)

    def start(self) -> None:
        """Start serving in a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self, action: str) -> tuple[int, str, str] | None:
        """Record the call and return the fault to answer it with, if any."""
        with self._lock:
            self.calls.append(action)
            queue = self._faults.get(action)
            if queue:
                self.injected.append(action)
                return queue.pop(0)
            return None

    def _run_hook(self, action: str) -> None:
        """Run the callback registered for this call of action, if any."""
        with self._lock:
            callback = self._hooks.pop((action, self.calls.count(action)), None)
        if callback:
            callback()

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        """Send the request to moto and return (status, headers, body)."""
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _action(self, body: bytes) -> str:
                target = self.headers.get("X-Amz-Target")
                if target:  # JSON protocols (KMS): "TrentService.DescribeKey"
                    return target.rsplit(".", 1)[-1]
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                return form.get("Action", ["?"])[0]

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = self._action(body)
                fault = proxy._next_fault(action)
                if fault:
                    status, code, message = fault
                    payload = EC2_ERROR.format(code=code, message=message).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                status, response_headers, payload = proxy._forward("POST", self.path, headers, body)
                self.send_response(status)
                for key, value in response_headers:
                    if key.lower() not in (
                        "connection",
                        "transfer-encoding",
                        "content-length",
                        "server",
                        "date",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                proxy._run_hook(action)

        return Handler


@pytest.fixture
def fault_proxy(endpoint: str):
    """A FaultProxy in front of the (freshly reset) moto server."""
    proxy = FaultProxy(endpoint)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def launch(aws: Clients):
    """Launch one instance of account A, tagged with its Owner when given, and return its ID."""

    def launch_instance(owner: str | None = None) -> str:
        image_id = aws.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        params: dict[str, Any] = {
            "ImageId": image_id,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": "t3.micro",
        }
        if owner:
            params["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [{"Key": "Owner", "Value": owner}]}]
        return aws.ec2.run_instances(**params)["Instances"][0]["InstanceId"]

    return launch_instance
