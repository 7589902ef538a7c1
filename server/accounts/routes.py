"""Sign-in and sign-out (staff by password, residents by WeChat) and the resident's profile."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import Field

from server.accounts import service as users
from server.accounts import tokens as auth
from server.accounts import wechat
from server.accounts.keys import ERASE_HOOKS, EXPORT_HOOKS
from server.county import service as county_service
from server.county.models import Education, Gender, Group
from server.kernel.audit import record_request
from server.kernel.errors import Forbidden, ValidationFailed
from server.kernel.http import ANY_ROLE, endpoint, json_response
from server.kernel.keys import DB, HTTP, KV, PRINCIPAL, SETTINGS
from server.kernel.models import ApiModel


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


@endpoint(roles="public", body=StaffLogin, response=TokenRead, tag="auth", errors=(401,))
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
    await auth.revoke_token(request.app[DB], request.app[KV], request[PRINCIPAL])
    return json_response({"status": "signed_out"})


class WeChatLogin(ApiModel):
    code: str = Field(min_length=1, max_length=128)


class DevLogin(ApiModel):
    openid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class ProfileUpdate(ApiModel):
    township_code: str = Field(min_length=1, max_length=20)
    birth_year: int = Field(ge=1900, le=datetime.now().year)
    gender: Gender
    group: Group
    education: Education | None = None
    # A guardian agreed (required under 14: a minor's data is sensitive under PIPL).
    guardian_consent: bool = False
    # The privacy notice version the resident accepts with this update (the current one).
    consent_version: str | None = Field(default=None, min_length=1, max_length=20)


async def _resident_session(request: web.Request, openid: str, unionid: str | None) -> web.Response:
    settings = request.app[SETTINGS]
    user, is_new = await users.upsert_resident(request.app[DB], openid=openid, unionid=unionid)
    token = await auth.issue_token(
        request.app[DB],
        request.app[KV],
        user_id=str(user["_id"]),
        role="resident",
        ttl_seconds=settings.resident_token_ttl_seconds,
    )
    return json_response(
        {
            "token": token.token,
            "expires_at": token.expires_at.isoformat(),
            "user": me_view(user, settings.privacy_notice_version),
            "is_new": is_new,
        }
    )


@endpoint(roles="public", body=WeChatLogin, tag="auth", errors=(401, 403))
async def wechat_login(request: web.Request, *, body: WeChatLogin) -> web.Response:
    """Sign a resident in with the code from wx.login (exchanged with WeChat's jscode2session)."""
    identity = await wechat.exchange_code(request.app[HTTP], request.app[SETTINGS], body.code)
    return await _resident_session(request, identity.openid, identity.unionid)


@endpoint(roles="public", body=DevLogin, tag="auth", errors=(403,))
async def dev_login(request: web.Request, *, body: DevLogin) -> web.Response:
    """Development only: sign in as a resident by a made-up openid (refused in production)."""
    if not request.app[SETTINGS].is_development:
        raise Forbidden("开发环境专用接口，生产环境不可用", code="development_only")
    return await _resident_session(request, f"dev-{body.openid}", None)


def me_view(user: dict[str, object], privacy_version: str) -> dict[str, object]:
    view = users.public_view(user)
    if user.get("role") == "resident":
        view["profile"] = user.get("profile") or {}
        view["privacy"] = users.privacy_view(user, privacy_version)
    return view


@endpoint(roles=ANY_ROLE, tag="me", errors=(404,))
async def get_me(request: web.Request) -> web.Response:
    """The signed-in user and, for residents, their profile."""
    principal = request[PRINCIPAL]
    assert principal is not None
    user = await users.get_or_raise(request.app[DB], user_id=principal.user_id)
    return json_response(me_view(user, request.app[SETTINGS].privacy_notice_version))


@endpoint(roles=("resident",), body=ProfileUpdate, tag="me", errors=(404,))
async def put_me(request: web.Request, *, body: ProfileUpdate) -> web.Response:
    """Set the resident's profile (township, birth year, gender, group, education); a
    `consent_version` records that they accepted that privacy notice."""
    principal = request[PRINCIPAL]
    assert principal is not None
    if not await county_service.township_exists(request.app[DB], body.township_code):
        raise ValidationFailed(
            "township_code：乡镇不存在，请从乡镇列表中选择",
            details=[{"location": "body", "field": "township_code", "message": "乡镇不存在"}],
        )
    current = request.app[SETTINGS].privacy_notice_version
    if body.consent_version is not None and body.consent_version != current:
        raise ValidationFailed(
            f"consent_version：隐私政策已更新为 {current} 版，请阅读最新版本后再同意",
            details=[{"location": "body", "field": "consent_version", "message": "版本不是最新"}],
        )
    if users.is_minor(body.birth_year) and not body.guardian_consent:
        raise ValidationFailed(
            "未满14周岁的居民需要监护人同意后才能填写资料，请由监护人确认后勾选",
            code="guardian_consent_required",
            details=[
                {"location": "body", "field": "guardian_consent", "message": "需要监护人同意"}
            ],
        )
    user = await users.update_profile(
        request.app[DB],
        user_id=principal.user_id,
        # guardian_consent is kept only where it was given (a minor's profile).
        profile=body.model_dump(
            exclude={"consent_version"} | (set() if body.guardian_consent else {"guardian_consent"})
        ),
        consent_version=body.consent_version,
    )
    return json_response(me_view(user, current))


@endpoint(roles=("resident",), tag="me", errors=(404,))
async def export_me(request: web.Request) -> web.Response:
    """A copy of everything held about the resident (PIPL): account, profile, answers, reading."""
    principal = request[PRINCIPAL]
    assert principal is not None
    db = request.app[DB]
    user = await users.get_or_raise(db, user_id=principal.user_id)
    export: dict[str, object] = {
        "exported_at": datetime.now(UTC).isoformat(),
        "account": users.export_view(user),
    }
    for section in request.app.get(EXPORT_HOOKS, []):
        name, content = await section(request.app, principal.user_id)
        export[name] = content
    await record_request(request, action="export", subject=principal.user_id)
    return json_response(export, headers={"Cache-Control": "no-store"})


@endpoint(roles=("resident",), status=204, tag="me")
async def delete_me(request: web.Request) -> web.Response:
    """Delete the resident's account: personal data erased, answers kept only anonymously."""
    principal = request[PRINCIPAL]
    assert principal is not None
    for forget in request.app.get(ERASE_HOOKS, []):
        await forget(request.app, principal.user_id)
    await users.erase_resident(request.app[DB], request.app[KV], user_id=principal.user_id)
    await record_request(request, action="erase", subject=principal.user_id)
    return web.Response(status=204)


def setup(app: web.Application, api: str) -> None:
    app.router.add_post(f"{api}/auth/wechat", wechat_login)
    app.router.add_post(f"{api}/auth/dev", dev_login)
    app.router.add_get(f"{api}/me", get_me)
    app.router.add_put(f"{api}/me", put_me)
    app.router.add_delete(f"{api}/me", delete_me)
    app.router.add_get(f"{api}/me/export", export_me)
    app.router.add_post(f"{api}/auth/staff", staff_login)
    app.router.add_post(f"{api}/auth/logout", logout)
