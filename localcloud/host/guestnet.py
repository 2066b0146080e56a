"""Services a machine finds inside its own network namespace, served by the local cloud's process.

The local cloud opens a listening socket *inside* a machine's namespace (a thread enters the
namespace with setns(2), creates and binds the socket, and leaves again; the socket stays in the
namespace) and serves it from the host process. A machine therefore reaches these services
without reaching the host: its traffic to the host itself is dropped, and each service knows
which machine is asking from the socket alone, whatever addresses machines of different
accounts share.

- `Resolver`: the VPC's DNS resolver, relaying queries (UDP and TCP) to the host's resolvers.
- `HttpService`: any WSGI application or http.server handler on an address and port (the
  instance metadata service, the local cloud's API as a VPC endpoint).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from localcloud.errors import LocalCloudError

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
DNS_TIMEOUT = 5.0
MAX_DNS_MESSAGE = 65535


def _setns(descriptor: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(descriptor, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def socket_in_namespace(namespace: str, kind: int, address: str, port: int) -> socket.socket:
    """A socket bound (and, for TCP, listening) to address:port inside a named network namespace."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def create() -> None:
        with open("/proc/thread-self/ns/net") as own, open(Path("/run/netns") / namespace) as target:
            _setns(target.fileno())
            try:
                sock = socket.socket(socket.AF_INET, kind)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                if kind == socket.SOCK_STREAM:
                    sock.listen(64)
                made.append(sock)
            except BaseException as exc:
                failed.append(exc)
            finally:
                _setns(own.fileno())

    worker = threading.Thread(target=create, name=f"setns-{namespace}")
    worker.start()
    worker.join()
    if failed or not made:
        raise LocalCloudError(
            f"could not open {address}:{port} in namespace {namespace}: {failed[0] if failed else ''}"
        )
    return made[0]


def host_resolvers(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The IPv4 name servers the host itself uses."""
    servers = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver" and ":" not in fields[1]:
                servers.append(fields[1])
    return servers or ["127.0.0.1"]


def relay_udp(query: bytes, upstreams: list[str]) -> bytes | None:
    """Ask the host's resolvers, in turn, and return the first answer."""
    for upstream in upstreams:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            out.settimeout(DNS_TIMEOUT)
            try:
                out.sendto(query, (upstream, 53))
                answer, _ = out.recvfrom(MAX_DNS_MESSAGE)
                return answer
            except OSError:
                continue
    return None


def read_exactly(sock: socket.socket, size: int) -> bytes:
    """Read size bytes from a stream socket, or fewer when it closes."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def relay_tcp(query: bytes, upstreams: list[str]) -> bytes | None:
    """Ask the host's resolvers over TCP (for answers too large for UDP)."""
    for upstream in upstreams:
        try:
            with socket.create_connection((upstream, 53), timeout=DNS_TIMEOUT) as out:
                out.sendall(struct.pack("!H", len(query)) + query)
                length = read_exactly(out, 2)
                if len(length) == 2:
                    return read_exactly(out, struct.unpack("!H", length)[0])
        except OSError:
            continue
    return None


class Service:
    """Something served on sockets inside one namespace; stop() closes it."""

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Resolver(Service):
    """The VPC resolver of one machine: UDP and TCP port 53, relayed to the host's resolvers."""

    def __init__(self, namespace: str, address: str, upstreams: list[str]):
        self.upstreams = upstreams
        self.udp = socket_in_namespace(namespace, socket.SOCK_DGRAM, address, 53)
        self.tcp = socket_in_namespace(namespace, socket.SOCK_STREAM, address, 53)
        self.closed = threading.Event()
        for target, name in ((self.serve_udp, "udp"), (self.serve_tcp, "tcp")):
            threading.Thread(target=target, daemon=True, name=f"resolver-{name}-{namespace}").start()

    def serve_udp(self) -> None:
        while not self.closed.is_set():
            try:
                query, client = self.udp.recvfrom(MAX_DNS_MESSAGE)
            except OSError:
                return
            threading.Thread(target=self.answer_udp, args=(query, client), daemon=True).start()

    def answer_udp(self, query: bytes, client: Any) -> None:
        answer = relay_udp(query, self.upstreams)
        if answer is not None:
            with contextlib.suppress(OSError):
                self.udp.sendto(answer, client)

    def serve_tcp(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self.answer_tcp, args=(connection,), daemon=True).start()

    def answer_tcp(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(DNS_TIMEOUT)
            with contextlib.suppress(OSError):
                length = read_exactly(connection, 2)
                if len(length) < 2:
                    return
                answer = relay_tcp(read_exactly(connection, struct.unpack("!H", length)[0]), self.upstreams)
                if answer is not None:
                    connection.sendall(struct.pack("!H", len(answer)) + answer)

    def stop(self) -> None:
        self.closed.set()
        for sock in (self.udp, self.tcp):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class HttpService(Service):
    """An HTTP server on address:port inside a namespace.

    `make_server(sock)` gets the listening socket and returns a socketserver.BaseServer that
    serves it (an http.server or a werkzeug server); it runs in a thread of its own.
    """

    def __init__(self, namespace: str, address: str, port: int, make_server: Callable[[socket.socket], Any]):
        self.sock = socket_in_namespace(namespace, socket.SOCK_STREAM, address, port)
        self.server = make_server(self.sock)
        threading.Thread(target=self.server.serve_forever, daemon=True, name=f"http-{port}-{namespace}").start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.sock.close()


def handler_server(handler: type[BaseHTTPRequestHandler], context: Any) -> Callable[[socket.socket], Any]:
    """A make_server for HttpService that serves an http.server handler class; the handler finds
    `context` as `self.server.context`."""

    def make(sock: socket.socket) -> socketserver.BaseServer:
        server = ThreadingHTTPServer(sock.getsockname(), handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.daemon_threads = True
        server.context = context
        return server

    return make
