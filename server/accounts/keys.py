"""The accounts' state on the app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

# Called with (app, user_id) when a resident deletes their account, before the account itself
# is erased: each domain that holds personal data registers how it forgets the resident, so
# accounts need not know the domains that build on them.
EraseHook = Callable[[web.Application, str], Awaitable[None]]
ERASE_HOOKS = web.AppKey("erase_hooks", list[EraseHook])


def on_erase(app: web.Application, hook: EraseHook) -> None:
    """Register what a domain does when a resident deletes their account."""
    app.setdefault(ERASE_HOOKS, []).append(hook)


# Called with (app, user_id) for a resident's copy of their data (`GET /me/export`): each
# domain that holds personal data returns its section's name and content.
ExportHook = Callable[[web.Application, str], Awaitable[tuple[str, Any]]]
EXPORT_HOOKS = web.AppKey("export_hooks", list[ExportHook])


def on_export(app: web.Application, hook: ExportHook) -> None:
    """Register what a domain contributes to a resident's export."""
    app.setdefault(EXPORT_HOOKS, []).append(hook)
