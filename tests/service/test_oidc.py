"""OIDC sign-in: bearer JWTs of a loopback issuer (real RSA and EC keys, a real JWKS over HTTP) against a real
server; each subject owns its own jobs, and API keys keep working beside the tokens."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import re
import time
from collections.abc import Iterator

import pytest
from oidc_issuer import Issuer, b64url, make_key, start_issuer
from svc_helpers import LiveServer, start_server, wait_final
from websockets.sync.client import connect

from soundgen.cli.main import main
from soundgen.errors import ConfigError
from soundgen.service.oidc import IssuerUnavailable, OidcVerifier, TokenRejected, owner_id
from soundgen.service.settings import ServiceSettings

G = "/api/v1/generations"
AUDIENCE = "soundgen-api"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    iss = start_issuer([make_key("rsa-1", "RS256"), make_key("ec-1", "ES256")])
    yield iss
    iss.stop()


@pytest.fixture(scope="module")
def oidc_server(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A server taking the issuer's tokens (refetching keys for any unknown key id) and one API key."""
    data = tmp_path_factory.mktemp("oidc")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["keys", "create", "--name", "robot", "--data-dir", str(data)]) == 0
    key = re.search(r"^(sg_\S+)$", out.getvalue(), re.M).group(1)  # type: ignore[union-attr]
    settings = ServiceSettings.tiny(data).model_copy(update={
        "oidc_issuer": issuer.url, "oidc_audience": AUDIENCE, "oidc_client_id": issuer.client_id,
        "oidc_refetch_seconds": 0.0})
    live = start_server(settings)
    yield live, key
    live.stop()


def refused(live: LiveServer, token: str) -> str:
    """The 401 reason of ``token`` (and the response is a clean 401 with a Bearer challenge)."""
    r = live.client(token).get(G)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"'), challenge
    error: str = r.json()["error"]
    assert error.startswith("the sign-in token was refused") and "Traceback" not in r.text
    return error


def test_rs256_and_es256_tokens_are_accepted(issuer: Issuer, oidc_server: tuple[LiveServer, str]) -> None:
    live, _ = oidc_server
    for key in issuer.keys:
        r = live.client(issuer.token(key)).get(G)
        assert r.status_code == 200, (key.alg, r.text)
    # The page's client id is an audience too (an id token names it), and a small clock skew is forgiven.
    assert live.client(issuer.token(aud=issuer.client_id)).get(G).status_code == 200
    assert live.client(issuer.token(lifetime=-30)).get(G).status_code == 200  # expired 30 s ago, leeway 60 s
    info = live.client().get("/api/v1/info").json()
    assert info["auth_required"] is True
    assert info["oidc"] == {"issuer": issuer.url, "client_id": issuer.client_id, "scopes": "openid",
                            "authorization_endpoint": issuer.url + "/authorize",
                            "token_endpoint": issuer.url + "/token", "end_session_endpoint": None, "problem": None}


def test_bad_tokens_are_refused_with_the_reason(issuer: Issuer, oidc_server: tuple[LiveServer, str]) -> None:
    live, _ = oidc_server
    rsa = issuer.keys[0]
    now = int(time.time())
    assert "expired" in refused(live, issuer.token(lifetime=-120))
    assert "not valid yet" in refused(live, issuer.token(nbf=now + 300))
    assert "another audience" in refused(live, issuer.token(aud="someone-else"))
    assert "another issuer" in refused(live, issuer.token(iss="http://127.0.0.1:1/realms/other"))
    assert "does not publish" in refused(live, issuer.token(make_key("stranger", "RS256")))
    # A key of the issuer's own JWKS id but another private key: the signature does not verify.
    impostor = make_key(rsa.kid, "RS256")
    assert "signature does not verify" in refused(live, issuer.token(impostor))
    head, body, sig = issuer.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered = b64url(json.dumps({**claims, "sub": "mallory"}).encode())
    assert "signature does not verify" in refused(live, f"{head}.{tampered}.{sig}")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert "signature does not verify" in refused(live, f"{head}.{body}.{flipped}")
    # alg none, and HS256 keyed with the issuer's public key (the classic algorithm confusion).
    none_head = b64url(json.dumps({"alg": "none", "kid": rsa.kid}).encode())
    assert "'none' is not accepted" in refused(live, f"{none_head}.{body}.")
    hs_head = b64url(json.dumps({"alg": "HS256", "kid": rsa.kid}).encode())
    public = json.dumps(rsa.public_jwk()).encode()
    mac = b64url(hmac.new(public, f"{hs_head}.{body}".encode(), hashlib.sha256).digest())
    assert "'HS256' is not accepted" in refused(live, f"{hs_head}.{body}.{mac}")
    # An ES256 header on an RSA key's id: the key verifies only its own algorithm.
    es_head = b64url(json.dumps({"alg": "ES256", "kid": rsa.kid, "typ": "JWT"}).encode())
    assert "does not match" in refused(live, f"{es_head}.{body}.{sig}")
    assert "no 'exp' claim" in refused(live, issuer.token(exp=None))
    assert "not a valid JWT" in refused(live, "abc.def.ghi")
    missing = live.client().get(G)
    assert missing.status_code == 401 and issuer.url in missing.json()["error"]
    assert missing.headers["www-authenticate"] == "Bearer"


def test_rotated_keys_are_fetched_again(issuer: Issuer, oidc_server: tuple[LiveServer, str]) -> None:
    live, _ = oidc_server
    assert live.client(issuer.token()).get(G).status_code == 200  # the keys are cached by now
    before = issuer.hits.get("/realms/test/jwks", 0)
    new = make_key("rsa-2", "RS256")
    issuer.keys.append(new)
    try:
        assert live.client(issuer.token(new)).get(G).status_code == 200
        assert issuer.hits["/realms/test/jwks"] == before + 1
        assert live.client(issuer.token(new)).get(G).status_code == 200  # now cached: no further fetch
        assert issuer.hits["/realms/test/jwks"] == before + 1
    finally:
        issuer.keys.remove(new)


def test_each_subject_sees_only_its_own_jobs(issuer: Issuer, oidc_server: tuple[LiveServer, str]) -> None:
    live, api_key = oidc_server
    alice, bob = live.client(issuer.token(sub="alice")), live.client(issuer.token(issuer.keys[1], sub="bob"))
    robot = live.client(api_key)  # an API key beside the tokens
    job = alice.post(G, json={"prompt": "alice's sound", "duration": 0.05}).json()
    done = wait_final(alice, job["id"])
    assert done["state"] == "succeeded"
    for other in (bob, robot):
        assert other.get(f"{G}/{job['id']}").status_code == 404
        assert other.get(done["results"][0]["audio_url"]).status_code == 404
        assert other.post(f"{G}/{job['id']}/cancel").status_code == 404
        assert other.delete(f"{G}/{job['id']}").status_code == 404
        assert job["id"] not in [j["id"] for j in other.get(G).json()["items"]]
    assert job["id"] in [j["id"] for j in alice.get(G).json()["items"]]
    # Another token of the same subject (a later sign-in) is the same owner.
    assert live.client(issuer.token(issuer.keys[1], sub="alice")).get(f"{G}/{job['id']}").status_code == 200
    robot_job = robot.post(G, json={"prompt": "robot's sound", "duration": 0.05}).json()
    assert robot.get(f"{G}/{robot_job['id']}").status_code == 200
    assert alice.get(f"{G}/{robot_job['id']}").status_code == 404
    # The WebSocket takes the token as the page sends it (the subprotocol pair).
    url = f"{live.ws_url}{G}/{job['id']}/events"
    with connect(url, subprotocols=["bearer", issuer.token(sub="alice")]) as ws:  # type: ignore[list-item]
        assert json.loads(ws.recv(timeout=5))["state"] == "succeeded"
    with connect(url, subprotocols=["bearer", issuer.token(sub="bob")]) as ws:  # type: ignore[list-item]
        assert json.loads(ws.recv(timeout=5))["type"] == "error"


def test_unknown_key_ids_refetch_at_most_once_per_interval(issuer: Issuer) -> None:
    verifier = OidcVerifier(issuer.url, (AUDIENCE,), refetch_seconds=60)
    assert verifier.verify(issuer.token(sub="carol")) == owner_id(issuer.url, "carol")
    assert verifier.fetches == 1
    for i in range(3):  # a stream of forged key ids costs the issuer nothing more
        with pytest.raises(TokenRejected, match="does not publish"):
            verifier.verify(issuer.token(make_key(f"forged-{i}", "ES256")))
    assert verifier.fetches == 1
    verifier.refetch_seconds = 0
    with pytest.raises(TokenRejected, match="does not publish"):
        verifier.verify(issuer.token(make_key("forged", "ES256")))
    assert verifier.fetches == 2


def test_an_unreachable_issuer_is_named() -> None:
    gone = start_issuer([make_key("k")])
    gone.stop()  # its port is closed now
    with pytest.raises(IssuerUnavailable, match="cannot be reached"):
        OidcVerifier(gone.url, (AUDIENCE,)).verify(gone.token())


def test_oidc_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="https"):
        OidcVerifier("http://login.example.com/realm", (AUDIENCE,))
    with pytest.raises(ConfigError, match="AUDIENCE"):
        OidcVerifier("https://login.example.com/realm", ())
    assert ServiceSettings(oidc_issuer="https://login.example.com").auth_required
