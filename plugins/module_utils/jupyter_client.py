# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small client of Jupyter Server's kernel API: start a kernel, run code in it, shut it down.

It speaks plain HTTP and the WebSocket protocol (RFC 6455) with the standard library only, to a
server on this machine's loopback (the local end of the collection's SSH tunnel), without proxies.
Messages go over the kernel's ``/channels`` WebSocket in Jupyter's JSON framing (no sub-protocol
asked for), as the Jupyter messaging protocol 5.3 describes them.
"""

import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
import time
import uuid
from datetime import datetime, timezone
from http.client import HTTPConnection
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlencode, urlsplit

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Frames larger than this are refused: a kernel's answer to a check is small.
MAX_FRAME = 16 * 1024 * 1024


class JupyterError(Exception):
    """The server refused, answered what a Jupyter server does not, or the time was up."""


def parse_url(url: str, token: Optional[str] = None) -> Tuple[str, int, str, str]:
    """Return host, port, base path and token of a JupyterLab URL such as http://localhost:7005/lab?token=..."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise JupyterError(f"{url.split('?')[0]} is not an http:// URL of a JupyterLab server")
    if parts.hostname not in LOOPBACK_HOSTS:
        raise JupyterError(
            f"{parts.hostname} is not this machine's loopback: reach JupyterLab through its SSH tunnel (127.0.0.1)"
        )
    base = parts.path
    for suffix in ("/lab", "/tree", "/"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    found = token or (parse_qs(parts.query).get("token") or [""])[0]
    if not found:
        raise JupyterError("no token: give it, or a URL with ?token=")
    return parts.hostname, parts.port or 80, base, found


class Server:
    """A Jupyter server reached over HTTP on the loopback."""

    def __init__(self, host: str, port: int, base: str, token: str, timeout: float):
        self.host, self.port, self.base, self.token, self.timeout = host, port, base, token, timeout

    def request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """Send one API request; return the decoded JSON answer (None when empty)."""
        connection = HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {"Authorization": f"token {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, self.base + path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
        except OSError as e:
            raise JupyterError(f"{method} {path}: {e}") from e
        finally:
            connection.close()
        if response.status == 403:
            raise JupyterError(f"{method} {path}: 403 Forbidden: the token is not this server's")
        if response.status >= 300:
            raise JupyterError(f"{method} {path}: HTTP {response.status} {text[:200]}")
        return json.loads(text) if text.strip() else None

    def websocket(self, path: str) -> "WebSocket":
        """Open a WebSocket to a path of the server."""
        return WebSocket.connect(self.host, self.port, self.base + path, self.token, self.timeout)


class WebSocket:
    """A client WebSocket: masked text frames out, unmasked frames in."""

    def __init__(self, sock: socket.socket, pending: bytes = b""):
        self.sock = sock
        self.buffer = pending

    @classmethod
    def connect(cls, host: str, port: int, path: str, token: str, timeout: float) -> "WebSocket":
        key = base64.b64encode(os.urandom(16)).decode()
        sock = socket.create_connection((host, port), timeout=timeout)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: token {token}\r\n\r\n"
        )
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                sock.close()
                raise JupyterError(f"the server closed the connection before upgrading {path} to a WebSocket")
            data += chunk
            if len(data) > 65536:
                sock.close()
                raise JupyterError("the WebSocket upgrade answer is too long")
        head, _sep, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            sock.close()
            raise JupyterError(f"the server refused the WebSocket of {path.split('?')[0]}: {lines[0]}")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            sock.close()
            raise JupyterError("the WebSocket upgrade answer does not match the request")
        return cls(sock, rest)

    def send_text(self, text: str) -> None:
        payload = text.encode()
        self._send(0x1, payload)

    def _send(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise JupyterError("the server closed the kernel's WebSocket")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive_text(self) -> str:
        """Return the next text message (answering pings, joining fragments)."""
        message = b""
        while True:
            first, second = self._read(2)
            fin, opcode, length = first & 0x80, first & 0x0F, second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            if length > MAX_FRAME:
                raise JupyterError(f"a WebSocket frame of {length} bytes is more than a check needs")
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(length)
            if mask:
                payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
            if opcode == 0x8:
                raise JupyterError("the server closed the kernel's WebSocket")
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode in (0x1, 0x2, 0x0):
                message += payload
                if fin:
                    if opcode == 0x2:
                        message = b""
                        continue
                    return message.decode("utf-8", "replace")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send(0x8, b"")
        self.sock.close()


def execute_request(code: str, session: str) -> Dict[str, Any]:
    """An execute_request message of the Jupyter messaging protocol, for the shell channel."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "session": session,
            "username": "labcloud",
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


def failure(content: Dict[str, Any]) -> str:
    """What an error or a failed execute_reply of the kernel says."""
    return f"the code failed in the kernel: {content.get('ename')}: {content.get('evalue')}"


def run_code(url: str, code: str, token: Optional[str] = None, kernel_name: str = "python3", timeout: float = 60):
    """Start a kernel, run code in it, shut it down; return what it printed and returned.

    Raises JupyterError with what went wrong, including the error the code raised in the kernel.
    """
    host, port, base, found_token = parse_url(url, token)
    server = Server(host, port, base, found_token, timeout)
    started = time.monotonic()
    status = server.request("GET", "/api/status")
    kernel = server.request("POST", "/api/kernels", {"name": kernel_name})
    kernel_id = kernel["id"]
    outputs: List[str] = []
    result: Optional[str] = None
    try:
        session = uuid.uuid4().hex
        socket_path = f"/api/kernels/{kernel_id}/channels?{urlencode({'session_id': session})}"
        channel = server.websocket(socket_path)
        try:
            message = execute_request(code, session)
            msg_id = message["header"]["msg_id"]
            channel.send_text(json.dumps(message))
            replied = idle = False
            deadline = started + timeout
            while not (replied and idle):
                if time.monotonic() > deadline:
                    raise JupyterError(f"the kernel did not answer within {timeout} s")
                channel.sock.settimeout(max(0.1, deadline - time.monotonic()))
                answer = json.loads(channel.receive_text())
                if answer.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = answer.get("msg_type") or answer.get("header", {}).get("msg_type")
                content = answer.get("content", {})
                if kind == "stream":
                    outputs.append(content.get("text", ""))
                elif kind in ("execute_result", "display_data"):
                    result = content.get("data", {}).get("text/plain", result)
                elif kind == "error":
                    raise JupyterError(failure(content))
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True
                elif kind == "execute_reply":
                    replied = True
                    if content.get("status") != "ok":
                        raise JupyterError(failure(content))
        finally:
            channel.close()
    finally:
        with contextlib.suppress(JupyterError):
            server.request("DELETE", f"/api/kernels/{kernel_id}")
    return {
        "stdout": "".join(outputs),
        "result": result,
        "kernel_name": kernel_name,
        "seconds": round(time.monotonic() - started, 3),
        "server_started": status.get("started") if isinstance(status, dict) else None,
    }
