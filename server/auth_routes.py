"""Sign-in and sign-out for staff (and, later, residents via WeChat)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import Field

from server import auth, users
from server.http import ANY_ROLE, endpoint, json_response
from server.keys import DB, KV, PRINCIPAL, SETTINGS
from server.models import ApiModel


class StaffLogin(ApiModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserRead(ApiModel):
    id: str
    username: str | None = None
    role: str


class TokenRead(ApiModel):
    token: str
    expires_at: datetime
    user: UserRead


@endpoint(roles="public", body=StaffLogin, response=TokenRead, tag="auth")
async def staff_login(request: web.Request, *, body: StaffLogin) -> web.Response:
    """Sign a staff member in with username and password."""
    settings = request.app[SETTINGS]
    user, token = await users.login_staff(
        request.app[DB],
        request.app[KV],
        username=body.username,
        password=body.password,
        ttl_seconds=settings.staff_token_ttl_seconds,
    )
    return json_response(
        {
            "token": token.token,
            "expires_at": token.expires_at.isoformat(),
            "user": users.public_view(user),
        }
    )


@endpoint(roles=ANY_ROLE, tag="auth")
async def logout(request: web.Request) -> web.Response:
    """Revoke the token presented with this request."""
    await auth.revoke_token(request.app[KV], request[PRINCIPAL])
    return json_response({"status": "signed_out"})


def setup(app: web.Application, api: str) -> None:
    app.router.add_post(f"{api}/auth/staff", staff_login)
    app.router.add_post(f"{api}/auth/logout", logout)
