"""The Jupyter kernel client against a stand-in server that speaks the same HTTP and WebSocket protocol."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils import jupyter_client
from ansible_collections.labcloud.jupyter.plugins.module_utils.jupyter_client import JupyterError, run_code

TOKEN = "a" * 48


def frame(text: str, opcode: int = 0x1, fin: bool = True) -> bytes:
    """An unmasked server frame."""
    payload = text.encode()
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + struct.pack("!H", len(payload)) + payload


def read_client_frame(conn: socket.socket) -> tuple[int, str]:
    first, second = conn.recv(2, socket.MSG_WAITALL)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", conn.recv(2, socket.MSG_WAITALL))[0]
    elif length == 127:
        length = struct.unpack("!Q", conn.recv(8, socket.MSG_WAITALL))[0]
    assert second & 0x80, "client frames are masked"
    mask = conn.recv(4, socket.MSG_WAITALL)
    payload = conn.recv(length, socket.MSG_WAITALL) if length else b""
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload)).decode()


class StandIn:
    """A Jupyter server stand-in: /api/status, /api/kernels, and a kernel that answers one cell."""

    def __init__(self, behaviour: str = "ok"):
        self.behaviour = behaviour
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.requests: list[str] = []
        self.cells: list[str] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _address = self.listener.accept()
            except OSError:
                return
            with conn:
                try:
                    self.handle(conn)
                except (AssertionError, OSError, ValueError) as error:
                    self.errors.append(error)

    def handle(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n")[0].decode()
        lines = head.split("\r\n")
        method, path, _version = lines[0].split(" ")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        self.requests.append(f"{method} {path.split('?')[0]}")
        if headers.get("authorization") != f"token {TOKEN}":
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        if headers.get("upgrade") == "websocket":
            self.kernel(conn, headers["sec-websocket-key"])
            return
        answers = {
            "GET /api/status": (200, {"started": "2026-12-01T00:00:00Z"}),
            "POST /api/kernels": (201, {"id": "k1"}),
        }
        status, body = answers.get(f"{method} {path}", (204, None))
        text = json.dumps(body).encode() if body is not None else b""
        conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: {len(text)}\r\n\r\n".encode() + text)

    def kernel(self, conn: socket.socket, key: str) -> None:
        accept = base64.b64encode(hashlib.sha1((key + jupyter_client.WEBSOCKET_GUID).encode()).digest()).decode()
        conn.sendall(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        opcode, text = read_client_frame(conn)
        assert opcode == 0x1
        request = json.loads(text)
        self.cells.append(request["content"]["code"])
        parent = {"msg_id": request["header"]["msg_id"]}

        def send(kind: str, content: dict, parent_header: dict = parent) -> bytes:
            return frame(json.dumps({"msg_type": kind, "parent_header": parent_header, "content": content}))

        out = send("status", {"execution_state": "busy"}) + frame("ping", opcode=0x9)
        out += send("stream", {"name": "stdout", "text": "unrelated\n"}, {"msg_id": "other"})
        if self.behaviour == "error":
            out += send("error", {"ename": "ModuleNotFoundError", "evalue": "No module named 'xarray'"})
            out += send("execute_reply", {"status": "error", "ename": "ModuleNotFoundError", "evalue": "x"})
        else:
            # A long stream split over two fragments.
            text = json.dumps({"msg_type": "stream", "parent_header": parent, "content": {"text": "ok " * 100}})
            out += frame(text[:50], fin=False) + frame(text[50:], opcode=0x0)
            out += send("execute_result", {"data": {"text/plain": "2"}})
            out += send("execute_reply", {"status": "ok"})
        out += send("status", {"execution_state": "idle"})
        conn.sendall(out)
        if self.behaviour != "error":
            assert read_client_frame(conn) == (0xA, "ping"), "the ping is answered with a pong"

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server() -> Iterator[StandIn]:
    stand_in = StandIn()
    yield stand_in
    stand_in.close()


def test_a_cell_runs_and_its_output_and_value_come_back(server: StandIn) -> None:
    outcome = run_code(f"http://localhost:{server.port}/lab?token={TOKEN}", "1 + 1", timeout=10)
    assert outcome["stdout"] == "ok " * 100, "only the cell's own output, its fragments joined"
    assert outcome["result"] == "2"
    assert server.cells == ["1 + 1"]
    channels = "GET /api/kernels/k1/channels"
    assert server.requests == ["GET /api/status", "POST /api/kernels", channels, "DELETE /api/kernels/k1"]
    assert not server.errors, server.errors


def test_an_error_in_the_cell_is_reported_and_the_kernel_shut_down() -> None:
    stand_in = StandIn("error")
    try:
        with pytest.raises(JupyterError, match="ModuleNotFoundError: No module named 'xarray'"):
            run_code(f"http://127.0.0.1:{stand_in.port}/lab", "import xarray", token=TOKEN, timeout=10)
        assert stand_in.requests[-1] == "DELETE /api/kernels/k1"
    finally:
        stand_in.close()


def test_a_wrong_token_is_refused(server: StandIn) -> None:
    with pytest.raises(JupyterError, match="403 Forbidden: the token is not this server's"):
        run_code(f"http://127.0.0.1:{server.port}/lab?token=wrong", "1", timeout=10)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://203.0.113.7:8887/lab?token=x", "not this machine's loopback"),
        ("https://localhost:7005/lab?token=x", "not an http:// URL"),
        ("http://localhost:7005/lab", "no token"),
    ],
)
def test_urls_other_than_a_tunnel_with_a_token_are_refused(url: str, message: str) -> None:
    with pytest.raises(JupyterError, match=message):
        run_code(url, "1", timeout=1)
