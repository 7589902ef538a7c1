"""A local stand-in for WeChat's jscode2session (the only faked service: WeChat can't be
reached from here). The code decides the answer:

  ok-<name>           → openid "oid-<name>" (unionid "uid-<name>")
  busy-once-<name>    → errcode -1 the first time, then like ok-<name>
  invalid / used / quota / risky / busy → errcodes 40029 / 40163 / 45011 / 40226 / -1
  slow                → answers after 10 s (the client's timeout is shorter)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

ERRCODES = {"invalid": 40029, "used": 40163, "quota": 45011, "risky": 40226, "busy": -1}


@dataclass
class FakeWeChat:
    calls: Counter[str] = field(default_factory=Counter)
    seen_params: list[dict[str, str]] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def handle(self, request: web.Request) -> web.Response:
        code = request.query.get("js_code", "")
        self.calls[code] += 1
        self.seen_params.append(dict(request.query))
        if code == "slow":
            await asyncio.sleep(10)
        if code in ERRCODES:
            return web.json_response({"errcode": ERRCODES[code], "errmsg": "fake"})
        if code.startswith("busy-once-") and self.calls[code] == 1:
            return web.json_response({"errcode": -1, "errmsg": "system busy"})
        name = code.removeprefix("busy-once-").removeprefix("ok-")
        return web.json_response(
            {"openid": f"oid-{name}", "session_key": f"SESSIONKEY-{name}", "unionid": f"uid-{name}"}
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/sns/jscode2session", self.handle)
        self.server = TestServer(app)
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
