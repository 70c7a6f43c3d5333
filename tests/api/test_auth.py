"""Authentication: the development identity provider's flow, JWT failure modes, /auth/me, principal provisioning.

Every token here is really signed (PyJWT over cryptography keys) and really verified by the service.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from riskstream.api._auth import Authenticator
from riskstream.store import DEMO_USERS


def _auth(client: TestClient) -> Authenticator:
    auth: Authenticator = client.app.state.ctx.auth  # type: ignore[attr-defined]
    return auth


def _dev_claims(auth: Authenticator, user: str = "trader_rates", **changes: Any) -> dict[str, Any]:
    assert auth.dev_idp is not None
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": auth.dev_idp.issuer,
        "aud": "riskstream",
        "sub": user,
        "groups": ["grp-trader:RATES"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign_dev(auth: Authenticator, claims: dict[str, Any], **headers: Any) -> str:
    assert auth.dev_idp is not None
    key = auth.dev_idp.key
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, **headers})


def test_dev_idp_password_flow_to_me(client: TestClient) -> None:
    discovery = client.get("/auth/dev/.well-known/openid-configuration").json()
    assert discovery["issuer"] == "http://localhost:8000/auth/dev"
    assert discovery["development_only"] is True
    keys = client.get("/auth/dev/jwks").json()["keys"]
    assert [k["kid"] for k in keys] == [_auth(client).dev_idp.key.kid]  # type: ignore[union-attr]

    reply = client.post(
        "/auth/dev/token", data={"grant_type": "password", "username": "trader_rates", "password": "demo"}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["token_type"] == "Bearer" and body["development_only"] is True
    # the token verifies against the published JWKS, as any relying party would check it
    jwk = jwt.PyJWK(keys[0])
    claims = jwt.decode(body["access_token"], jwk.key, algorithms=["RS256"], audience="riskstream")
    assert claims["sub"] == "trader_rates" and claims["groups"] == ["grp-trader:RATES"]

    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json() == {
        "user": "trader_rates",
        "groups": ["grp-trader:RATES"],
        "method": "oidc",
        "scopes": [],
        "roles": ["trader:RATES"],
        "masked_columns": [],
        "sees_all_rows": False,
        "row_filter": [{"desk": ["RATES"]}],
        "development_only": True,
    }


@pytest.mark.parametrize(
    ("user", "roles", "masked", "all_rows"),
    [
        ("head_trading", ["head_of_trading"], [], True),
        ("middle_office", ["middle_office"], [], True),
        (
            "pb_junior",
            ["pb_junior_risk"],
            ["counterparty", "region", "sector"],
            False,
        ),  # seed_demo's _PB_MASKED
    ],
)
def test_me_for_demo_roles(
    client: TestClient, login: Any, user: str, roles: list[str], masked: list[str], all_rows: bool
) -> None:
    me = client.get("/auth/me", headers=login(user)).json()
    assert (me["roles"], me["masked_columns"], me["sees_all_rows"]) == (roles, masked, all_rows)


def test_wrong_password_or_unknown_user_is_401_json(client: TestClient) -> None:
    for username, password in (("trader_rates", "nope"), ("nobody", "demo")):
        reply = client.post("/auth/dev/token", data={"username": username, "password": password})
        assert reply.status_code == 401
        assert reply.json() == {
            "error": "unauthenticated",
            "reason": "not authenticated: invalid username or password",
        }
    reply = client.post(
        "/auth/dev/token", data={"grant_type": "client_credentials", "username": "x", "password": "demo"}
    )
    assert reply.status_code == 422 and reply.json()["field"] == "grant_type"


def test_dev_users_lists_the_demo_users(client: TestClient) -> None:
    body = client.get("/auth/dev/users").json()
    assert body["development_only"] is True
    listed = {u["user"]: u["description"] for u in body["users"]}
    assert {u: listed[u] for u in DEMO_USERS} == dict(DEMO_USERS)


def _expect_401(client: TestClient, headers: dict[str, str], reason: str) -> None:
    reply = client.get("/auth/me", headers=headers)
    assert reply.status_code == 401, reply.text
    body = reply.json()
    assert body["error"] == "unauthenticated"
    assert reason in body["reason"], body
    assert reply.headers["www-authenticate"] == "Bearer"


def test_jwt_failure_modes_are_401_with_a_reason(client: TestClient) -> None:
    auth = _auth(client)
    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    now = int(time.time())
    # expired beyond the 30 s leeway (AuthConfig.leeway_s)
    _expect_401(
        client,
        bearer(_sign_dev(auth, _dev_claims(auth, exp=now - 120, iat=now - 700, nbf=now - 700))),
        "token expired",
    )
    # expired within the leeway: accepted
    ok = client.get("/auth/me", headers=bearer(_sign_dev(auth, _dev_claims(auth, exp=now - 5))))
    assert ok.status_code == 200, ok.text
    _expect_401(client, bearer(_sign_dev(auth, _dev_claims(auth, nbf=now + 600))), "not yet valid")
    _expect_401(client, bearer(_sign_dev(auth, _dev_claims(auth, aud="someone-else"))), "wrong audience")
    _expect_401(
        client, bearer(_sign_dev(auth, _dev_claims(auth, iss="https://evil.example"))), "wrong issuer"
    )
    _expect_401(
        client,
        bearer(_sign_dev(auth, _dev_claims(auth, exp=None))),
        'token lacks a required claim (Token is missing the "exp" claim)',
    )
    # signed by another key under the dev IdP's kid
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_dev_claims(auth), other, algorithm="RS256", headers={"kid": auth.dev_idp.key.kid})  # type: ignore[union-attr]
    _expect_401(client, bearer(forged), "bad signature")
    # a valid trader token whose payload is rewritten (to the head of trading) with the signature kept
    head, _, signature = _sign_dev(auth, _dev_claims(auth)).split(".")
    raised = _dev_claims(auth, sub="head_trading", groups=["grp-head_of_trading"])
    payload = base64.urlsafe_b64encode(json.dumps(raised).encode()).rstrip(b"=").decode()
    tampered = f"{head}.{payload}.{signature}"
    _expect_401(client, bearer(tampered), "bad signature")
    _expect_401(client, bearer(_sign_dev(auth, _dev_claims(auth), kid="no-such-key")), "unknown signing key")
    unsigned = jwt.encode(_dev_claims(auth), None, algorithm="none")  # type: ignore[arg-type]
    _expect_401(client, bearer(unsigned), "algorithm 'none' not allowed")
    hmac = jwt.encode(_dev_claims(auth), "a-shared-secret-of-32-bytes-long!", algorithm="HS256")
    _expect_401(client, bearer(hmac), "algorithm 'HS256' not allowed")
    es = jwt.encode(
        _dev_claims(auth), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "x"}
    )
    _expect_401(client, bearer(es), "unknown signing key")
    _expect_401(client, bearer("not.a.jwt"), "malformed token")
    _expect_401(client, bearer("garbage"), "malformed token")
    _expect_401(client, {"Authorization": "Basic dXNlcjpwYXNz"}, "not 'Bearer <token>'")
    _expect_401(client, {}, "no credentials")


def test_dev_token_needs_a_catalog_user(client: TestClient) -> None:
    from riskstream.errors import InvalidFieldError

    with pytest.raises(InvalidFieldError, match="nobody"):
        _auth(client).dev_token("nobody")
