"""An external OIDC issuer: a second real HTTP server (uvicorn on a free port, in a thread) publishes discovery and
a JWKS for keys of its own; the service finds its keys through discovery and provisions the groups of its tokens
just in time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from riskstream.api._auth import AuthConfig
from riskstream.query import load_report, run_report

GROUP_MAP = {"ext-rates": "grp-trader:RATES", "ext-fx": "grp-trader:FX", "ext-heads": "grp-head_of_trading"}


@dataclass
class Issuer:
    url: str
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key
    requests: list[str] = field(default_factory=list)

    def add_key(self, kid: str, private: Any) -> None:
        self.keys[kid] = private

    def token(self, user: str, groups: list[str] | None, *, kid: str = "k1", **changes: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": "riskstream",
            "sub": user,
            "iat": now,
            "exp": now + 300,
        }
        if groups is not None:
            claims["groups"] = groups
        claims.update(changes)
        private = self.keys[kid]
        algorithm = "ES256" if isinstance(private, ec.EllipticCurvePrivateKey) else "RS256"
        return jwt.encode(claims, private, algorithm=algorithm, headers={"kid": kid})


def _issuer_app(issuer: Issuer) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        issuer.requests.append("discovery")
        return {
            "issuer": issuer.url,
            "jwks_uri": issuer.url + "/keys",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }

    @app.get("/keys")
    def keys() -> dict[str, Any]:
        issuer.requests.append("jwks")
        out = []
        for kid, private in issuer.keys.items():
            algorithm = (
                jwt.algorithms.ECAlgorithm
                if isinstance(private, ec.EllipticCurvePrivateKey)
                else jwt.algorithms.RSAAlgorithm
            )
            jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": out}

    return app


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    found = Issuer(f"http://127.0.0.1:{port}")
    found.add_key("k1", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    server = uvicorn.Server(
        uvicorn.Config(_issuer_app(found), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the issuer's server did not start"
        time.sleep(0.05)
    yield found
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def ext(issuer: Issuer, app_with_auth: Any) -> Iterator[TestClient]:
    # jwks_refetch_s=0: a rotated key is fetched at once (the default waits 30 s between forced fetches)
    config = AuthConfig(dev_idp=False, issuer=issuer.url, group_map=GROUP_MAP, jwks_refetch_s=0.0)
    with TestClient(app_with_auth(config)) as c:
        yield c


def _me(c: TestClient, token: str) -> Any:
    return c.get("/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_tokens_verify_through_discovery_and_cached_keys(issuer: Issuer, ext: TestClient) -> None:
    issuer.requests.clear()
    first = _me(ext, issuer.token("ext_erin", ["ext-rates"]))
    assert first.status_code == 200, first.text
    assert (first.json()["user"], first.json()["roles"], first.json()["development_only"]) == (
        "ext_erin",
        ["trader:RATES"],
        False,
    )
    assert _me(ext, issuer.token("ext_erin", ["ext-rates"])).status_code == 200
    assert issuer.requests == [
        "discovery",
        "jwks",
    ]  # once each: the keys are cached (AuthConfig.jwks_cache_s)
    # the development IdP is off in this configuration
    assert ext.post("/auth/dev/token", data={"username": "trader_fx", "password": "demo"}).status_code == 404
    assert ext.get("/auth/dev/jwks").status_code == 404


def test_key_rotation_and_unknown_keys(issuer: Issuer, ext: TestClient) -> None:
    issuer.add_key("k2", ec.generate_private_key(ec.SECP256R1()))  # the issuer rotates in an ES256 key
    issuer.requests.clear()
    rotated = _me(ext, issuer.token("ext_erin", ["ext-rates"], kid="k2"))
    assert rotated.status_code == 200, rotated.text
    assert issuer.requests == ["jwks"]  # an unknown kid refetches the key set
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.keys["k3"] = stranger
    forged_kid = jwt.encode(
        jwt.decode(issuer.token("ext_erin", ["ext-heads"], kid="k3"), options={"verify_signature": False}),
        stranger,
        algorithm="RS256",
        headers={"kid": "nowhere"},
    )
    reply = _me(ext, forged_kid)
    assert reply.status_code == 401 and "unknown signing key" in reply.json()["reason"]
    # signed by a key the issuer never published, under a published kid
    forged = jwt.encode(
        jwt.decode(issuer.token("ext_erin", ["ext-heads"]), options={"verify_signature": False}),
        stranger,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    reply = _me(ext, forged)
    assert reply.status_code == 401 and reply.json()["reason"] == "not authenticated: bad signature"
    del issuer.keys["k3"]


def test_external_failure_modes(issuer: Issuer, ext: TestClient, app: FastAPI) -> None:
    login_app = app
    now = int(time.time())
    cases = {
        "token expired": issuer.token("ext_erin", ["ext-rates"], exp=now - 300),
        "wrong audience": issuer.token("ext_erin", ["ext-rates"], aud="another-service"),
        "wrong issuer": issuer.token("ext_erin", ["ext-rates"], iss=issuer.url + "/other"),
        "not yet valid": issuer.token("ext_erin", ["ext-rates"], nbf=now + 300),
    }
    for reason, token in cases.items():
        reply = _me(ext, token)
        assert reply.status_code == 401 and reason in reply.json()["reason"], (reason, reply.json())
    # a development-IdP token (of a service that runs one) is not trusted by a service that does not
    dev = _me(ext, login_app.state.ctx.auth.dev_token("trader_fx"))
    assert dev.status_code == 401 and "wrong issuer" in dev.json()["reason"]
    # the service's own sessions (after a SAML login) stay trusted
    session = ext.app.state.ctx.auth.session_token("ext_erin", ["grp-trader:RATES"], "saml")  # type: ignore[attr-defined]
    assert _me(ext, session).json()["method"] == "saml"


def _desks(c: TestClient, user: str) -> set[str]:
    store = c.app.state.ctx.store  # type: ignore[attr-defined]
    report = load_report(
        {"name": "by_desk", "kind": "pivot", "rows": ["desk"], "measures": [{"measure": "pv", "agg": "sum"}]}
    )
    return {row["desk"] for row in run_report(store, report, user).to_arrow().to_pylist()}


def test_groups_change_entitlements_just_in_time(issuer: Issuer, ext: TestClient) -> None:
    catalog = ext.app.state.ctx.store.catalog  # type: ignore[attr-defined]
    assert catalog.user_groups("ext_frank") is None
    me = _me(ext, issuer.token("ext_frank", ["ext-rates", "unmapped-group"])).json()
    assert (me["groups"], me["roles"], me["sees_all_rows"]) == (["grp-trader:RATES"], ["trader:RATES"], False)
    assert catalog.user_groups("ext_frank") == ("grp-trader:RATES",)
    assert _desks(ext, "ext_frank") == {"RATES"}

    me = _me(ext, issuer.token("ext_frank", ["ext-rates", "ext-fx"])).json()
    assert me["roles"] == ["trader:FX", "trader:RATES"]
    assert _desks(ext, "ext_frank") == {"FX", "RATES"}

    me = _me(ext, issuer.token("ext_frank", ["ext-heads"])).json()
    assert (me["roles"], me["sees_all_rows"]) == (["head_of_trading"], True)
    assert len(_desks(ext, "ext_frank")) > 2

    # removed from every mapped group at the IdP (or a token with no groups claim): no role, 403
    for groups in (["unmapped-group"], None):
        reply = _me(ext, issuer.token("ext_frank", groups))
        assert reply.status_code == 403 and reply.json()["error"] == "forbidden"
    assert catalog.user_groups("ext_frank") == ()


def test_unreachable_issuer_is_401_not_500(app_with_auth: Any, issuer: Issuer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with TestClient(app_with_auth(AuthConfig(dev_idp=False, issuer=dead))) as c:
        token = jwt.encode(
            {"iss": dead, "aud": "riskstream", "sub": "x", "exp": int(time.time()) + 60},
            issuer.keys["k1"],
            algorithm="RS256",
            headers={"kid": "k1"},
        )
        reply = c.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 401 and "discovery document" in reply.json()["reason"]
