"""Identity for sockets and REST: JWT verification, principals, roles."""

from relay_auth.principal import AGENT_ROLES, Principal
from relay_auth.tokens import AuthError, TokenVerifier, extract_token, mint_token

__all__ = ["AGENT_ROLES", "AuthError", "Principal", "TokenVerifier", "extract_token", "mint_token"]
