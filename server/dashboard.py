"""The association's dashboard page (issue #7): one HTML page and its static assets, served by
the app itself (no CDN: county networks block or slow them).

The page and its assets are public: they hold no data. Every figure comes from
`/api/v1/stats/*`, which needs an analyst's token that the page keeps in memory only.

Assets are a fixed allow-list read into memory at start-up (no path from a request ever
reaches the file system). Each is served with a content hash: the page names its assets as
`static/<name>?v=<hash>`, so they can be cached for a year, while the page itself is always
revalidated (ETag) and so picks up new assets at once. Text assets are also kept gzipped,
because ECharts is a megabyte and the phones are on rural 4G."""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from server.kernel.http import endpoint

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static" / "dashboard"
# ECharts comes from npm (package.json). A packaged install (Docker) copies it to vendor/.
ECHARTS = (
    STATIC / "vendor" / "echarts.min.js",
    HERE.parent / "node_modules" / "echarts" / "dist" / "echarts.min.js",
)
ASSETS = {
    "app.js": ((STATIC / "app.js",), "text/javascript; charset=utf-8"),
    "charts.js": ((STATIC / "charts.js",), "text/javascript; charset=utf-8"),
    "style.css": ((STATIC / "style.css",), "text/css; charset=utf-8"),
    "echarts.min.js": (ECHARTS, "text/javascript; charset=utf-8"),
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
}
ASSET_CACHE = "public, max-age=31536000, immutable"
MISSING_ECHARTS = b"window.echartsMissing = true;\n"  # the page then says so in Chinese


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    content_type: str
    version: str  # a content hash: the ETag, and the `?v=` the page asks for

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:16]
        return cls(body, gzip.compress(body, 9, mtime=0), content_type, digest)


def _read_first(paths: tuple[Path, ...]) -> bytes | None:
    return next((path.read_bytes() for path in paths if path.is_file()), None)


@functools.cache
def load_assets() -> dict[str, Asset]:
    """Read the allow-listed assets, then the page with their versions written in (once per
    process: they change only with a deploy)."""
    assets = {}
    for name, (paths, content_type) in ASSETS.items():
        body = _read_first(paths)
        if body is None:
            log.warning("dashboard asset missing; run `npm ci`", extra={"asset": name})
            body = MISSING_ECHARTS if name == "echarts.min.js" else b""
        assets[name] = Asset.of(body, content_type)
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    for name, asset in assets.items():
        page = page.replace(f"static/{name}", f"static/{name}?v={asset.version}")
    assets["index.html"] = Asset.of(page.encode(), "text/html; charset=utf-8")
    return assets


def respond(request: web.Request, asset: Asset, cache_control: str) -> web.Response:
    """The asset, or 304 when the client's copy is current; gzipped when accepted."""
    zipped = "gzip" in request.headers.get("Accept-Encoding", "")
    etag = f'"{asset.version}-gz"' if zipped else f'"{asset.version}"'
    headers = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": cache_control}
    headers["Vary"] = "Accept-Encoding"
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    if zipped:
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = asset.content_type
    return web.Response(body=asset.gzipped if zipped else asset.body, headers=headers)


def setup(app: web.Application) -> None:
    """Mount the dashboard page and its static files."""
    assets = load_assets()

    @endpoint(roles="public", tag="dashboard", errors=(304,))
    async def dashboard_page(request: web.Request) -> web.Response:
        """Serve the association's dashboard page (it holds no data)."""
        return respond(request, assets["index.html"], "no-cache")

    @endpoint(roles="public", tag="dashboard", errors=(304, 404))
    async def dashboard_asset(request: web.Request) -> web.Response:
        """Serve one of the dashboard's static files (JavaScript, CSS, ECharts)."""
        name = request.match_info["name"]
        asset = assets.get(name) if name in ASSETS else None
        if asset is None:
            raise web.HTTPNotFound()
        return respond(request, asset, ASSET_CACHE)

    app.router.add_get("/dashboard", dashboard_page)
    app.router.add_get("/dashboard/", dashboard_page)
    app.router.add_get("/dashboard/static/{name}", dashboard_asset)
