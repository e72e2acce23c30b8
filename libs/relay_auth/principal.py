"""Who is calling: the user, their roles and their tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AGENT_ROLES = frozenset({"commercial", "agent", "admin", "experto", "moderador"})
ADMIN_ROLES = frozenset({"admin"})
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Principal:
    user_id: str
    tenant: str = DEFAULT_TENANT
    roles: frozenset[str] = field(default_factory=frozenset)  # lower-cased: every check ignores case
    username: str | None = None
    email: str | None = None
    avatar: str | None = None
    expires_at: float | None = None
    has_tenant_claim: bool = False
    # which claim named the tenant ("tenantId" or "restaurantId"); seed-004 sockets join their restaurant
    tenant_claim: str | None = field(default=None, compare=False)
    # the roles as the token spelled them (`ADMIN`), echoed to clients; empty: `roles` is the spelling
    role_names: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_agent(self) -> bool:
        return bool(self.roles & AGENT_ROLES)

    @property
    def is_admin(self) -> bool:
        return bool(self.roles & ADMIN_ROLES)

    def has_role(self, role: str) -> bool:
        return role.lower() in self.roles

    @property
    def spelled_roles(self) -> list[str]:
        """The roles as the token spelled them, in its order (what clients compare against)."""
        return list(self.role_names) if self.role_names else sorted(self.roles)

    @property
    def primary_role(self) -> str | None:
        return min(self.spelled_roles, key=str.lower) if self.roles else None

    def public(self) -> dict[str, Any]:
        """The user as seeds show it to other clients (seed-002 `user`)."""
        return {
            "userId": self.user_id,
            "username": self.username,
            "email": self.email,
            "avatar": self.avatar,
            "roles": self.spelled_roles,
            "role": self.primary_role,
            "tenantId": self.tenant,
        }

    def actor(self) -> dict[str, Any]:
        return {"userId": self.user_id, "roles": sorted(self.roles), "username": self.username}

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        user_id = claims.get("sub") or claims.get("userId")
        if not isinstance(user_id, str) or not user_id:
            raise ValueError("token has no subject (sub or userId)")
        raw_roles = claims.get("roles")
        roles: list[str] = []
        if isinstance(raw_roles, list):
            roles = [r for r in raw_roles if isinstance(r, str)]
        if isinstance(claims.get("role"), str):
            roles.append(claims["role"])
        tenant = claims.get("tenantId", claims.get("restaurantId"))
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise ValueError("tenant claim must be a non-empty string")
        exp = claims.get("exp")
        spelled = {r.lower(): r for r in reversed(roles)}  # the first spelling of each role wins
        return cls(
            user_id=user_id,
            tenant=tenant or DEFAULT_TENANT,
            roles=frozenset(r.lower() for r in roles),
            username=_str_or_none(claims.get("username")),
            email=_str_or_none(claims.get("email")),
            avatar=_str_or_none(claims.get("avatar")),
            expires_at=float(exp) if isinstance(exp, int | float) else None,
            has_tenant_claim=tenant is not None,
            tenant_claim=("tenantId" if "tenantId" in claims else "restaurantId") if tenant is not None else None,
            role_names=tuple(spelled[r.lower()] for r in dict.fromkeys(r.lower() for r in roles)),
        )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
