"""JWT verification with pinned algorithms, and dev token minting."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from relay_auth.principal import Principal


class AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# RFC 7519 NumericDate claims: PyJWT reads `"exp": "1700000000"` as a number; a principal would not
# (its expiry would go unwatched), so a token whose times are not JSON numbers is refused outright
TIME_CLAIMS = ("exp", "nbf", "iat")
LEEWAY_SECONDS = 5
VERIFIED_TOKENS = 4096  # recently verified tokens remembered per verifier


def _check_time_claims(token: str) -> None:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return  # the verifying decode says what is wrong with it
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise AuthError("AUTH_REQUIRED", f"invalid token: the {name} claim must be a number (NumericDate)")


class TokenVerifier:
    """Verifies tokens against the configured algorithms only (no `alg: none`, no confusion)."""

    def __init__(
        self,
        *,
        secret: str,
        algorithms: tuple[str, ...] = ("HS256",),
        public_key: str = "",
        issuer: str = "",
        audience: str = "",
        require_tenant: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._algorithms = list(algorithms)
        self._key = public_key if algorithms[0][:2] in ("RS", "ES") else secret
        if not self._key:
            raise ValueError("no verification key configured for JWT")
        self._issuer = issuer or None
        self._audience = audience or None
        self._require_tenant = require_tenant
        self._clock = clock
        # a REST client sends the same token with every request: its signature and claims are checked once,
        # and only its expiry again (a principal is immutable; a token once valid stays so until it expires)
        # keyed by a digest, not the token: a JWT is ~0.3-1 KB and each socket's token would stay here
        self._verified: OrderedDict[bytes, Principal] = OrderedDict()

    def verify(self, token: str) -> Principal:
        if not token or not isinstance(token, str):
            raise AuthError("AUTH_REQUIRED", "missing token")
        key = hashlib.blake2b(token.encode(), digest_size=32).digest()
        principal = self._verified.get(key)
        if principal is not None:
            if principal.expires_at is not None and self._clock() > principal.expires_at + LEEWAY_SECONDS:
                del self._verified[key]
                raise AuthError("TOKEN_EXPIRED", "token expired")
            self._verified.move_to_end(key)
            return principal
        principal = self._verify(token)
        self._verified[key] = principal
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> Principal:
        _check_time_claims(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp"], "verify_aud": self._audience is not None},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("TOKEN_EXPIRED", "token expired") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("AUTH_REQUIRED", f"invalid token: {exc}") from exc
        try:
            principal = Principal.from_claims(claims)
        except ValueError as exc:
            raise AuthError("AUTH_REQUIRED", f"invalid token: {exc}") from exc
        if self._require_tenant and not principal.has_tenant_claim:
            raise AuthError("AUTH_REQUIRED", "token has no tenant claim (tenantId or restaurantId)")
        return principal


def extract_token(auth: Mapping[str, Any] | None, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The handshake token, looked for in SPEC order: auth.token, Authorization: Bearer, ?token=."""
    if auth and isinstance(auth.get("token"), str) and auth["token"]:
        return str(auth["token"])
    header = headers.get("authorization") or headers.get("Authorization") or ""
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    token = query.get("token")
    return token or None


def mint_token(
    secret: str,
    *,
    user_id: str,
    roles: list[str] | None = None,
    tenant: str | None = None,
    tenant_claim: str = "tenantId",
    ttl_seconds: int = 3600,
    algorithm: str = "HS256",
    extra: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "userId": user_id, "iat": now, "exp": now + ttl_seconds}
    if roles:
        claims["roles"] = roles
        claims["role"] = roles[0]
    if tenant:
        claims[tenant_claim] = tenant
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm=algorithm)
