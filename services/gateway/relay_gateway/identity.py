"""Who is on the other end of a socket handshake or a REST call."""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from redis.exceptions import RedisError
from relay_auth import AuthError, Principal, TokenVerifier, extract_token

from relay_gateway.sessions import SESSION_COOKIES, SessionStore


def environ_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """Headers of a python-socketio (WSGI-style) environ, lower-cased."""
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    if "CONTENT_TYPE" in environ:
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


# what a namespace connect reads of the handshake's environ (`Authenticator.from_parts`: the token in a
# header or the query, else a session cookie); the next namespace of the same Engine.IO session reads it again
_KEPT = ("HTTP_AUTHORIZATION", "HTTP_COOKIE", "QUERY_STRING")


def slim_environ(environ: dict[str, Any]) -> None:
    """Keep, in place, only the credentials and query of a python-socketio environ, which lives as long
    as the connection: the ASGI scope, callables, request body reader, WSGI keys and the other headers
    (~2 KB per idle connection, measured) are read only while the handshake request runs. Rebuilt, not
    just trimmed: a dict never gives back the room of keys deleted from it."""
    kept = {k: environ[k] for k in _KEPT if k in environ}
    environ.clear()
    environ.update(kept)


def query_params(query_string: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(query_string).items() if v}


def cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:
        return {}
    return {k: morsel.value for k, morsel in jar.items()}


class Authenticator:
    """Resolves a principal from a token (auth.token, Bearer, ?token=) or else a session cookie."""

    def __init__(self, verifier: TokenVerifier, sessions: SessionStore) -> None:
        self.verifier = verifier
        self.sessions = sessions

    async def from_parts(
        self, auth: Mapping[str, Any] | None, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> Principal | None:
        """The principal, None when no credentials were offered; raises AuthError for bad ones."""
        token = extract_token(auth, headers, query)
        if token is not None:
            return self.verifier.verify(token)
        jar = cookies(headers.get("cookie", ""))
        for name in SESSION_COOKIES:
            if name in jar:
                try:
                    principal = await self.sessions.get(jar[name])
                except RedisError as exc:
                    # not "unknown": a client told AUTH_REQUIRED would drop a session that is still good
                    raise AuthError("UNAVAILABLE", "sessions unavailable (Redis), retry shortly") from exc
                if principal is None:
                    raise AuthError("AUTH_REQUIRED", f"{name} is unknown or expired")
                return principal
        return None

    async def require(
        self, auth: Mapping[str, Any] | None, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> Principal:
        principal = await self.from_parts(auth, headers, query)
        if principal is None:
            raise AuthError("AUTH_REQUIRED", "authentication required (Bearer token or session cookie)")
        return principal
