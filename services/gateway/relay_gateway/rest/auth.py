"""Sign-in: dev login for demo users (JWT + `console_session`), visitor sessions, logout."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from relay_auth import Principal, mint_token
from relay_contracts import ErrorCode, RelayError
from relay_log import bind_contextvars, get_logger
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay_gateway.demo_users import check_password
from relay_gateway.rest.edge import documented, gateway, read_body
from relay_gateway.sessions import CONSOLE_COOKIE, SESSION_COOKIES, VISITOR_COOKIE

log = get_logger(__name__)


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]

    @field_validator("password")
    @classmethod
    def _bcrypt_sized(cls, value: str) -> str:
        # bcrypt reads at most 72 bytes and refuses longer input: no stored password is longer
        if len(value.encode("utf-8", "surrogatepass")) > 72:
            raise ValueError("at most 72 bytes (UTF-8)")
        return value


class VisitorSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenantId: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = "acme"
    name: Annotated[str, StringConstraints(max_length=80)] | None = None


def _token_for(request: Request, principal: Principal, claim: str = "tenantId") -> str:
    settings = gateway(request).settings
    return mint_token(
        settings.jwt_secret,
        user_id=principal.user_id,
        roles=principal.spelled_roles,
        tenant=principal.tenant,
        tenant_claim=claim,
        ttl_seconds=settings.access_token_ttl_seconds,
        algorithm=settings.jwt_algorithms[0],
        extra={"username": principal.username, "email": principal.email},
    )


def _with_cookie(request: Request, body: dict[str, Any], name: str, session_id: str, status: int) -> JSONResponse:
    gw = gateway(request)
    response = JSONResponse(body, status_code=status)
    response.set_cookie(
        name,
        session_id,
        max_age=gw.settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=gw.settings.secure_cookies,
        path="/",
    )
    return response


@documented(body=Login)
async def login(request: Request) -> JSONResponse:
    """Dev sign-in of a demo user: `{accessToken, tokenType, expiresIn, user}` and a `console_session` cookie."""
    gw = gateway(request)
    if not gw.settings.dev_login_enabled or not gw.settings.jwt_algorithms[0].startswith("HS"):
        raise RelayError(ErrorCode.NOT_FOUND, "login is not enabled on this deployment")
    body = await read_body(request, Login, max_bytes=4096)
    user = check_password(body.email, body.password)
    if user is None:
        log.info("auth.login_failed")
        raise RelayError(ErrorCode.AUTH_REQUIRED, "invalid email or password")
    principal = user.principal()
    bind_contextvars(user_id=principal.user_id, tenant=principal.tenant)
    session_id = await gw.auth.sessions.create(principal)
    payload = {
        "accessToken": _token_for(request, principal, user.tenant_claim),
        "tokenType": "Bearer",
        "expiresIn": gw.settings.access_token_ttl_seconds,
        "user": principal.public(),
    }
    log.info("auth.login")
    return _with_cookie(request, payload, CONSOLE_COOKIE, session_id, 200)


@documented(body=VisitorSession)
async def visitor_session(request: Request) -> JSONResponse:
    """A visitor's session: `{visitorId, tenantId, user}` and a `visitor_session` cookie."""
    gw = gateway(request)
    body = await read_body(request, VisitorSession, max_bytes=4096)
    visitor_id = f"visitor-{uuid.uuid4().hex[:12]}"
    principal = Principal(
        user_id=visitor_id, tenant=body.tenantId, roles=frozenset({"visitor"}), username=body.name or "Visitor"
    )
    session_id = await gw.auth.sessions.create(principal)
    payload = {"visitorId": visitor_id, "tenantId": body.tenantId, "user": principal.public()}
    return _with_cookie(request, payload, VISITOR_COOKIE, session_id, 201)


async def logout(request: Request) -> JSONResponse:
    """Ends the caller's cookie sessions and clears the cookies."""
    gw = gateway(request)
    response = JSONResponse({"success": True})
    for name in SESSION_COOKIES:
        if name in request.cookies:
            await gw.auth.sessions.delete(request.cookies[name])
            response.delete_cookie(name, path="/")
    return response


ROUTES = [
    Route("/api/v1/auth/login", login, methods=["POST"]),
    Route("/v2/visitor/session", visitor_session, methods=["POST"]),
    Route("/api/v1/auth/logout", logout, methods=["POST"]),
]
