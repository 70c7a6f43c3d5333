"""SAML 2.0 login against a real IdP: pysaml2's IdP server (saml2.server.Server) signs assertions with a key and
certificate made here; the service verifies them with xmlsec1 against the IdP's metadata.

The IdP trusts the service through the metadata the service publishes at /auth/saml/metadata.
"""

from __future__ import annotations

import base64
import datetime as dt
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.testclient import TestClient
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_UNSPECIFIED, NameID

from riskstream.api import ApiContext
from riskstream.api._auth import SESSION_COOKIE, AuthConfig, Authenticator
from riskstream.query import load_report, run_report

# pysaml2's IdP imports a cipher mode cryptography has moved (see api/_saml.py)
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="CFB has been moved", category=Warning)
    from saml2.server import Server

IDP = "https://idp.example.test/saml"
GROUP_MAP = {"RiskTraders-Rates": "grp-trader:RATES", "RiskHeads": "grp-head_of_trading"}
_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def _key_and_cert(folder: Path, name: str) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def _idp_config(folder: Path, key_file: Path, cert_file: Path, sp_metadata: Path | None) -> IdPConfig:
    settings: dict[str, Any] = {
        "entityid": IDP,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "key_file": str(key_file),
        "cert_file": str(cert_file),
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(IDP + "/sso", BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
            }
        },
    }
    if sp_metadata is not None:
        settings["metadata"] = {"local": [str(sp_metadata)]}
    return IdPConfig().load(settings)


@dataclass
class SamlWorld:
    client: TestClient
    idp: Server
    rogue: Server  # same entity id, a key the service does not trust
    sp_entity_id: str
    acs: str

    def response(
        self,
        user: str,
        groups: list[str],
        *,
        sign: bool = True,
        server: Server | None = None,
        in_response_to: str | None = None,
    ) -> str:
        xml = (server or self.idp).create_authn_response(
            identity={"groups": groups, "mail": [f"{user}@example.test"]},
            in_response_to=in_response_to,
            destination=self.acs,
            sp_entity_id=self.sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_UNSPECIFIED, text=user),
            userid=user,
            authn={"class_ref": _PASSWORD},
            sign_assertion=sign,
            sign_response=False,
            sign_alg=_RSA_SHA256,
            digest_alg=_SHA256,
        )
        return str(xml)

    def post(self, xml: str, relay_state: str | None = None) -> Any:
        data = {"SAMLResponse": base64.b64encode(xml.encode()).decode()}
        if relay_state is not None:
            data["RelayState"] = relay_state
        return self.client.post("/auth/saml/acs", data=data, follow_redirects=False)


@pytest.fixture(scope="module")
def saml(app_with_auth: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    folder = tmp_path_factory.mktemp("saml")
    key_file, cert_file = _key_and_cert(folder, "idp")
    idp_metadata = folder / "idp-metadata.xml"
    idp_metadata.write_text(
        str(
            create_metadata_string(None, config=_idp_config(folder, key_file, cert_file, None), valid=None),
            "utf-8",
        )
    )
    sp_app = app_with_auth(AuthConfig(saml_idp_metadata=idp_metadata, group_map=GROUP_MAP))
    auth: Authenticator = sp_app.state.ctx.auth
    with TestClient(sp_app) as client:
        reply = client.get("/auth/saml/metadata")
        assert reply.status_code == 200 and reply.headers["content-type"].startswith(
            "application/samlmetadata+xml"
        )
        sp_metadata = folder / "sp-metadata.xml"
        sp_metadata.write_text(reply.text)
        assert auth.saml is not None
        rogue_key, rogue_cert = _key_and_cert(folder, "rogue")
        yield SamlWorld(
            client=client,
            idp=Server(config=_idp_config(folder, key_file, cert_file, sp_metadata)),
            rogue=Server(config=_idp_config(folder, rogue_key, rogue_cert, sp_metadata)),
            sp_entity_id=auth.saml.entity_id,
            acs=auth.saml.acs_url,
        )


def _desks(ctx: ApiContext, user: str) -> set[str]:
    report = load_report(
        {"name": "by_desk", "kind": "pivot", "rows": ["desk"], "measures": [{"measure": "pv", "agg": "sum"}]}
    )
    return {row["desk"] for row in run_report(ctx.store, report, user).to_arrow().to_pylist()}


def test_sp_metadata_names_the_assertion_consumer(saml: SamlWorld) -> None:
    text = saml.client.get("/auth/saml/metadata").text
    assert f'entityID="{saml.sp_entity_id}"' in text
    assert saml.acs in text and BINDING_HTTP_POST in text


def test_signed_assertion_maps_groups_to_roles_and_rows(saml: SamlWorld, app: FastAPI) -> None:
    reply = saml.post(saml.response("saml_alice", ["RiskTraders-Rates", "Staff"]))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # GROUP_MAP: RiskTraders-Rates -> grp-trader:RATES; "Staff" is not mapped, so it is dropped
    assert (body["user"], body["groups"], body["roles"], body["method"]) == (
        "saml_alice",
        ["grp-trader:RATES"],
        ["trader:RATES"],
        "saml",
    )
    cookie = reply.cookies.get(SESSION_COOKIE)
    assert cookie and "httponly" in reply.headers["set-cookie"].lower()

    # the session cookie authenticates the browser; the same session JWT works as a bearer token
    me = saml.client.get("/auth/me")
    assert me.status_code == 200, me.text
    assert (me.json()["user"], me.json()["method"], me.json()["roles"]) == (
        "saml_alice",
        "saml",
        ["trader:RATES"],
    )
    saml.client.cookies.clear()
    assert saml.client.get("/auth/me").status_code == 401
    bearer = saml.client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert bearer.json()["user"] == "saml_alice"
    # a session is only accepted from the service's own session issuer: a dev-IdP token in the cookie is not
    saml.client.cookies.set(SESSION_COOKIE, saml.client.app.state.ctx.auth.dev_token("trader_fx"))  # type: ignore[attr-defined]
    assert "wrong issuer" in saml.client.get("/auth/me").json()["reason"]
    saml.client.cookies.clear()

    ctx: ApiContext = app.state.ctx
    assert _desks(ctx, "saml_alice") == {"RATES"}
    # promoted at the IdP: the next login provisions the new group and the user sees every desk
    promoted = saml.post(saml.response("saml_alice", ["RiskHeads"]))
    assert promoted.json()["roles"] == ["head_of_trading"]
    saml.client.cookies.clear()
    assert len(_desks(ctx, "saml_alice")) > 1 and "RATES" in _desks(ctx, "saml_alice")


def test_unsigned_tampered_foreign_and_replayed_assertions_are_refused(saml: SamlWorld, app: FastAPI) -> None:
    catalog = app.state.ctx.store.catalog
    unsigned = saml.post(saml.response("saml_mallory", ["RiskHeads"], sign=False))
    assert unsigned.status_code == 401 and "Signature missing" in unsigned.json()["reason"]
    # a signed trader assertion whose group is rewritten to the heads' group after signing
    tampered_xml = saml.response("saml_mallory", ["RiskTraders-Rates"]).replace(
        "RiskTraders-Rates", "RiskHeads"
    )
    tampered = saml.post(tampered_xml)
    assert tampered.status_code == 401 and "SignatureError" in tampered.json()["reason"], tampered.json()
    foreign = saml.post(saml.response("saml_mallory", ["RiskHeads"], server=saml.rogue))
    assert foreign.status_code == 401 and foreign.json()["error"] == "unauthenticated"
    assert catalog.user_groups("saml_mallory") is None  # nothing was provisioned
    assert SESSION_COOKIE not in unsigned.cookies and SESSION_COOKIE not in tampered.cookies

    once = saml.response("saml_bob", ["RiskTraders-Rates"])
    assert saml.post(once).status_code == 200
    again = saml.post(once)
    assert again.status_code == 401 and "replay" in again.json()["reason"]
    garbage = saml.client.post("/auth/saml/acs", data={"SAMLResponse": "%%% not base64"})
    assert garbage.status_code == 401
    saml.client.cookies.clear()


def test_groups_granting_no_role_are_403(saml: SamlWorld) -> None:
    reply = saml.post(saml.response("saml_carol", ["Staff"]))
    assert reply.status_code == 403 and reply.json()["error"] == "forbidden"
    assert SESSION_COOKIE not in reply.cookies


def test_sp_initiated_login_and_relay_state(saml: SamlWorld) -> None:
    start = saml.client.get("/auth/saml/login", params={"next": "/#pivot"}, follow_redirects=False)
    assert start.status_code == 303
    location = urlparse(start.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == IDP + "/sso"
    query = parse_qs(location.query)
    request = saml.idp.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
    assert request.message.issuer.text == saml.sp_entity_id
    xml = saml.response("saml_dave", ["RiskTraders-Rates"], in_response_to=request.message.id)
    done = saml.post(xml, relay_state=query["RelayState"][0])
    assert done.status_code == 303 and done.headers["location"] == "/#pivot"
    assert done.cookies.get(SESSION_COOKIE)
    # a RelayState pointing elsewhere is not followed (no open redirect): the JSON answer instead
    other = saml.post(saml.response("saml_dave", ["RiskTraders-Rates"]), relay_state="https://evil.example/")
    assert other.status_code == 200 and other.json()["user"] == "saml_dave"
    saml.client.cookies.clear()


def test_saml_routes_are_404_when_saml_is_off(client: TestClient) -> None:
    reply = client.get("/auth/saml/metadata")
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"
