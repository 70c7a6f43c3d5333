"""Who is calling: an `Identity` established by one of the authenticators (`riskstream.api._auth`)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SCOPE_JOBS_WRITE", "Identity"]

#: Scope an API key needs to open, fill and commit risk jobs (grid engines).
SCOPE_JOBS_WRITE = "jobs:write"


@dataclass(frozen=True)
class Identity:
    """An authenticated caller.

    Attributes
    ----------
    user
        The risk store's user name (the token's ``sub`` / SAML NameID / the API key's owner).
    groups
        Groups asserted by the identity provider; they map to the store's roles through its catalog.
    method
        ``oidc`` (a bearer JWT), ``saml`` (a session from a SAML assertion) or ``apikey``.
    scopes
        Extra capabilities (``jobs:write`` for grid engines' API keys).
    """

    user: str
    groups: tuple[str, ...] = ()
    method: str = "oidc"
    scopes: frozenset[str] = field(default_factory=frozenset)
