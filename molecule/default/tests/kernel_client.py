"""Start a kernel through a Jupyter server's REST API, run code over the kernel's websocket, print the result.

Runs on the VM with the Jupyter environment's Python (tornado, its HTTP and websocket client,
comes with jupyter_server):

    python kernel_client.py BASE_URL TOKEN_FILE CODE_FILE

prints {"status": "ok" | "error", "stdout": ..., "error": ...} as JSON. The kernel is shut down
afterwards.
"""

import asyncio
import json
import sys
import uuid
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect


def execute_request(code: str, session: str) -> dict:
    """A Jupyter messaging protocol execute_request for the shell channel."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": "molecule",
            "session": session,
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    }


async def run(base: str, token: str, code: str) -> dict:
    headers = {"Authorization": f"token {token}"}
    http = AsyncHTTPClient()
    reply = await http.fetch(HTTPRequest(f"{base}/api/kernels", method="POST", headers=headers, body="{}"))
    kernel_id = json.loads(reply.body)["id"]
    result = {"status": None, "stdout": "", "error": None}
    try:
        channels = base.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
        socket = await websocket_connect(HTTPRequest(channels, headers=headers))
        request = execute_request(code, uuid.uuid4().hex)
        socket.write_message(json.dumps(request))
        while result["status"] is None:
            message = json.loads(await asyncio.wait_for(socket.read_message(), 120))
            if message.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                result["stdout"] += content["text"]
            elif kind == "error":
                result["error"] = f"{content['ename']}: {content['evalue']}"
            elif kind == "execute_reply":
                result["status"] = content["status"]
        socket.close()
    finally:
        await http.fetch(HTTPRequest(f"{base}/api/kernels/{kernel_id}", method="DELETE", headers=headers))
    return result


if __name__ == "__main__":
    base_url, token_file, code_file = sys.argv[1:4]
    token = Path(token_file).read_text().strip()
    print(json.dumps(asyncio.run(run(base_url, token, Path(code_file).read_text()))))
