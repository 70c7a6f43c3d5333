"""Authentication of the risk service: who is calling (`Identity`) and what they may see (store `Principal`).

Credentials, in the order `Authenticator.authenticate` looks for them:

1. ``Authorization: Bearer <JWT>`` — RS256 or ES256, verified against the issuer's public keys (JWKS) with
   ``exp``, ``nbf``, ``iss`` and ``aud`` checked (``leeway_s`` of clock skew allowed). Trusted issuers: an
   external OIDC provider (``AuthConfig.issuer``; keys from ``jwks_url`` or OIDC discovery, fetched and cached by
   PyJWT's `jwt.PyJWKClient`), the embedded development identity provider (``<public_url>/auth/dev``,
   DEVELOPMENT ONLY, see `riskstream.api._devidp`) and the service's own sessions (``<public_url>/auth/session``,
   issued after a SAML login). The service's own keys are checked in-process, never over HTTP.
2. ``X-API-Key: <key>`` — a key of the catalog (``riskstream apikey create``); its scopes (``jobs:write``) let
   grid engines write risk jobs.
3. The session cookie ``riskstream_session`` set by the SAML assertion consumer (a JWT of the service's session
   issuer).
4. For WebSockets only (browsers cannot set headers on them): ``?access_token=<JWT>``.

Anything else, or a credential that does not verify, raises `AuthenticationError` (HTTP 401, JSON with the reason).

Groups: an external IdP's groups (the ``groups_claim`` of its tokens, the ``groups`` attribute of SAML
assertions) go through ``group_map`` (IdP group → catalog group(s); when ``group_map`` is empty the names are
taken as they are, otherwise unmapped groups are dropped). `Authenticator.principal` then provisions them just in
time: when they differ from the user's groups in the catalog, the catalog's are replaced (the IdP is the source of
truth) and the catalog's roles give the principal. Tokens of the development IdP and of sessions carry catalog
groups already; API keys use the owner's catalog groups as they are.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.requests import HTTPConnection

from ..errors import AuthenticationError, ConfigurationError
from ..store import Principal
from ._deps import Caller, Ctx, Entitled
from ._devidp import DevIdentityProvider, SigningKey, token_claims
from ._devidp import router as dev_router
from ._identity import Identity
from ._saml import SamlServiceProvider
from ._saml import router as saml_router

__all__ = ["SESSION_COOKIE", "AuthConfig", "Authenticator", "router"]

log = logging.getLogger("riskstream.api.auth")

#: Cookie holding the session JWT after a SAML login.
SESSION_COOKIE = "riskstream_session"
_ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"})


@dataclass(frozen=True)
class AuthConfig:
    """How the service authenticates callers.

    Attributes
    ----------
    dev_idp
        Run the embedded development identity provider (DEVELOPMENT ONLY; refused with
        ``RISKSTREAM_ENV=production``).
    issuer, audience, jwks_url
        An external OIDC issuer whose JWTs are accepted (``iss`` must equal ``issuer``), the ``aud`` every token
        must carry, and the issuer's JWKS URL (None: read from ``<issuer>/.well-known/openid-configuration``).
    algorithms
        Signature algorithms accepted (asymmetric only: RS256 and ES256 by default; never ``none`` or HMAC).
    leeway_s
        Clock skew tolerated on ``exp``/``nbf``/``iat``, seconds.
    user_claim, groups_claim
        Claims of an external issuer's tokens naming the user and their groups.
    group_map
        IdP group → catalog group (or several), for external tokens and SAML assertions; empty: names as given.
    saml_idp_metadata, saml_entity_id, saml_groups_attribute, saml_user_attribute
        SAML 2.0: the IdP's metadata file (None: SAML off), this service provider's entity id (default
        ``<public_url>/auth/saml/metadata``), the assertion attribute holding groups, and the attribute naming
        the user (None: the subject's NameID).
    session_ttl_s
        Lifetime of a session issued after a SAML login, seconds.
    api_keys
        Accept ``X-API-Key`` (keys of the catalog).
    key_dir
        Folder keeping the service's signing keys (development IdP, sessions) as PEM files so that tokens
        survive a restart; None: new keys at every start.
    principal_cache_s
        How long a user's entitlements are reused before the catalog is read again, seconds.
    jwks_cache_s
        How long an external issuer's keys are reused before they are fetched again, seconds.
    jwks_refetch_s
        Least time between two fetches forced by a token with an unknown ``kid`` (a key the issuer rotated in),
        seconds: tokens with made-up key ids cannot make the service hammer the issuer.
    """

    dev_idp: bool = True
    issuer: str | None = None
    audience: str = "riskstream"
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_s: float = 30.0
    user_claim: str = "sub"
    groups_claim: str = "groups"
    group_map: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    saml_idp_metadata: Path | None = None
    saml_entity_id: str | None = None
    saml_groups_attribute: str = "groups"
    saml_user_attribute: str | None = None
    session_ttl_s: int = 8 * 3600
    api_keys: bool = True
    key_dir: Path | None = None
    principal_cache_s: float = 5.0
    jwks_cache_s: int = 300
    jwks_refetch_s: float = 30.0

    def __post_init__(self) -> None:
        bad = [a for a in self.algorithms if a not in _ASYMMETRIC]
        if bad or not self.algorithms:
            raise ConfigurationError(
                "algorithms", list(self.algorithms), f"only asymmetric algorithms {sorted(_ASYMMETRIC)}"
            )
        if self.leeway_s < 0:
            raise ConfigurationError("leeway_s", self.leeway_s, "must be >= 0")
        if self.issuer is not None and not self.issuer.startswith(("http://", "https://")):
            raise ConfigurationError("issuer", self.issuer, "an http(s) URL")


class _ExternalIssuer:
    """An external OIDC issuer: its JWKS URL found through discovery on first use, keys cached by PyJWKClient."""

    def __init__(self, issuer: str, jwks_url: str | None, cache_s: int, refetch_s: float) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self._cache_s = cache_s
        self._refetch_s = refetch_s
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _discover(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                document = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise AuthenticationError(
                f"the issuer's discovery document {url} cannot be read ({exc})"
            ) from None
        if document.get("issuer") != self.issuer or not isinstance(document.get("jwks_uri"), str):
            raise AuthenticationError(f"the discovery document {url} names another issuer or no jwks_uri")
        return str(document["jwks_uri"])

    def client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self._jwks_url or self._discover()
                self._client = jwt.PyJWKClient(
                    url, cache_keys=True, lifespan=self._cache_s, timeout=5, cooldown_duration=self._refetch_s
                )
            return self._client

    def key(self, token: str) -> Any:
        try:
            return self.client().get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthenticationError(f"the issuer's keys cannot be fetched ({exc})") from None
        except jwt.PyJWKClientError as exc:
            raise AuthenticationError(f"unknown signing key: {exc}") from None


_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid (nbf/iat in the future)"),
    (jwt.InvalidAudienceError, "wrong audience ({exc})"),
    (jwt.InvalidIssuerError, "wrong issuer ({exc})"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim ({exc})"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed ({exc})"),
)


def _reason(exc: jwt.PyJWTError) -> str:
    """Why a token was refused, in words a caller can act on."""
    for kind, text in _REASONS:
        if isinstance(exc, kind):
            return text.format(exc=exc)
    return f"malformed token ({exc})"


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.replace(",", " ").split() if v)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str | int) and str(v))
    raise AuthenticationError(f"groups/scopes claim {value!r} is neither a list nor a string")


class Authenticator:
    """Verifies credentials (`authenticate`) and provisions entitlements (`principal`). See the module doc."""

    def __init__(
        self, config: AuthConfig, catalog: Any, *, public_url: str = "http://localhost:8000"
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.public_url = public_url.rstrip("/")
        key_dir = config.key_dir
        self.session_issuer = self.public_url + "/auth/session"
        self.session_key = SigningKey.load_or_create(key_dir / "session_key.pem" if key_dir else None)
        self.dev_idp: DevIdentityProvider | None = None
        if config.dev_idp:
            dev_key = SigningKey.load_or_create(key_dir / "dev_idp_key.pem" if key_dir else None)
            self.dev_idp = DevIdentityProvider(self.public_url, config.audience, catalog, dev_key)
        self._external = (
            _ExternalIssuer(config.issuer, config.jwks_url, config.jwks_cache_s, config.jwks_refetch_s)
            if config.issuer
            else None
        )
        # issuer -> kid -> public key, for the issuers whose keys live in this process
        self._local: dict[str, dict[str, Any]] = {
            self.session_issuer: {self.session_key.kid: self.session_key.public_key}
        }
        if self.dev_idp is not None:
            self._local[self.dev_idp.issuer] = {self.dev_idp.key.kid: self.dev_idp.key.public_key}
        self._principals: dict[tuple[str, tuple[str, ...], bool], tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        #: called with the user after just-in-time provisioning changed their groups (e.g. to drop the query
        #: layer's cached principals: ``lambda user: riskstream.query.session(store).forget_principals()``)
        self.on_provision: list[Callable[[str], None]] = []
        self.saml: SamlServiceProvider | None = None
        if config.saml_idp_metadata is not None:
            self.saml = SamlServiceProvider(config, self.public_url)

    # --- credentials ------------------------------------------------------------------------------------

    def authenticate(self, conn: HTTPConnection) -> Identity:
        """The caller of ``conn`` (an HTTP request or a WebSocket); AuthenticationError (401) otherwise."""
        header = conn.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationError("the Authorization header is not 'Bearer <token>'")
            return self.verify_token(token.strip())
        key = conn.headers.get("x-api-key")
        if key is not None:
            return self.verify_api_key(key)
        session = conn.cookies.get(SESSION_COOKIE)
        if session:
            return self.verify_token(session, issuers=(self.session_issuer,))
        if conn.scope.get("type") == "websocket":
            query_token = conn.query_params.get("access_token")
            if query_token:
                return self.verify_token(query_token)
        raise AuthenticationError(
            "no credentials: send 'Authorization: Bearer <token>', 'X-API-Key: <key>' or a session cookie"
            + (" (WebSockets: ?access_token=<token>)" if conn.scope.get("type") == "websocket" else "")
        )

    def verify_token(self, token: str, *, issuers: Sequence[str] | None = None) -> Identity:
        """The identity a JWT proves (signature, ``exp``/``nbf``/``iss``/``aud`` checked), from a trusted issuer
        (``issuers``: only these)."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthenticationError(_reason(exc)) from None
        algorithm = header.get("alg")
        if algorithm not in self.config.algorithms:
            raise AuthenticationError(
                f"algorithm {algorithm!r} not allowed (accepted: {', '.join(self.config.algorithms)})"
            )
        issuer = unverified.get("iss")
        trusted = [*self._local, *([self._external.issuer] if self._external else [])]
        if issuers is not None:
            trusted = [i for i in trusted if i in issuers]
        if not isinstance(issuer, str) or issuer not in trusted:
            raise AuthenticationError(
                f"wrong issuer: {issuer!r} is not trusted (trusted: {', '.join(trusted)})"
            )
        local = self._local.get(issuer)
        if local is not None:
            kid = header.get("kid")
            if kid not in local:
                raise AuthenticationError(f"unknown signing key: kid {kid!r} is not a key of {issuer}")
            key = local[kid]
        else:
            assert self._external is not None
            key = self._external.key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.config.algorithms),
                audience=self.config.audience,
                issuer=issuer,
                leeway=self.config.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(_reason(exc)) from None
        if local is not None:
            user = claims["sub"]
            groups = _names(claims.get("groups"))
            method = str(claims.get("method", "oidc"))
        else:
            user = claims.get(self.config.user_claim)
            groups = self.map_groups(_names(claims.get(self.config.groups_claim)))
            method = "oidc"
        if not isinstance(user, str) or not user:
            raise AuthenticationError(f"token's user claim is empty or not a string: {user!r}")
        scopes = frozenset(_names(claims.get("scope", claims.get("scp"))))
        return Identity(user=user, groups=groups, method=method, scopes=scopes)

    def verify_api_key(self, key: str) -> Identity:
        """The identity of an API key of the catalog (its owner, its scopes)."""
        if not self.config.api_keys:
            raise AuthenticationError("API keys are not accepted by this service")
        record = self.catalog.verify_api_key(key.strip())
        if record is None:
            raise AuthenticationError("unknown API key")
        if record.revoked_at is not None:
            raise AuthenticationError(
                f"API key {record.key_id} was revoked at {record.revoked_at.isoformat()}"
            )
        return Identity(user=record.user, groups=(), method="apikey", scopes=frozenset(record.scopes))

    def map_groups(self, idp_groups: Sequence[str]) -> tuple[str, ...]:
        """Catalog groups of an IdP's groups through ``group_map`` (names as given when the map is empty)."""
        mapping = self.config.group_map
        if not mapping:
            return tuple(sorted(set(idp_groups)))
        out: set[str] = set()
        for group in idp_groups:
            target = mapping.get(group)
            if target is None:
                continue
            out.update((target,) if isinstance(target, str) else target)
        return tuple(sorted(out))

    # --- tokens the service issues -----------------------------------------------------------------------

    def dev_token(self, user: str, *, ttl_s: int = 3600, scopes: Sequence[str] = ()) -> str:
        """A token of the development identity provider for catalog user ``user`` (DEVELOPMENT ONLY)."""
        if self.dev_idp is None:
            raise ConfigurationError("dev_idp", False, "the development identity provider is off")
        return self.dev_idp.token(user, ttl_s=ttl_s, scopes=scopes)

    def session_token(self, user: str, groups: Sequence[str], method: str) -> str:
        """A session JWT of the service's session issuer (after a SAML login), carrying catalog groups."""
        claims = token_claims(
            self.session_issuer, self.config.audience, user, groups, self.config.session_ttl_s, method=method
        )
        return self.session_key.sign(claims)

    # --- entitlements -----------------------------------------------------------------------------------

    def cached_principal(self, identity: Identity) -> Principal | None:
        """The principal `principal` would return from its cache now, or None (no catalog access: safe to call on
        the event loop)."""
        key = (identity.user, identity.groups, identity.method != "apikey")
        with self._lock:
            hit = self._principals.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def principal(self, identity: Identity) -> Principal:
        """What ``identity`` may see; provisions the identity's groups into the catalog first (just in time).

        API keys use the owner's catalog groups. AccessDeniedError (403) when the groups grant no role.
        Reused for ``principal_cache_s`` seconds per (user, groups).
        """
        provision = identity.method != "apikey"
        key = (identity.user, identity.groups, provision)
        now = time.monotonic()
        with self._lock:
            hit = self._principals.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        if provision and self.catalog.user_groups(identity.user) != identity.groups:
            self.catalog.add_user(identity.user, list(identity.groups))
            log.info(
                "provisioned user %s with groups %s", identity.user, ", ".join(identity.groups) or "none"
            )
            with self._lock:
                self._principals = {k: v for k, v in self._principals.items() if k[0] != identity.user}
            for listener in self.on_provision:
                listener(identity.user)
        found: Principal = self.catalog.principal(identity.user)
        with self._lock:
            if len(self._principals) > 10_000:
                self._principals.clear()
            self._principals[key] = (now + self.config.principal_cache_s, found)
        return found


# --- routes ----------------------------------------------------------------------------------------------

router = APIRouter(prefix="/auth", tags=["auth"])
router.include_router(dev_router)
router.include_router(saml_router)


@router.post(
    "/logout", summary="End a SAML session: clears the session cookie (bearer tokens simply expire)."
)
def logout() -> Response:
    response = JSONResponse({"logged_out": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", summary="Who the caller is: user, groups, method, scopes, roles, masked columns.")
def me(ctx: Ctx, who: Caller, entitled: Entitled) -> dict[str, Any]:
    """The caller and their entitlements; ``development_only`` is true when the service runs the development
    identity provider (a development setup)."""
    auth: Authenticator = ctx.auth
    return {
        "user": who.user,
        "groups": list(auth.catalog.user_groups(who.user) or ()),
        "method": who.method,
        "scopes": sorted(who.scopes),
        "roles": sorted(entitled.roles),
        "masked_columns": sorted(entitled.masked_columns),
        "sees_all_rows": entitled.sees_all_rows,
        "row_filter": [{c: sorted(v) for c, v in clause.items()} for clause in entitled.row_predicate()],
        "development_only": auth.dev_idp is not None,
    }
