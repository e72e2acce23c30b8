from __future__ import annotations

import os
import socket
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode
from relay_config import RelaySettings

from relay_gateway.ratelimit import parse_limits


class GatewaySettings(RelaySettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 3000
    # unique per replica; default host-pid so two replicas on one machine differ
    replica_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ("*",)  # dev default; production lists its origins
    max_packet_bytes: int = 64 * 1024  # an event or REST body over this is refused: PAYLOAD_TOO_LARGE
    # a WebSocket frame / polling packet over this closes the connection before anything is parsed
    max_frame_bytes: int = 1024 * 1024
    ws_permessage_deflate: bool = False
    # unsent bytes a WebSocket may hold before it counts as a slow consumer and is disconnected
    ws_send_buffer_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    ping_interval_seconds: float = 25.0
    ping_timeout_seconds: float = 20.0
    # a credential-less socket on `/` must `autenticar` within this many seconds (SPEC §2)
    auth_grace_seconds: float = Field(default=10.0, gt=0)
    # new connections whose handshake work (Engine.IO handshake, Socket.IO connect) may start in one event-loop
    # pass; the rest wait for the next pass, so established sockets' frames are answered in between (admission.py).
    # 0: unlimited
    connect_admission_per_pass: int = Field(default=4, ge=0)
    # on SIGTERM, sockets are closed in staggered batches over this many seconds (drain.py)
    gateway_drain_seconds: float = Field(default=10.0, ge=0, le=300)

    @field_validator("cors_origins", "presence_visible_roles", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    # presence: how often this replica proves it is alive, and the reaping deadline it must beat
    presence_heartbeat_seconds: float = 3.0
    presence_reap_seconds: float = 15.0
    presence_activity_seconds: float = 5.0  # at most one activity report per user per this period
    # roles that see their whole tenant's presence; empty: every role but visitor (presence_audience.py)
    presence_visible_roles: Annotated[tuple[str, ...], NoDecode] = ()

    @property
    def heartbeat_every(self) -> float:
        return max(0.1, min(self.presence_heartbeat_seconds, self.presence_reap_seconds / 5))

    # POST /api/v1/auth/login for the seeded demo users; off in production unless set explicitly
    dev_login: bool | None = None
    session_ttl_seconds: int = 8 * 3600
    access_token_ttl_seconds: int = 8 * 3600
    # where socket.io.min.js is served from; empty: <checkout>/web/node_modules/socket.io-client/dist
    web_vendor_dir: str = ""

    # per-user limits shared across replicas, e.g. "message=30/10s,typing=off" (see ratelimit.py)
    rate_limits: str = ""
    max_upload_bytes: int = 10 * 1024 * 1024
    upload_mime_types: Annotated[tuple[str, ...], NoDecode] = (
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "video/mp4",
        "video/webm",
        "application/zip",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    typing_ttl_seconds: float = 5.0

    @field_validator("upload_mime_types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip().lower() for v in value.split(",") if v.strip())
        return value

    @field_validator("rate_limits")
    @classmethod
    def _check_limits(cls, value: str) -> str:
        parse_limits(value)  # fail at start, not at the first hit
        return value

    @property
    def dev_login_enabled(self) -> bool:
        return self.dev_login if self.dev_login is not None else self.relay_env != "production"

    @property
    def secure_cookies(self) -> bool:
        return self.relay_env == "production"
