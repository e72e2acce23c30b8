"""Shared fixtures: dev tokens and a unique instance name per test run."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from relay_auth import mint_token
from relay_config import DEV_JWT_SECRET

SECRET = DEV_JWT_SECRET
Mint = Callable[..., str]


@pytest.fixture(scope="session")
def instance() -> str:
    """Prefixes exchanges, Redis keys and the database, so runs never see each other (or task dev)."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def mint() -> Mint:
    def _mint(user: str, *roles: str, tenant: str | None = "acme", claim: str = "tenantId", ttl: int = 3600) -> str:
        return mint_token(
            SECRET,
            user_id=user,
            roles=list(roles),
            tenant=tenant,
            tenant_claim=claim,
            ttl_seconds=ttl,
            extra={"username": user},
        )

    return _mint
