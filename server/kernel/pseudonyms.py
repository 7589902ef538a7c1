"""Salted hashes that stand for a client's address, network and device (PIPL: none of them is
kept or logged in the clear). The salt is derived from the deployment's signing key, so a
hash can't be reversed by trying the 2^32 addresses without it, and two deployments' hashes
can't be joined."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any

from aiohttp import web

from server.kernel.keys import SETTINGS

DEVICE_HEADER = "X-Device-Id"
MAX_DEVICE_ID = 128  # longer values are not device ids; they are ignored, not refused


def salted_hash(settings: Any, value: str) -> str:
    salt = (settings.quiz_signing_key.get_secret_value() if settings else "") or "development"
    return hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()[:24]


def address_hash(request: web.Request) -> str:
    """The client's exact address, hashed (the rate limiter's identity of anonymous callers)."""
    return salted_hash(request.app.get(SETTINGS), request.remote or "unknown")


def network_of(address: str | None) -> str | None:
    """The /24 of an IPv4 address or the /48 of an IPv6 one (a household's or a village
    Wi-Fi's prefix; a carrier hands out addresses within it), as text; None if unparsable."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def client_paradata(request: web.Request) -> dict[str, str | None]:
    """Salted hashes of the client's network and of the device id its app sends (optional)."""
    settings = request.app.get(SETTINGS)
    network = network_of(request.remote)
    device = request.headers.get(DEVICE_HEADER, "").strip()
    usable = 0 < len(device) <= MAX_DEVICE_ID and device.isprintable()
    return {
        "ip_hash": salted_hash(settings, "net:" + network) if network else None,
        "device_hash": salted_hash(settings, "dev:" + device) if usable else None,
    }
