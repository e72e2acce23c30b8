"""Seeded demo users for dev login (`POST /api/v1/auth/login`), passwords stored as bcrypt hashes.

On only when DEV_LOGIN is enabled (the default outside production). Real deployments issue tokens
from their own identity provider and configure JWT_SECRET / JWT_PUBLIC_KEY.
"""

from __future__ import annotations

from dataclasses import dataclass

import bcrypt
from relay_auth import Principal

_PASSWORD123 = "$2b$10$qajpI4vk7WPE6Keo/X4B.uwt.C.C5WPqCktMWmZKAc78/BIVevmi."  # "password123" (seed-004)
_DEMO1234 = "$2b$10$mDQ4ocyutWaDhDfPAWb8Hu5AYXU1dZCLoWHYctRyRNDg9gI2M/ebe"  # "demo1234"

# restaurants of seed-004's flow; restaurant B exists to prove tenant isolation
RESTAURANT_A = "rest-a"
RESTAURANT_B = "rest-b"


@dataclass(frozen=True)
class DemoUser:
    email: str
    password_hash: str
    user_id: str
    username: str
    roles: tuple[str, ...]
    tenant: str
    tenant_claim: str = "tenantId"

    def principal(self) -> Principal:
        return Principal(
            user_id=self.user_id,
            tenant=self.tenant,
            roles=frozenset(r.lower() for r in self.roles),
            username=self.username,
            email=self.email,
            has_tenant_claim=True,
            tenant_claim=self.tenant_claim,
        )


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("waiter@restaurante.com", _PASSWORD123, "waiter-1", "Waiter", ("WAITER",), RESTAURANT_A, "restaurantId"),
    DemoUser(
        "kitchen@restaurante.com", _PASSWORD123, "kitchen-1", "Kitchen", ("KITCHEN",), RESTAURANT_A, "restaurantId"
    ),
    DemoUser(
        "manager@restaurante.com", _PASSWORD123, "manager-1", "Manager", ("MANAGER",), RESTAURANT_A, "restaurantId"
    ),
    DemoUser(
        "waiter@restaurante-b.com", _PASSWORD123, "waiter-b", "Waiter B", ("WAITER",), RESTAURANT_B, "restaurantId"
    ),
    DemoUser(
        "kitchen@restaurante-b.com", _PASSWORD123, "kitchen-b", "Kitchen B", ("KITCHEN",), RESTAURANT_B, "restaurantId"
    ),
    DemoUser(
        "manager@restaurante-b.com", _PASSWORD123, "manager-b", "Manager B", ("MANAGER",), RESTAURANT_B, "restaurantId"
    ),
    DemoUser("agent@relay.dev", _DEMO1234, "agent-1", "Ana (agent)", ("commercial",), "acme"),
    DemoUser("agent2@relay.dev", _DEMO1234, "agent-2", "Bruno (agent)", ("agent",), "acme"),
    DemoUser("admin@relay.dev", _DEMO1234, "admin-1", "Admin", ("admin", "ADMIN"), "acme"),
    DemoUser("experto@relay.dev", _DEMO1234, "experto-1", "Experto", ("experto",), "acme"),
    DemoUser("cliente@relay.dev", _DEMO1234, "cliente-1", "Cliente", ("cliente",), "acme"),
)

_BY_EMAIL = {u.email.lower(): u for u in DEMO_USERS}
# checked when the email is unknown, so a miss costs as much as a hit (no user enumeration by timing)
_DUMMY_HASH = _DEMO1234.encode()


def check_password(email: str, password: str) -> DemoUser | None:
    user = _BY_EMAIL.get(email.strip().lower())
    hashed = user.password_hash.encode() if user else _DUMMY_HASH
    ok = bcrypt.checkpw(password.encode(), hashed)
    return user if user and ok else None
