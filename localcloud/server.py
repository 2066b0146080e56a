"""The local cloud's process: the EC2 API on 127.0.0.1 and the controller behind it."""

from __future__ import annotations

import functools
import html
import json
import logging
import os
import re
import signal
import socket
import threading
from typing import Any

from localcloud import api
from localcloud.api import scheduler
from localcloud.config import Settings, write_credentials
from localcloud.controller import LocalCloud
from localcloud.errors import LocalCloudError
from localcloud.host import baseimage, disks, kernel, network

log = logging.getLogger(__name__)

# moto reads these when it is imported: validate what EC2 validates, and start with no images but
# the local cloud's own (moto's built-in list names AMIs that have no disk behind them).
MOTO_SETTINGS = {
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "MOTO_ENABLE_AMI_VALIDATION": "true",
    "MOTO_ENABLE_KEYPAIR_VALIDATION": "true",
    "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
}


def check_port_free(port: int) -> None:
    """Fail with a clear message when something already listens on the API port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise LocalCloudError(
                f"port {port} on 127.0.0.1 is in use ({exc.strerror}); stop what uses it or set LOCALCLOUD_PORT"
            ) from exc


class LocalCloudApp:
    """moto's WSGI application, plus the local cloud's own status endpoints under /_localcloud/."""

    def __init__(self, cloud: LocalCloud, moto_app: Any, admin_secret: str = ""):
        self.cloud = cloud
        self.moto_app = moto_app
        # With a secret, every request must be signed, and the local cloud's own endpoints
        # answer only its holder.
        self.admin_secret = admin_secret

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/_localcloud/health":
            return self.reply(start_response, {"status": "ok", "base_image": str(self.cloud.base_rootfs)})
        private = path.startswith(("/_localcloud/", "/moto-api"))
        if private and self.admin_secret and environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.admin_secret}":
            return self.error(start_response, "403 Forbidden", "AccessDenied", "This endpoint is the local cloud's own")
        if path == "/_localcloud/status":
            settings = self.cloud.settings
            return self.reply(
                start_response,
                {
                    "instances": self.cloud.status(),
                    "disks": self.cloud.store.usage(),
                    "settings": {"first_boot_seconds": settings.first_boot_seconds, "quotas": settings.quotas},
                },
            )
        if path == "/_localcloud/idle":
            self.cloud.idle()
            return self.reply(start_response, {"status": "idle"})
        if self.admin_secret and not signed(environ):
            return self.error(
                start_response,
                "403 Forbidden",
                "MissingAuthenticationToken",
                "Request is missing Authentication Token: sign it with the keys `localcloud up` printed",
            )
        region = signed_region(environ.get("HTTP_AUTHORIZATION", ""))
        if region and region not in known_regions():
            return self.unknown_region(start_response, region)
        body = list(self.moto_app(environ, start_response))
        if environ.get("REQUEST_METHOD") == "POST" and self.cloud.with_machines:
            try:
                self.cloud.sync_network()
            except Exception:
                log.exception("could not apply public addresses or security groups")
        return body

    @staticmethod
    def unknown_region(start_response: Any, region: str) -> list[bytes]:
        """An EC2-style error for a region that does not exist (moto answers a bare 500)."""
        message = (
            f"There is no region {region!r} (on AWS the endpoint ec2.{region}.amazonaws.com does not exist): "
            "check the region name"
        )
        return LocalCloudApp.error(start_response, "400 Bad Request", "UnknownRegion", message)

    @staticmethod
    def error(start_response: Any, status: str, code: str, message: str) -> list[bytes]:
        """An error in EC2's XML form."""
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{html.escape(message)}</Message></Error></Errors><RequestID>localcloud</RequestID></Response>"
        ).encode()
        start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]

    @staticmethod
    def reply(start_response: Any, payload: dict) -> list[bytes]:
        body = json.dumps(payload, indent=2, default=str).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def signed(environ: dict) -> bool:
    """Whether a request carries a SigV4 signature (in its headers, or in its query for a presigned URL)."""
    return environ.get("HTTP_AUTHORIZATION", "").startswith("AWS4-HMAC-SHA256 ") or "X-Amz-Signature=" in environ.get(
        "QUERY_STRING", ""
    )


def signed_region(authorization: str) -> str | None:
    """The region in a SigV4 Authorization header's credential scope."""
    match = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", authorization)
    return match.group(1) if match else None


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region botocore knows, in every partition."""
    import boto3

    session = boto3.session.Session()
    regions = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions | {"us-east-1", "aws-global"})


def serve(settings: Settings, with_machines: bool = True, ready: threading.Event | None = None) -> None:
    """Run the API and the machines until SIGTERM or SIGINT; then power everything off."""
    for key, value in MOTO_SETTINGS.items():
        os.environ.setdefault(key, value)
    unknown = sorted(set(settings.quotas) - set(api.quotas.DEFAULTS))
    if unknown:
        raise LocalCloudError(
            f"LOCALCLOUD_QUOTAS names unknown quotas {', '.join(unknown)}; known: {', '.join(api.quotas.DEFAULTS)}"
        )
    check_port_free(settings.port)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    base_rootfs = None
    if with_machines:
        # The base image first (slow only on a cold cache): a cache that cannot be built or read
        # stops `up` before the store is mounted.
        base_rootfs = baseimage.rootfs(settings)
        disks.mount_store(settings.store, settings.store_image)
    cloud = LocalCloud(settings, with_machines=with_machines)
    cloud.base_rootfs = base_rootfs
    if base_rootfs is not None:
        # Copy the base image into the store while the API already answers, so that the first
        # launch does not wait for it (a launch that comes first waits for the same copy).
        cloud.background(lambda: cloud.store.prepare_external(base_rootfs), "import the base image into the store")
    previous_forward = None
    previous_limits: dict[str, int] = {}
    if with_machines:
        previous_forward = network.setup_host()
        (settings.home / "ip_forward").write_text(previous_forward)
        previous_limits = kernel.raise_limits()
        kernel.save(previous_limits, settings.home / "kernel_limits")
        kernel.raise_open_files()
    api.install(cloud)
    if base_rootfs is not None:
        for region in sorted(known_regions() - {"aws-global"}):
            api.images.register_base_image(region, base_rootfs)
    scheduler.install()
    access_key, admin_secret = "localcloud", ""
    if with_machines:
        # New keys at every start, for root's eyes only; from now on nothing unsigned is answered.
        access_key, admin_secret = api.accounts.admin_keys()
        write_credentials(settings, access_key, admin_secret)
        api.accounts.require_signatures()
    # The schedules run with the administrator's keys for Scheduler's own sts:AssumeRole.
    runner = scheduler.start(settings.endpoint, access_key, admin_secret or "localcloud")
    app = LocalCloudApp(cloud, DomainDispatcherApplication(create_backend_app), admin_secret)
    server = make_server("127.0.0.1", settings.port, app, threaded=True, request_handler=MotoRequestHandler)

    def serve_api_on(sock: socket.socket) -> Any:
        """The same API for a machine, on a socket inside its namespace (a VPC endpoint)."""
        host, port = sock.getsockname()
        return make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=sock.fileno())

    cloud.serve_api = serve_api_on

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: shutting down", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    log.info("EC2 API on %s (machines: %s)", settings.endpoint, "on" if with_machines else "off")
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    finally:
        runner.stop()
        cloud.shutdown()
        if with_machines:
            network.remove_all()
            if previous_forward is not None:
                network.restore_forwarding(previous_forward)
            kernel.restore_limits(previous_limits)
        log.info("stopped")
