"""Error codes that answer bad client input: a fuzzed request may get any of these, never a server fault
(`INTERNAL`, `UNAVAILABLE`)."""

CLIENT_ERROR_CODES = frozenset(
    {
        "VALIDATION_ERROR",
        "NOT_FOUND",
        "PERMISSION_DENIED",
        "RATE_LIMITED",
        "PAYLOAD_TOO_LARGE",
        "AUTH_REQUIRED",
        "TOKEN_EXPIRED",
        "CONFLICT",
    }
)
