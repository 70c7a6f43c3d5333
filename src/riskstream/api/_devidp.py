"""The embedded development identity provider — DEVELOPMENT ONLY — and the keys the service signs tokens with.

The development IdP issues RS256 JWTs for the users of the risk store's catalog (the demo users) against one
shared password, ``demo``. It exists so that the service, its dashboard and its tests run without an external
identity provider; it refuses to start when ``RISKSTREAM_ENV=production``, logs a warning when it starts, and
every response it gives carries ``"development_only": true``.

Its issuer is ``<public_url>/auth/dev``; OIDC discovery at ``/auth/dev/.well-known/openid-configuration``, the
public key set (one RSA key, ``kid`` = its RFC 7638 thumbprint) at ``/auth/dev/jwks``, and a password-grant
token endpoint at ``/auth/dev/token``. The service verifies its tokens against the key in-process (never an HTTP
call to itself).

Keys (`SigningKey`) are generated when the service starts — tokens do not survive a restart — unless
``AuthConfig.key_dir`` names a folder, where each key is kept as a PEM file (mode 0600) and reused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Form, Request

from ..errors import AuthenticationError, ConfigurationError, InvalidFieldError
from ._context import context
from ._errors import NotFoundError

__all__ = ["DEMO_PASSWORD", "DEV_ONLY_WARNING", "DevIdentityProvider", "SigningKey", "router"]

log = logging.getLogger("riskstream.api.auth")

#: The one password of every user of the development identity provider.
DEMO_PASSWORD = "demo"
DEV_ONLY_WARNING = (
    "development identity provider: DEVELOPMENT ONLY — every catalog user logs in with the password "
    f"{DEMO_PASSWORD!r}; never expose it (it refuses to run with RISKSTREAM_ENV=production)"
)
_ALGORITHM = "RS256"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SigningKey:
    """An RSA key the service signs JWTs with (RS256); ``kid`` is the RFC 7638 thumbprint of its public JWK."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key()
        numbers = self.public_key.public_numbers()
        members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
        thumb = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
        self.kid = base64.urlsafe_b64encode(thumb).rstrip(b"=").decode("ascii")
        self._members = members

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def load_or_create(cls, path: Path | None) -> SigningKey:
        """The key kept in the PEM file ``path`` (created, mode 0600, when missing); a new key when None."""
        if path is None:
            return cls.generate()
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ConfigurationError("key_dir", str(path), "holds a key that is not RSA")
            return cls(loaded)
        key = cls.generate()
        pem = key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return key

    def public_jwk(self) -> dict[str, str]:
        return {**self._members, "kid": self.kid, "use": "sig", "alg": _ALGORITHM}

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self.private_key, algorithm=_ALGORITHM, headers={"kid": self.kid})


def token_claims(
    issuer: str,
    audience: str,
    user: str,
    groups: Sequence[str],
    ttl_s: int,
    **extra: Any,
) -> dict[str, Any]:
    """Claims of a token the service issues: ``iss``, ``aud``, ``sub``, ``groups``, ``iat``/``nbf``/``exp``
    (seconds since the epoch, ``exp`` = now + ``ttl_s``), a unique ``jti``, plus ``extra``."""
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
        raise InvalidFieldError("ttl_s", ttl_s, "a whole number of seconds >= 1")
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": audience,
        "sub": user,
        "groups": list(groups),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
        **extra,
    }


class DevIdentityProvider:
    """DEVELOPMENT ONLY: issues tokens for catalog users (``issuer`` = ``<public_url>/auth/dev``)."""

    def __init__(self, public_url: str, audience: str, catalog: Any, key: SigningKey) -> None:
        if os.environ.get("RISKSTREAM_ENV", "").strip().lower() == "production":
            raise ConfigurationError(
                "dev_idp",
                True,
                "the development identity provider refuses to run with RISKSTREAM_ENV=production: "
                "configure an external issuer (AuthConfig(dev_idp=False, issuer=...)) or SAML",
            )
        self.issuer = public_url.rstrip("/") + "/auth/dev"
        self.audience = audience
        self.catalog = catalog
        self.key = key
        log.warning("%s; issuer %s", DEV_ONLY_WARNING, self.issuer)

    def token(self, user: str, *, ttl_s: int = 3600, scopes: Sequence[str] = ()) -> str:
        """A signed token for catalog user ``user`` carrying their catalog groups (InvalidFieldError if the
        catalog does not know them)."""
        groups = self.catalog.user_groups(user)
        if groups is None:
            raise InvalidFieldError("user", user, "not a user of the risk store's catalog")
        extra: dict[str, Any] = {"preferred_username": user, "development_only": True}
        if scopes:
            extra["scope"] = " ".join(sorted(set(scopes)))
        return self.key.sign(token_claims(self.issuer, self.audience, user, groups, ttl_s, **extra))

    def password_grant(self, user: str, password: str, ttl_s: int = 3600) -> str:
        """A token for ``user`` when ``password`` is the demo password (AuthenticationError otherwise)."""
        if password != DEMO_PASSWORD or self.catalog.user_groups(user) is None:
            raise AuthenticationError("invalid username or password")
        return self.token(user, ttl_s=ttl_s)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + "/jwks",
            "token_endpoint": self.issuer + "/token",
            "grant_types_supported": ["password"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [_ALGORITHM],
            "token_endpoint_auth_methods_supported": ["none"],
            "claims_supported": ["sub", "groups", "preferred_username", "scope"],
            "development_only": True,
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()], "development_only": True}


# --- routes ----------------------------------------------------------------------------------------------

router = APIRouter(prefix="/dev", tags=["auth: development identity provider (DEVELOPMENT ONLY)"])


def _idp(request: Request) -> DevIdentityProvider:
    idp: DevIdentityProvider | None = context(request).auth.dev_idp
    if idp is None:
        raise NotFoundError("identity provider", "dev (the development identity provider is off)")
    return idp


@router.get(
    "/.well-known/openid-configuration",
    summary="DEVELOPMENT ONLY: OIDC discovery document of the development identity provider.",
)
def openid_configuration(request: Request) -> dict[str, Any]:
    return _idp(request).discovery()


@router.get("/jwks", summary="DEVELOPMENT ONLY: the development identity provider's public keys (JWKS).")
def jwks(request: Request) -> dict[str, Any]:
    return _idp(request).jwks()


@router.post(
    "/token",
    summary="DEVELOPMENT ONLY: a token for a catalog user (OAuth 2 password grant; the password is 'demo').",
)
def token(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=200)],
    password: Annotated[str, Form(max_length=200)],
    grant_type: Annotated[str, Form()] = "password",
) -> dict[str, Any]:
    if grant_type != "password":
        raise InvalidFieldError(
            "grant_type", grant_type, "the development identity provider grants 'password'"
        )
    idp = _idp(request)
    ttl_s = 3600
    access = idp.password_grant(username, password, ttl_s)
    return {
        "access_token": access,
        "id_token": access,
        "token_type": "Bearer",
        "expires_in": ttl_s,
        "issuer": idp.issuer,
        "development_only": True,
    }


@router.get("/users", summary="DEVELOPMENT ONLY: the users one can log in as (password 'demo').")
def users(request: Request) -> dict[str, Any]:
    from ..store import DEMO_USERS

    idp = _idp(request)
    grants = idp.catalog.group_roles()
    listed = []
    for user, groups in idp.catalog.users().items():
        roles = sorted({r for g in groups for r in grants.get(g, ())})
        if not roles:
            continue
        description = DEMO_USERS.get(user) or f"roles: {', '.join(roles)}"
        listed.append({"user": user, "description": description, "groups": list(groups), "roles": roles})
    return {"users": listed, "password": DEMO_PASSWORD, "development_only": True, "warning": DEV_ONLY_WARNING}
