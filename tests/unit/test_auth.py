"""JWT verification (SPEC §2): pinned algorithms, exp required, iss/aud, tenant claims."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from relay_auth import AuthError, Principal, TokenVerifier, extract_token, mint_token

SECRET = "unit-test-secret-" + "x" * 64


def verifier(**kw) -> TokenVerifier:
    return TokenVerifier(secret=SECRET, **kw)


def claims(**extra) -> dict:
    return {"sub": "u1", "exp": int(time.time()) + 60, **extra}


def test_valid_token_gives_principal_with_tenant_and_lowercased_roles():
    token = jwt.encode(claims(roles=["Commercial", "ADMIN"], tenantId="acme", username="ana"), SECRET, "HS256")
    p = verifier().verify(token)
    assert p == Principal(
        user_id="u1",
        tenant="acme",
        roles=frozenset({"commercial", "admin"}),
        username="ana",
        expires_at=p.expires_at,
        has_tenant_claim=True,
    )
    assert p.is_agent and p.is_admin


def test_user_id_and_role_and_restaurant_claims_are_understood():
    token = jwt.encode({"userId": "w1", "role": "WAITER", "restaurantId": "r9", "exp": time.time() + 60}, SECRET)
    p = verifier().verify(token)
    assert (p.user_id, p.tenant, p.roles) == ("w1", "r9", frozenset({"waiter"}))
    assert not p.is_agent


def test_absent_tenant_is_default():
    assert verifier().verify(jwt.encode(claims(), SECRET)).tenant == "default"


def test_expired_token_is_token_expired():
    token = jwt.encode({"sub": "u1", "exp": int(time.time()) - 60}, SECRET)
    with pytest.raises(AuthError) as err:
        verifier().verify(token)
    assert err.value.code == "TOKEN_EXPIRED"


def test_a_token_accepted_before_is_refused_once_it_expires():
    now = [time.time()]
    check = verifier(clock=lambda: now[0])
    token = jwt.encode(claims(roles=["agent"]), SECRET, "HS256")
    assert check.verify(token).user_id == "u1"
    assert check.verify(token).user_id == "u1"  # the same token again
    now[0] += 3600
    with pytest.raises(AuthError) as err:
        check.verify(token)
    assert err.value.code == "TOKEN_EXPIRED"


def test_a_refused_token_stays_refused():
    check = verifier()
    forged = jwt.encode(claims(), "another-secret-" + "y" * 64, "HS256")
    for _ in range(2):
        with pytest.raises(AuthError) as err:
            check.verify(forged)
        assert err.value.code == "AUTH_REQUIRED"


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: jwt.encode(claims(), SECRET, "HS512"), id="algorithm-not-pinned"),
        pytest.param(lambda: jwt.encode(claims(), "another-secret-" + "y" * 64), id="wrong-secret"),
        pytest.param(lambda: jwt.encode({"sub": "u1"}, SECRET), id="no-exp"),
        pytest.param(lambda: jwt.encode({"exp": int(time.time()) + 3600}, SECRET), id="no-subject"),
        pytest.param(lambda: jwt.encode(claims(tenantId=""), SECRET), id="empty-tenant"),
        pytest.param(lambda: "not-a-jwt", id="garbage"),
    ],
)
def test_refused_tokens(make_token):
    # built when the test runs, not at collection: a long suite must not turn these into expired tokens
    with pytest.raises(AuthError) as err:
        verifier().verify(make_token())
    assert err.value.code == "AUTH_REQUIRED"


def test_alg_none_is_refused():
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    with pytest.raises(AuthError):
        verifier().verify(f"{header.decode()}.{body.decode()}.")


def test_algorithm_confusion_public_key_used_as_hmac_secret_is_refused():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rs = TokenVerifier(secret="", algorithms=("RS256",), public_key=public_pem)
    good = jwt.encode(claims(), key, "RS256")
    assert rs.verify(good).user_id == "u1"
    # an attacker signs HS256 with the public key as the secret: must not verify
    forged_header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    signing_input = forged_header + b"." + body
    sig = base64.urlsafe_b64encode(hmac.new(public_pem.encode(), signing_input, hashlib.sha256).digest()).rstrip(b"=")
    with pytest.raises(AuthError):
        rs.verify((signing_input + b"." + sig).decode())


def test_issuer_and_audience_are_checked_when_configured():
    v = verifier(issuer="relay", audience="clients")
    assert v.verify(jwt.encode(claims(iss="relay", aud="clients"), SECRET)).user_id == "u1"
    for bad in (claims(iss="evil", aud="clients"), claims(iss="relay", aud="other"), claims()):
        with pytest.raises(AuthError):
            v.verify(jwt.encode(bad, SECRET))


def test_require_tenant_claim():
    v = verifier(require_tenant=True)
    with pytest.raises(AuthError):
        v.verify(jwt.encode(claims(), SECRET))
    assert v.verify(jwt.encode(claims(restaurantId="r1"), SECRET)).tenant == "r1"


def test_token_is_looked_for_in_spec_order():
    assert extract_token({"token": "a"}, {"authorization": "Bearer b"}, {"token": "c"}) == "a"
    assert extract_token({}, {"authorization": "Bearer b"}, {"token": "c"}) == "b"
    assert extract_token(None, {"authorization": "Basic x"}, {"token": "c"}) == "c"
    assert extract_token(None, {}, {}) is None


def test_minted_dev_token_round_trips():
    token = mint_token(SECRET, user_id="k1", roles=["KITCHEN"], tenant="rest-a", tenant_claim="restaurantId")
    p = verifier().verify(token)
    assert (p.user_id, p.tenant, p.roles) == ("k1", "rest-a", frozenset({"kitchen"}))


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["9999999999", True, None, [1]])
def test_time_claims_must_be_numbers(name, value):
    token = jwt.encode(claims(**{name: value}), SECRET, "HS256")
    with pytest.raises(AuthError) as refused:
        verifier().verify(token)
    assert refused.value.code == "AUTH_REQUIRED" and name in refused.value.message


def test_roles_are_checked_ignoring_case_and_shown_as_spelled():
    token = jwt.encode(claims(roles=["ADMIN", "Agent", "admin"], role="ADMIN"), SECRET, "HS256")
    p = verifier().verify(token)
    assert p.is_admin and p.is_agent and p.has_role("agent")
    assert p.public()["roles"] == ["ADMIN", "Agent"] and p.public()["role"] == "ADMIN"
