"""Relay settings: read once from the environment, typed, failing fast on bad values.

Every service builds one settings object at start (``load_settings(GatewaySettings)``);
nothing else in Relay reads ``os.environ``.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Dev-only default: every deployment must set JWT_SECRET; `RELAY_ENV=production` refuses this value.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"


class RelaySettings(BaseSettings):
    """Settings every Relay process shares."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True, case_sensitive=False)

    relay_env: Literal["dev", "test", "production"] = "dev"
    # Namespaces broker exchanges, Redis keys/channels and the Mongo database, so several
    # Relay stacks (task dev, a test run) share one RabbitMQ/Redis without crosstalk.
    relay_instance: str = Field(default="relay", pattern=r"^[a-z][a-z0-9-]{0,40}$")
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    redis_url: str = "redis://127.0.0.1:6379/0"
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_db: str = ""

    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_public_key: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    require_tenant_claim: bool = False

    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    rpc_timeout_seconds: float = 5.0
    # ordered command lanes per service (libs/relay_broker/lanes.py); the same in every process
    command_partitions: int = Field(default=8, ge=1, le=256)
    # a command expires this long before its caller's timeout (at most half of it): a write begun before the
    # deadline has this long for its answer to come back, so an UNAVAILABLE at the timeout means "not applied"
    rpc_settle_seconds: float = Field(default=2.5, gt=0)
    # commands a process waits on at once; beyond it callers get UNAVAILABLE at once (load shedding)
    rpc_max_in_flight: int = Field(default=512, ge=1)
    # after its timer, how long a caller waits for the reply of a command its handler claimed `applied` before
    # answering INTERNAL with outcome "unknown" (relay_contracts.claims); never UNAVAILABLE for such a command
    rpc_claimed_wait_seconds: float = Field(default=30.0, gt=0)
    # how long a command's claim is kept in Redis: longer than its timeout plus the claimed wait
    command_claim_ttl_seconds: float = Field(default=120.0, gt=0)
    # TEST ONLY: slow every write before/after its claim, "before/after,..." (relay_contracts.deadline.CommitDelays)
    test_commit_delays: str = ""
    max_text_length: int = 4000

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(a.strip() for a in value.split(",") if a.strip())
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _no_none_algorithm(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}
        bad = [a for a in value if a not in allowed]
        if bad or not value:
            raise ValueError(f"unsupported JWT algorithms {bad or value}; allowed: {sorted(allowed)}")
        if {a[:2] for a in value} & {"RS", "ES"} and {a[:2] for a in value} & {"HS"}:
            # mixing HMAC and public-key algorithms is the algorithm-confusion hole
            raise ValueError("JWT_ALGORITHMS must not mix HS* with RS*/ES*")
        return value

    @property
    def database_name(self) -> str:
        return self.mongo_db or self.relay_instance.replace("-", "_")

    def check_production(self) -> None:
        if self.relay_env == "production" and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError("JWT_SECRET must be set in production (the dev default is refused)")


S = TypeVar("S", bound=RelaySettings)


def load_settings(cls: type[S]) -> S:
    settings = cls()
    settings.check_production()
    return settings
