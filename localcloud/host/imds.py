"""The instance metadata service of one machine, at 169.254.169.254 inside its namespace, as EC2 serves it.

- IMDSv2 session tokens: `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`
  (1 to 21600) returns a token; a request that carries `X-Forwarded-For` gets no token (EC2
  refuses tokens to anything that looks proxied). `GET` with `X-aws-ec2-metadata-token` needs a
  valid, unexpired token (401 otherwise); without one it is answered only when the instance's
  HttpTokens is `optional` (IMDSv1), else 401.
- HttpEndpoint `disabled`: every request is refused (403).
- The tree (meta-data, user-data, dynamic) comes from the instance's current state each time it
  is read, so public-ipv4 follows an Elastic IP's association, and a leaf may be a function
  (instance-profile credentials are made when asked for).

`MetadataSource` is what the controller provides for one instance; `Handler` serves it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL = 21600
NOT_FOUND = (
    '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
    '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml" '
    'xml:lang="en" lang="en">\n <head>\n  <title>404 - Not Found</title>\n </head>\n <body>\n  <h1>404 - Not Found'
    "</h1>\n </body>\n</html>\n"
)


class MetadataSource(Protocol):
    """What the metadata service reads for its instance."""

    def options(self) -> dict[str, str]:
        """The instance's metadata options: http_endpoint, http_tokens (EC2's values)."""

    def tree(self) -> dict[str, Any] | None:
        """The tree under /latest/ (None when the instance is gone)."""


class Tokens:
    """IMDSv2 session tokens of one instance, with their expiry."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.expiry: dict[str, float] = {}
        self.lock = threading.Lock()

    def issue(self, ttl: int) -> str:
        token = secrets.token_urlsafe(42)
        with self.lock:
            now = self.clock()
            self.expiry = {t: e for t, e in self.expiry.items() if e > now}
            self.expiry[token] = now + ttl
        return token

    def valid(self, token: str) -> bool:
        with self.lock:
            return self.expiry.get(token, 0.0) > self.clock()


# A directory whose listing differs from its children's names (public-keys/ lists "0=my-key"
# while the key itself is at public-keys/0/) carries its listing under this key.
LISTING = "__list__"


def lookup(tree: Any, path: str) -> Any:
    """The node at a path of the tree (a str, bytes, dict or function), or None."""
    node = tree
    for part in [p for p in path.split("/") if p]:
        if callable(node):
            node = node()
        if not isinstance(node, dict) or part not in node or part == LISTING:
            return None
        node = node[part]
    return node() if callable(node) else node


def listing(node: dict[str, Any]) -> str:
    """A directory's listing as EC2 prints it: one child per line, directories with a trailing /."""
    if LISTING in node:
        return node[LISTING]
    return "\n".join(f"{key}/" if isinstance(value, dict) else key for key, value in node.items())


def respond(source: MetadataSource, tokens: Tokens, method: str, path: str, headers: Any) -> tuple[int, str | bytes]:
    """The status and body EC2's metadata service answers a request with."""
    options = source.options()
    if options.get("http_endpoint") == "disabled":
        return 403, "Forbidden"
    path = path.split("?")[0]
    if method == "PUT":
        if path != TOKEN_PATH:
            return 405, "Method Not Allowed"
        if headers.get("X-Forwarded-For"):
            return 403, "Forbidden"
        ttl = headers.get(TTL_HEADER, "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL:
            return 400, "Bad Request"
        return 200, tokens.issue(int(ttl))
    if method not in ("GET", "HEAD"):
        return 405, "Method Not Allowed"
    token = headers.get(TOKEN_HEADER)
    if token is not None and not tokens.valid(token):
        return 401, "Unauthorized"
    if token is None and options.get("http_tokens") != "optional":
        return 401, "Unauthorized"
    if path in ("", "/"):
        return 200, "latest"
    if path == TOKEN_PATH:
        return 405, "Method Not Allowed"
    if not path.startswith("/latest"):
        return 404, NOT_FOUND
    tree = source.tree()
    node = lookup(tree, path.removeprefix("/latest")) if tree is not None else None
    if node is None:
        return 404, NOT_FOUND
    if isinstance(node, dict):
        return 200, listing(node)
    return 200, node


class Handler(BaseHTTPRequestHandler):
    """HTTP front of `respond`; the server's context is (source, tokens)."""

    server_version = "EC2ws"
    sys_version = ""

    def answer(self, method: str) -> None:
        source, tokens = self.server.context
        status, body = respond(source, tokens, method, self.path, self.headers)
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        if method == "PUT" and status == 200:
            self.send_header(TTL_HEADER, self.headers.get(TTL_HEADER, ""))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:
        self.answer("GET")

    def do_HEAD(self) -> None:
        self.answer("HEAD")

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.answer("PUT")

    def do_POST(self) -> None:
        self.answer("POST")

    def do_DELETE(self) -> None:
        self.answer("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: the answers carry credentials and tokens."""
