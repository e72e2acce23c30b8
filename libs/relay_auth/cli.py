"""Mint dev tokens: `relay-token --user alice --role commercial --tenant acme`."""

from __future__ import annotations

import argparse

from relay_config import RelaySettings, load_settings

from relay_auth.tokens import mint_token

DEMO_USERS = {
    "visitor": ["visitor"],
    "agent": ["commercial"],
    "admin": ["admin"],
    "cliente": ["cliente"],
    "experto": ["experto"],
    "waiter": ["WAITER"],
    "kitchen": ["KITCHEN"],
    "manager": ["MANAGER"],
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Mint a Relay JWT signed with JWT_SECRET (dev use).")
    parser.add_argument("--user", default="agent-1", help="subject (sub/userId)")
    parser.add_argument("--role", action="append", help="role (repeatable); default from --demo")
    parser.add_argument("--demo", choices=sorted(DEMO_USERS), help="demo user preset")
    parser.add_argument("--tenant", help="tenantId claim")
    parser.add_argument("--restaurant", help="restaurantId claim (seed-004)")
    parser.add_argument("--username")
    parser.add_argument("--ttl", type=int, default=3600 * 8, help="seconds until exp")
    args = parser.parse_args(argv)
    settings = load_settings(RelaySettings)
    roles = args.role or DEMO_USERS.get(args.demo or "agent", ["commercial"])
    user = args.user if args.demo is None or args.user != "agent-1" else f"{args.demo}-1"
    tenant, claim = (args.restaurant, "restaurantId") if args.restaurant else (args.tenant, "tenantId")
    print(
        mint_token(
            settings.jwt_secret,
            user_id=user,
            roles=roles,
            tenant=tenant,
            tenant_claim=claim,
            ttl_seconds=args.ttl,
            algorithm=settings.jwt_algorithms[0],
            extra={"username": args.username or user},
        )
    )


if __name__ == "__main__":
    main()
