"""A small headless-Chromium driver over the Chrome DevTools Protocol (CDP), dependency-free:
aiohttp's websocket client talks to the browser, one flattened session per page.

    async with launch() as browser:
        page = await browser.new_page(width=1280, height=720)
        await page.goto(url)
        assert await page.evaluate("document.title") == "..."
        await page.screenshot(path)

The browser runs in its own process group with a throwaway profile directory; both are
removed on exit, whatever happened. Console errors (console.error, uncaught exceptions, and
the browser's own error log entries such as failed loads or CSP violations) are collected
on `page.errors`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests may run as root (CI containers)
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-gpu",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--hide-scrollbars",
    "--mute-audio",
    "--lang=zh-CN",
)


class BrowserError(RuntimeError):
    """Chromium is missing, would not start, or the DevTools protocol reported a failure."""


def chromium_path() -> str:
    """The Chromium executable: $CHROMIUM_BIN, else the first candidate on PATH."""
    explicit = os.environ.get("CHROMIUM_BIN")
    found = explicit or next(filter(None, map(shutil.which, CANDIDATES)), None)
    if not found:
        raise BrowserError(
            "Chromium not found: install it (Debian: apt-get install -y chromium) "
            "or set CHROMIUM_BIN"
        )
    return found


@dataclass
class ConsoleError:
    kind: str  # "console", "exception" or "log"
    text: str
    source: str = ""  # for log entries: "network", "security", "javascript", ...
    url: str = ""


class Connection:
    """One websocket to the browser; replies matched by id, events routed by session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.listeners: dict[str, Callable[[str, dict[str, Any]], None]] = {}
        self.reader = asyncio.create_task(self._read(), name="cdp-reader")

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[message_id] = future
        await self.ws.send_str(json.dumps(message))
        return await asyncio.wait_for(future, timeout=30)

    async def _read(self) -> None:
        async for raw in self.ws:
            if raw.type != aiohttp.WSMsgType.TEXT:
                break
            self._dispatch(json.loads(raw.data))
        for future in self.pending.values():
            if not future.done():
                future.set_exception(BrowserError("the browser closed the connection"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message:
            future = self.pending.pop(message["id"], None)
            if future is None or future.done():
                return
            if "error" in message:
                future.set_exception(BrowserError(f"CDP error: {message['error']}"))
            else:
                future.set_result(message.get("result", {}))
            return
        listener = self.listeners.get(message.get("sessionId", ""))
        if listener:
            listener(message["method"], message.get("params", {}))

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


@dataclass
class Page:
    """One tab. Every evaluation awaits promises and returns values by value."""

    connection: Connection
    session: str
    errors: list[ConsoleError] = field(default_factory=list)
    waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = field(default_factory=dict)
    answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.connection.send(method, params, self.session)

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        for future in self.waiters.pop(method, []):
            if not future.done():
                future.set_result(params)
        error = _console_error(method, params)
        if error is not None:
            self.errors.append(error)
        if method == "Fetch.requestPaused":
            task = asyncio.create_task(self._answer(params))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def intercept(self, pattern: str, *, status: int = 0, fail: str = "") -> None:
        """Answer requests whose URL matches `pattern` (a glob) with a JSON error of `status`,
        or fail them as the network would (`fail`, e.g. "InternetDisconnected")."""

        def answer(request: dict[str, Any]) -> dict[str, Any]:
            if fail:
                return {"method": "Fetch.failRequest", "errorReason": fail}
            body = json.dumps({"error": {"code": "injected", "message": "injected"}}).encode()
            return {
                "method": "Fetch.fulfillRequest",
                "responseCode": status,
                "responseHeaders": [{"name": "Content-Type", "value": "application/json"}],
                "body": base64.b64encode(body).decode(),
            }

        self.answer = answer
        await self.send("Fetch.enable", patterns=[{"urlPattern": pattern}])

    async def stop_intercepting(self) -> None:
        self.answer = None
        await self.send("Fetch.disable")

    async def _answer(self, paused: dict[str, Any]) -> None:
        reply = self.answer(paused) if self.answer else {"method": "Fetch.continueRequest"}
        with contextlib.suppress(BrowserError):  # the page may have gone meanwhile
            await self.send(reply.pop("method"), requestId=paused["requestId"], **reply)

    def expect(self, method: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the next `method` event; create it before causing the event."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(method, []).append(future)
        return future

    async def goto(self, url: str, within: float = 30) -> None:
        loaded = self.expect("Page.loadEventFired")
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")
        await asyncio.wait_for(loaded, within)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"evaluation failed: {text}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, within: float = 20, interval: float = 0.1) -> Any:
        """Poll `expression` until it is truthy; returns its value."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"timed out waiting for: {expression}")
            await asyncio.sleep(interval)

    async def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=2 if mobile else 1,
            mobile=mobile,
        )

    async def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element (scrolled into view first)."""
        box = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return null; el.scrollIntoView({block: 'center'});"
            " const r = el.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        if box is None:
            raise BrowserError(f"no element matches {selector}")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )

    async def type(self, selector: str, text: str) -> None:
        """Focus a field, clear it and type into it as a keyboard would."""
        found = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.focus(); el.select && el.select(); return true; })()"
        )
        if not found:
            raise BrowserError(f"no element matches {selector}")
        await self.send("Input.insertText", text=text)

    async def text(self, selector: str) -> str:
        value = await self.evaluate(
            f"document.querySelector({json.dumps(selector)})?.innerText ?? null"
        )
        if value is None:
            raise BrowserError(f"no element matches {selector}")
        return str(value)

    async def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = (await self.send("Page.getLayoutMetrics"))["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"]}
            params["clip"]["scale"] = 1
            params["captureBeyondViewport"] = True
        shot = await self.send("Page.captureScreenshot", **params)
        return _write(path, base64.b64decode(shot["data"]))


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _console_error(method: str, params: dict[str, Any]) -> ConsoleError | None:
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        args = params.get("args", [])
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
        return ConsoleError("console", text)
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        text = details.get("exception", {}).get("description") or details.get("text", "")
        return ConsoleError("exception", text, url=details.get("url", ""))
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return ConsoleError(
            "log", entry.get("text", ""), entry.get("source", ""), entry.get("url", "")
        )
    return None


@dataclass
class Browser:
    connection: Connection
    pages: list[Page] = field(default_factory=list)

    async def new_page(self, *, width: int = 1280, height: int = 720, mobile: bool = False) -> Page:
        target = await self.connection.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.connection.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self.connection, attached["sessionId"])
        self.connection.listeners[page.session] = page.on_event
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.viewport(width, height, mobile=mobile)
        self.pages.append(page)
        return page


@contextlib.asynccontextmanager
async def launch(executable: str | None = None) -> AsyncIterator[Browser]:
    """Start headless Chromium and connect to it; always stop it and remove its profile."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-test-"))
    log_path = profile / "chromium.log"
    process: asyncio.subprocess.Process | None = None
    try:
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                executable or chromium_path(),
                *FLAGS,
                f"--user-data-dir={profile / 'data'}",
                "about:blank",
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group, so helpers stop with it
                env=_contained_env(profile),
            )
        async with aiohttp.ClientSession() as http:
            url = await _devtools_url(profile / "data", process, log_path)
            ws = await http.ws_connect(url, max_msg_size=0)
            connection = Connection(ws)
            try:
                yield Browser(connection)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.send("Browser.close"), timeout=3)
                await connection.close()
    finally:
        if process is not None:
            await _stop(process)
        shutil.rmtree(profile, ignore_errors=True)


def _contained_env(profile: Path) -> dict[str, str]:
    """Keep the browser's config, cache and crash reports inside the throwaway profile."""
    return {
        **os.environ,
        "HOME": str(profile),
        "XDG_CONFIG_HOME": str(profile / "config"),
        "XDG_CACHE_HOME": str(profile / "cache"),
    }


async def _devtools_url(
    data_dir: Path, process: asyncio.subprocess.Process, log_path: Path, within: float = 20
) -> str:
    """The browser's websocket address, from the DevToolsActivePort file it writes."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline and process.returncode is None:
        lines = _read_lines(data_dir / "DevToolsActivePort")
        if len(lines) >= 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(0.05)
    tail = "\n".join(_read_lines(log_path)[-30:])
    raise BrowserError(f"Chromium did not start its DevTools endpoint:\n{tail}")


def _read_lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Stop the browser's process group (the browser and the helpers it spawned)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
            break
        except TimeoutError:
            continue
    # Helpers may outlive the browser by a moment; the group id is still ours to signal.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
