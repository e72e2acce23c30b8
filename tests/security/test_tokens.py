"""JWT attacks on REST and on the socket handshake, and how refused handshakes reach the client
(issue 13, findings 2 and 8)."""

from __future__ import annotations

import base64
import json
import time
import warnings
from typing import Any

import jwt
import pytest

from tests.conftest import SECRET
from tests.security.raw import RawSocket

pytestmark = pytest.mark.e2e


DAY = 86_400  # tokens are made at import: they must outlive a long test run, not test expiry


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "v-jwt", "roles": ["visitor"], "tenantId": "acme", "iat": now, "exp": now + DAY, **extra}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _tampered() -> str:
    header, _, signature = jwt.encode(_claims(), SECRET, algorithm="HS256").split(".")
    payload = _b64(json.dumps(_claims(tenantId="globex", roles=["admin"])).encode())
    return f"{header}.{payload}.{signature}"


def _hs512() -> str:
    """The right secret with an algorithm the deployment did not pin (PyJWT warns about the key length)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(_claims(), SECRET, algorithm="HS512")


NOW = int(time.time())
ATTACKS: dict[str, tuple[str, str]] = {
    "alg none": (_unsigned(_claims()), "AUTH_REQUIRED"),
    "alg NONE": (_unsigned(_claims(), "NONE"), "AUTH_REQUIRED"),
    "wrong key": (jwt.encode(_claims(), "not-the-secret-at-all-0123456789abcdef", algorithm="HS256"), "AUTH_REQUIRED"),
    "expired": (jwt.encode(_claims(exp=NOW - 60), SECRET, algorithm="HS256"), "TOKEN_EXPIRED"),
    "not yet valid": (jwt.encode(_claims(nbf=NOW + 3600), SECRET, algorithm="HS256"), "AUTH_REQUIRED"),
    "exp as string": (jwt.encode(_claims(exp=str(NOW + DAY)), SECRET, algorithm="HS256"), "AUTH_REQUIRED"),
    "nbf as string": (jwt.encode(_claims(nbf=str(NOW - 10)), SECRET, algorithm="HS256"), "AUTH_REQUIRED"),
    "iat as string": (jwt.encode(_claims(iat=str(NOW)), SECRET, algorithm="HS256"), "AUTH_REQUIRED"),
    "exp as bool": (jwt.encode(_claims(exp=True), SECRET, algorithm="HS256"), "AUTH_REQUIRED"),
    "no exp": (jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, SECRET), "AUTH_REQUIRED"),
    "sub as number": (jwt.encode(_claims(sub=42), SECRET, algorithm="HS256"), "AUTH_REQUIRED"),
    "tenant as object": (jwt.encode(_claims(tenantId={"$ne": ""}), SECRET, algorithm="HS256"), "AUTH_REQUIRED"),
    "HS512 when HS256 is pinned": (_hs512(), "AUTH_REQUIRED"),
    "tampered payload": (_tampered(), "AUTH_REQUIRED"),
    "garbage": ("not.a.jwt", "AUTH_REQUIRED"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_forged_tokens_are_refused_on_rest(client_factory, name):
    token, code = ATTACKS[name]
    client = client_factory(token, 0)
    response = await client.http.get("/v2/chats", headers=client._headers())
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_forged_tokens_are_refused_at_the_handshake_with_a_code(gateways, name):
    """Finding 8: `connect_error` carries `{code, message}` as its data, so a client can tell
    TOKEN_EXPIRED (refresh and retry) from AUTH_REQUIRED."""
    token, code = ATTACKS[name]
    for namespace in ("/", "/chat"):
        sock = RawSocket(gateways[1], namespace=namespace, auth={"token": token})
        try:
            with pytest.raises(ConnectionRefusedError) as refused:
                await sock.connect()
        finally:
            await sock.close()
        frame = str(refused.value.args[0])
        prefix = "44" if namespace == "/" else "44/chat,"
        answer = json.loads(frame[len(prefix) :])
        assert answer["data"]["code"] == code, answer
        assert isinstance(answer["data"]["message"], str) and answer["data"]["message"]
        assert "{" not in answer["message"], "the message is text, not a Python dict's repr"


async def test_a_valid_token_still_connects(gateways, mint):
    async with RawSocket(gateways[0], auth={"token": mint("v-jwt-ok", "visitor")}) as sock:
        assert (await sock.call("health-check"))["success"] is True
