"""WeChat's jscode2session exchange (the only call to WeChat's API).

One retry on a network error or errcode -1 (system busy); errcodes map to the statuses of
API.md. The session_key is dropped here: it is never stored, returned or logged."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp

from server.kernel.errors import ApiError, Forbidden, RateLimited, ServiceUnavailable, Unauthorized
from server.kernel.settings import Settings

log = logging.getLogger(__name__)

INVALID_CODE = {40029, 40163}
QUOTA = 45011
HIGH_RISK = 40226
BUSY = -1


@dataclass(frozen=True)
class WeChatIdentity:
    openid: str
    unionid: str | None


class _Retryable(Exception):
    pass


async def exchange_code(
    session: aiohttp.ClientSession, settings: Settings, code: str
) -> WeChatIdentity:
    last_error: Exception | None = None
    for attempt in range(2):
        try:
            return await _exchange_once(session, settings, code)
        except _Retryable as error:
            last_error = error
            if attempt == 0:
                await asyncio.sleep(0.2)
    log.warning("wechat unavailable after retry", extra={"reason": str(last_error)})
    raise ServiceUnavailable("微信服务暂时不可用，请稍后重试", code="wechat_unavailable")


async def _exchange_once(
    session: aiohttp.ClientSession, settings: Settings, code: str
) -> WeChatIdentity:
    params = {
        "appid": settings.wechat_appid,
        "secret": settings.wechat_secret.get_secret_value(),
        "js_code": code,
        "grant_type": "authorization_code",
    }
    url = settings.wechat_api_base.rstrip("/") + "/sns/jscode2session"
    timeout = aiohttp.ClientTimeout(total=settings.wechat_timeout_seconds)
    try:
        async with session.get(url, params=params, timeout=timeout) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise _Retryable(type(error).__name__) from None
    errcode = int(body.get("errcode") or 0)
    if errcode == 0 and body.get("openid"):
        return WeChatIdentity(openid=str(body["openid"]), unionid=body.get("unionid"))
    if errcode == BUSY:
        raise _Retryable("errcode -1")
    raise _mapped_error(errcode)


def _mapped_error(errcode: int) -> ApiError:
    log.info("wechat refused code", extra={"errcode": errcode})
    if errcode in INVALID_CODE:
        return Unauthorized("登录凭证无效或已使用，请重新进入小程序", code="wechat_code_invalid")
    if errcode == QUOTA:
        return RateLimited(60, "登录请求过于频繁，请稍后再试", code="wechat_quota")
    if errcode == HIGH_RISK:
        return Forbidden("该微信账号存在风险，暂无法登录", code="wechat_high_risk")
    return ServiceUnavailable("微信登录暂时失败，请稍后重试", code="wechat_error")
