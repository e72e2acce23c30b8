"""Cross-site request forgery: a browser attaches a session cookie to a request another site makes.

Such a write is refused unless its `Origin` is one the deployment serves its pages from (CORS_ORIGINS,
or the gateway's own host when that is `*`), and its body must be JSON: a form or `text/plain` post,
which a foreign page can send without a CORS preflight, never counts as a write. Requests that carry a
token (Authorization: Bearer) are not ambient and are not checked: a foreign page cannot read the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from relay_contracts import ErrorCode, RelayError


def check_origin(headers: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    """Refuse a cookie-authenticated write from an origin the deployment does not serve (PERMISSION_DENIED)."""
    origin = headers.get("origin")
    if origin is None:
        # no Origin: not a browser's cross-origin request (browsers send it on every cross-origin POST),
        # unless Fetch metadata says otherwise
        if headers.get("sec-fetch-site") == "cross-site":
            raise RelayError(ErrorCode.PERMISSION_DENIED, "cross-site write with a session cookie refused")
        return
    if origin in allowed and origin != "*":
        return
    if urlsplit(origin).netloc and urlsplit(origin).netloc == headers.get("host", ""):
        return  # the gateway's own pages (scheme aside: TLS may end at a proxy in front)
    raise RelayError(
        ErrorCode.PERMISSION_DENIED, f"write with a session cookie from origin {origin[:100]!r} refused", field="Origin"
    )


def require_json(content_type: str) -> None:
    """A cookie-authenticated write carries JSON (a cross-site form or text/plain post cannot)."""
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise RelayError(ErrorCode.VALIDATION_ERROR, "a write with a session cookie must send application/json")
