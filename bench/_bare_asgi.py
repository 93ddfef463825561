"""The floor of the serve benchmark: a bare uvicorn + httptools ASGI app, bytes from memory.

``python -m bench._bare_asgi SPEC_JSON PORT`` serves one path: the 304 headers
when the request's If-None-Match is exactly the ETag, else the 200 headers and
body; everything else is a 404. SPEC holds what ``feedsvc serve`` answered for
that path (``path``, ``etag``, ``ok_headers``, ``not_modified_headers``: lists of
``[name, value]`` without Date, and ``body_file``), so both send the same bytes
and headers. uvicorn adds Date as it does for ``feedsvc serve``; like it, no
Server header, no access log, no lifespan, the same asyncio event loop.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import uvicorn
from starlette.types import Receive, Scope, Send


def app_of(spec: dict[str, object]) -> object:
    path, etag = str(spec["path"]), str(spec["etag"]).encode()
    body = Path(str(spec["body_file"])).read_bytes()
    ok = [(k.encode(), v.encode()) for k, v in spec["ok_headers"]]  # type: ignore[attr-defined]
    same = [(k.encode(), v.encode()) for k, v in spec["not_modified_headers"]]  # type: ignore[attr-defined]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != path:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        for name, value in scope["headers"]:
            if name == b"if-none-match" and value == etag:
                await send({"type": "http.response.start", "status": 304, "headers": same})
                await send({"type": "http.response.body", "body": b""})
                return
        await send({"type": "http.response.start", "status": 200, "headers": ok})
        await send({"type": "http.response.body", "body": body})

    return app


def main(argv: list[str]) -> None:
    spec_file, port = argv
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    uvicorn.run(
        app_of(spec),  # type: ignore[arg-type]
        host="127.0.0.1",
        port=int(port),
        http="httptools",
        loop="asyncio",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
