"""SAML 2.0 login (pysaml2, signatures checked by xmlsec1): the service is a SAML service provider (SP).

- ``GET /auth/saml/metadata``: this SP's metadata (entity id, the assertion consumer service) for the IdP.
- ``GET /auth/saml/login?next=/path``: SP-initiated login, a redirect to the IdP's single sign-on service with an
  AuthnRequest (HTTP-Redirect binding).
- ``POST /auth/saml/acs`` (HTTP-POST binding, form field ``SAMLResponse``, optional ``RelayState``): the
  assertion consumer. The assertion must be signed by a key of the IdP named in ``AuthConfig.saml_idp_metadata``
  (an unsigned, tampered or foreign-signed assertion is refused with 401), addressed to this SP (audience,
  recipient), within its validity window, and never seen before (assertion ids are remembered until they expire:
  no replay). IdP-initiated (unsolicited) responses are accepted, as are answers to our AuthnRequests.

  The user is the subject's NameID (or ``saml_user_attribute``); their groups (attribute
  ``saml_groups_attribute``) go through ``group_map`` to catalog groups, which are provisioned into the catalog
  at once. The session is a JWT issued by the service itself (issuer ``<public_url>/auth/session``, RS256, the
  service's session key, ``method: "saml"``, lifetime ``session_ttl_s``), set as the HttpOnly cookie
  ``riskstream_session`` (SameSite=Lax; Secure when the public URL is https) and also returned in the JSON body
  (``access_token``) so that a client can send it as a bearer token or as ``?access_token=`` on WebSockets.
  With a ``RelayState`` that is a local path the answer is a 303 redirect there instead.
"""

from __future__ import annotations

import base64
import calendar
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ..errors import AuthenticationError, ConfigurationError
from ._context import context
from ._errors import NotFoundError
from ._identity import Identity

with warnings.catch_warnings():
    # pysaml2 7.5 names a cipher mode cryptography has moved (an import-time deprecation notice, not a risk here);
    # its module is imported here, once, so that no later import of pysaml2 repeats the notice
    warnings.filterwarnings("ignore", message="CFB has been moved", category=Warning)
    import saml2.cryptography.symmetric  # noqa: F401
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import create_metadata_string

if TYPE_CHECKING:
    from ._auth import AuthConfig, Authenticator

__all__ = ["SamlLogin", "SamlServiceProvider", "router"]

_SHA256_SIGNATURE = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
_SHA256_DIGEST = "http://www.w3.org/2001/04/xmlenc#sha256"


@dataclass(frozen=True)
class SamlLogin:
    """What a verified assertion says: the user, their IdP groups, the issuing IdP and the assertion's id."""

    user: str
    idp_groups: tuple[str, ...]
    issuer: str
    assertion_id: str


class SamlServiceProvider:
    """The service as a SAML SP trusting the IdP(s) of ``config.saml_idp_metadata``."""

    def __init__(self, config: AuthConfig, public_url: str) -> None:
        metadata = config.saml_idp_metadata
        if metadata is None or not metadata.is_file():
            raise ConfigurationError("saml_idp_metadata", str(metadata), "not a readable IdP metadata file")
        xmlsec = shutil.which("xmlsec1")
        if xmlsec is None:
            raise ConfigurationError(
                "saml_idp_metadata", str(metadata), "SAML needs the xmlsec1 program (apt-get install xmlsec1)"
            )
        base = public_url.rstrip("/")
        self.entity_id = config.saml_entity_id or base + "/auth/saml/metadata"
        self.acs_url = base + "/auth/saml/acs"
        self.groups_attribute = config.saml_groups_attribute
        self.user_attribute = config.saml_user_attribute
        settings: dict[str, Any] = {
            "entityid": self.entity_id,
            "xmlsec_binary": xmlsec,
            "allow_unknown_attributes": True,
            "accepted_time_diff": int(config.leeway_s),
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]},
                    "allow_unsolicited": True,
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                    "authn_requests_signed": False,
                    "signing_algorithm": _SHA256_SIGNATURE,
                    "digest_algorithm": _SHA256_DIGEST,
                }
            },
            "metadata": {"local": [str(metadata)]},
        }
        self._config = SPConfig().load(settings)
        self._client = Saml2Client(config=self._config)
        self._lock = threading.Lock()
        self._outstanding: dict[str, str] = {}  # AuthnRequest id -> where to go after login
        self._seen: dict[str, float] = {}  # assertion id -> when it may be forgotten (epoch s)

    def metadata(self) -> str:
        """This SP's metadata (XML)."""
        text = create_metadata_string(None, config=self._config, valid=None)
        return text.decode("utf-8") if isinstance(text, bytes) else str(text)

    def login_redirect(self, relay_state: str) -> str:
        """The IdP URL to send a browser to with a new AuthnRequest (HTTP-Redirect binding)."""
        with self._lock:
            request_id, info = self._client.prepare_for_authenticate(
                relay_state=relay_state, binding=BINDING_HTTP_REDIRECT
            )
            if len(self._outstanding) > 10_000:
                self._outstanding.clear()
            self._outstanding[request_id] = relay_state
        location = dict(info["headers"]).get("Location")
        if not location:
            raise ConfigurationError("saml_idp_metadata", "", "the IdP has no HTTP-Redirect sign-on service")
        return str(location)

    def consume(self, saml_response: str) -> SamlLogin:
        """Verify a base64 ``SAMLResponse`` (HTTP-POST binding); AuthenticationError (401) with the reason."""
        try:
            base64.b64decode(saml_response, validate=True)
        except ValueError:
            raise AuthenticationError("SAMLResponse is not base64") from None
        with self._lock:
            outstanding = dict(self._outstanding)
        try:
            response = self._client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding=outstanding
            )
        except Exception as exc:  # pysaml2 raises many unrelated types for a refused assertion
            raise AuthenticationError(f"SAML assertion refused: {type(exc).__name__}: {exc}") from None
        if response is None or response.assertion is None:
            raise AuthenticationError("SAML response holds no usable assertion")
        assertion = response.assertion
        ava: dict[str, list[str]] = response.ava or {}
        if self.user_attribute:
            values = ava.get(self.user_attribute) or []
            user = values[0] if values else None
        else:
            user = response.name_id.text if response.name_id is not None else None
        if not isinstance(user, str) or not user.strip():
            raise AuthenticationError("SAML assertion names no user")
        now = time.time()
        expiry = now + 24 * 3600.0
        conditions = assertion.conditions
        if conditions is not None and conditions.not_on_or_after:
            from saml2.time_util import str_to_time

            expiry = calendar.timegm(str_to_time(conditions.not_on_or_after)) + 3600.0
        with self._lock:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
            if assertion.id in self._seen:
                raise AuthenticationError(f"SAML assertion {assertion.id} was already used (replay)")
            self._seen[assertion.id] = expiry
            if response.in_response_to:
                self._outstanding.pop(response.in_response_to, None)
        issuer = assertion.issuer.text if assertion.issuer is not None else ""
        groups = tuple(str(g) for g in ava.get(self.groups_attribute, []) if g)
        return SamlLogin(user.strip(), groups, issuer, assertion.id)


# --- routes ----------------------------------------------------------------------------------------------

router = APIRouter(prefix="/saml", tags=["auth: SAML 2.0"])


def _sp(request: Request) -> tuple[Authenticator, SamlServiceProvider]:
    auth: Authenticator = context(request).auth
    if auth.saml is None:
        raise NotFoundError("SAML service provider", "(SAML is not configured: AuthConfig.saml_idp_metadata)")
    return auth, auth.saml


def _local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this service (no scheme, no host: not an open redirect), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@router.get("/metadata", summary="This service provider's SAML metadata (XML).")
def metadata(request: Request) -> Response:
    _, sp = _sp(request)
    return Response(sp.metadata(), media_type="application/samlmetadata+xml")


@router.get("/login", summary="SP-initiated SAML login: redirect to the IdP's single sign-on service.")
def login(request: Request, next: Annotated[str, Query(max_length=2000)] = "/") -> RedirectResponse:
    _, sp = _sp(request)
    return RedirectResponse(sp.login_redirect(_local_path(next) or "/"), status_code=303)


@router.post("/acs", summary="SAML assertion consumer (HTTP-POST): a signed assertion → a session.")
def acs(
    request: Request,
    saml_response: Annotated[str, Form(alias="SAMLResponse", max_length=1_000_000)],
    relay_state: Annotated[str | None, Form(alias="RelayState", max_length=2000)] = None,
) -> Response:
    from ._auth import SESSION_COOKIE

    auth, sp = _sp(request)
    login = sp.consume(saml_response)
    groups = auth.map_groups(login.idp_groups)
    identity = Identity(user=login.user, groups=groups, method="saml")
    principal = auth.principal(identity)  # provisions the groups; 403 when they grant no role
    token = auth.session_token(login.user, groups, "saml")
    ttl = auth.config.session_ttl_s
    target = _local_path(relay_state)
    response: Response
    if target is not None:
        response = RedirectResponse(target, status_code=303)
    else:
        response = JSONResponse(
            {
                "user": login.user,
                "groups": list(groups),
                "idp_groups": list(login.idp_groups),
                "roles": sorted(principal.roles),
                "method": "saml",
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": ttl,
            }
        )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl,
        httponly=True,
        secure=auth.public_url.startswith("https://"),
        samesite="lax",
        path="/",
    )
    return response
